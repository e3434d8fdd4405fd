"""The container's gateways, read from the kernel's routing tables.

Behind Docker's userland proxy (a port published on the host and reached through it) every
client connects from the network's gateway address: the login ban must never ban it.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

IPV4_ROUTES = Path("/proc/net/route")
IPV6_ROUTES = Path("/proc/net/ipv6_route")
RTF_GATEWAY = 0x2  # the route goes through a gateway (linux/route.h)


def ipv4_gateways(table: str) -> set[str]:
    """Gateways in /proc/net/route's text: Iface Destination Gateway Flags ..., addresses in hex
    in the machine's byte order, under a header line."""
    found = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 4 and int(fields[3], 16) & RTF_GATEWAY:
            found.add(ipaddress.IPv4Address(int(fields[2], 16).to_bytes(4, sys.byteorder)))
    return {str(gateway) for gateway in found if not gateway.is_unspecified}


def ipv6_gateways(table: str) -> set[str]:
    """Gateways in /proc/net/ipv6_route's text: destination, its prefix length, source, its
    prefix length, next hop, metric, reference count, use count, flags, interface."""
    found = set()
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 10 and int(fields[8], 16) & RTF_GATEWAY:
            found.add(ipaddress.IPv6Address(bytes.fromhex(fields[4])))
    return {str(gateway) for gateway in found if not gateway.is_unspecified}


def gateways() -> set[str]:
    """Every gateway this network namespace routes through, IPv4 and IPv6."""
    found = set()
    for table, parse in ((IPV4_ROUTES, ipv4_gateways), (IPV6_ROUTES, ipv6_gateways)):
        try:
            found |= parse(table.read_text(encoding="ascii"))
        except FileNotFoundError:  # IPv6 disabled
            continue
    return found


def default_interfaces() -> set[str]:
    """The interfaces of this network namespace's IPv4 default routes (destination 0.0.0.0/0)."""
    try:
        table = IPV4_ROUTES.read_text(encoding="ascii")
    except FileNotFoundError:
        return set()
    found = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and int(fields[1], 16) == 0 and int(fields[7], 16) == 0:
            found.add(fields[0])
    return found
