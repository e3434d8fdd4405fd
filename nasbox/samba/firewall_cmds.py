"""The one place firewall command lines are built: the login ban rejects an address on
port 445 with iptables (ip6tables for IPv6) in the container's own network namespace."""

from __future__ import annotations

import ipaddress

SMB_PORT = "445"


def _iptables(address: str) -> str:
    return "ip6tables" if ipaddress.ip_address(address).version == 6 else "iptables"


def _rule(address: str) -> list[str]:
    return ["INPUT", "-s", address, "-p", "tcp", "--dport", SMB_PORT, "-j", "REJECT", "--reject-with", "tcp-reset"]


def ban(address: str) -> list[str]:
    return [_iptables(address), "-I", *_rule(address)]


def unban(address: str) -> list[str]:
    return [_iptables(address), "-D", *_rule(address)]


def list_rules() -> list[str]:
    """Succeeds only with the NET_ADMIN capability."""
    return ["iptables", "-S", "INPUT"]
