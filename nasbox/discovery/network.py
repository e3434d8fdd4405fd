"""Whether announcements can reach the LAN from this container.

Multicast (mDNS, WS-Discovery) does not leave a Docker bridge network: it reaches the other
containers on the bridge and the host's own end of it, never the LAN. A container on a bridge
network reaches the world through a veth pair (its eth0 is one end, the bridge holds the
other), so the signal is the driver of the interface its default route leaves through:
`veth` there means a bridge. With `network_mode: host` that interface is the host's own
(virtio_net, e1000e, a bridge, a bond, ...), and on a macvlan network it is a `macvlan`,
whose multicast reaches the LAN. The driver is read as `ethtool -i` reads it
(SIOCETHTOOL, ETHTOOL_GDRVINFO), which needs no privilege.
"""

from __future__ import annotations

import array
import fcntl
import socket
import struct

from nasbox import routes

SIOCETHTOOL = 0x8946
ETHTOOL_GDRVINFO = 0x3
DRVINFO_SIZE = 196  # struct ethtool_drvinfo: cmd, driver[32], version, firmware, bus, erom, reserved, 5 counts
BRIDGED_DRIVERS = ("veth",)


def driver(interface: str) -> str | None:
    """The kernel driver of a network interface ("veth", "virtio_net", ...), or None when the
    interface has none to tell (lo) or is gone."""
    info = array.array("B", struct.pack("I", ETHTOOL_GDRVINFO) + bytes(DRVINFO_SIZE - 4))
    request = struct.pack("16sP", interface.encode()[:15], info.buffer_info()[0])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s.fileno(), SIOCETHTOOL, request)
    except OSError:
        return None
    return bytes(info[4:36]).split(b"\0", 1)[0].decode("ascii", "replace")


def bridged_interfaces() -> list[str]:
    """The interfaces this network namespace's default routes leave through that are one end
    of a veth pair: non-empty on a Docker bridge network."""
    return sorted(name for name in routes.default_interfaces() if driver(name) in BRIDGED_DRIVERS)
