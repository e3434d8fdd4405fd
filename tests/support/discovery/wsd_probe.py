"""Find WS-Discovery devices as Windows' Network view does: a Probe for wsdp:Device sent to
the multicast group, then, for each device that answers, a WS-Transfer Get of its metadata
from the address it gave. Prints {address: {"match": ProbeMatch XML, "metadata": Get XML}}."""
import json
import re
import socket
import sys
import time
import urllib.request
import uuid

GROUP = ("239.255.255.250", 3702)
NAMESPACES = (
    'xmlns:soap="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
    'xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof"'
)


def envelope(to: str, action: str, body: str, reply_to: bool = False) -> bytes:
    reply = ("<wsa:ReplyTo><wsa:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
             "</wsa:Address></wsa:ReplyTo>") if reply_to else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope {NAMESPACES}><soap:Header>'
            f"<wsa:To>{to}</wsa:To><wsa:Action>{action}</wsa:Action>"
            f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>{reply}</soap:Header>"
            f"<soap:Body>{body}</soap:Body></soap:Envelope>").encode()


def probe(seconds: float) -> dict[str, str]:
    message = envelope("urn:schemas-xmlsoap-org:ws:2005:04:discovery",
                       "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe",
                       "<wsd:Probe><wsd:Types>wsdp:Device</wsd:Types></wsd:Probe>")
    answers = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.settimeout(0.3)
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # UDP: sent again, as Windows does
            s.sendto(message, GROUP)
            until = min(end, time.monotonic() + 1.0)
            while time.monotonic() < until:
                try:
                    data, (address, _) = s.recvfrom(65535)
                except socket.timeout:
                    continue
                answers[address] = data.decode(errors="replace")
    return answers


def metadata(match: str) -> str:
    xaddrs = re.search(r"<wsd:XAddrs>([^<]+)</wsd:XAddrs>", match)
    endpoint = re.search(r"<wsa:Address>(urn:uuid:[^<]+)</wsa:Address>", match)
    if not (xaddrs and endpoint):
        return ""
    get = envelope(endpoint.group(1), "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", "", reply_to=True)
    request = urllib.request.Request(xaddrs.group(1).split()[0], data=get,
                                     headers={"Content-Type": "application/soap+xml", "User-Agent": "WSDAPI"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode(errors="replace")


found = probe(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)
print(json.dumps({address: {"match": match, "metadata": metadata(match)} for address, match in found.items()}))
