"""The container's gateways, read from routing tables as the kernel prints them."""
from nasbox import routes

# A container on Docker's default bridge, as a little-endian machine (x86, arm64) prints it: a default route through
# 172.17.0.1 and the bridge's own subnet.
BRIDGE_ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""
# Host networking with two routers: the default one and one for a VPN's subnet.
HOST_ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t0000FFFF\t0\t0\t0
tun0\t00000A0A\tFE01A8C0\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
"""
IPV6_ROUTE = (
    # a default route through fe80::1 on eth0
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n"
    # the subnet itself: no gateway
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    # the loopback's unreachable default (reject flag, no next hop)
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
)


def test_ipv4_gateways_are_the_next_hops_of_routes_through_a_gateway():
    assert routes.ipv4_gateways(BRIDGE_ROUTE) == {"172.17.0.1"}
    assert routes.ipv4_gateways(HOST_ROUTE) == {"192.168.1.1", "192.168.1.254"}


def test_ipv6_gateways_skip_connected_and_unreachable_routes():
    assert routes.ipv6_gateways(IPV6_ROUTE) == {"fe80::1"}


def test_no_gateway_at_all():
    header_only = BRIDGE_ROUTE.splitlines()[0] + "\n"
    assert routes.ipv4_gateways(header_only) == set()
    assert routes.ipv6_gateways("") == set()
