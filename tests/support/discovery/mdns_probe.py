"""Browse the services nasbox announces over mDNS/DNS-SD, as Finder and Time Machine do, with
python-zeroconf, and resolve each. Prints a list of {type, name, port, server, addresses, txt}."""
import json
import sys
import time

from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

TYPES = ("_smb._tcp.local.", "_adisk._tcp.local.", "_device-info._tcp.local.")


class Seen(ServiceListener):
    def __init__(self) -> None:
        self.names: set[tuple[str, str]] = set()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add((type_, name))

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add((type_, name))

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass


zc = Zeroconf()
seen = Seen()
browsers = [ServiceBrowser(zc, type_, seen) for type_ in TYPES]
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)  # answers come as they come
found = []
for type_, name in sorted(seen.names):
    info = zc.get_service_info(type_, name, timeout=3000)
    entry = {"type": type_, "name": name}
    if info is not None:
        entry.update(port=info.port, server=info.server, addresses=info.parsed_addresses(),
                     txt=sorted(key.decode() + ("" if value is None else "=" + value.decode())
                                for key, value in info.properties.items()))
    found.append(entry)
zc.close()
print(json.dumps(found))
