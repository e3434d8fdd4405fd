"""Telling a Docker bridge network from one whose multicast reaches the LAN, in real network
namespaces: a default route through one end of a veth pair (what Docker's bridge networks give
a container), through a macvlan (a network where announcements do reach the LAN), none."""
from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox.discovery import network

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
CHECK = "from nasbox.discovery import network; print(network.bridged_interfaces())"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"nbx-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def bridged_in(namespace: str) -> str:
    result = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", CHECK],
                            capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_default_route_through_a_veth_pair_is_a_bridge(netns):
    host_end = f"nbxh{uuid.uuid4().hex[:6]}"
    ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", netns)
    try:
        ip("-n", netns, "addr", "add", "198.18.7.2/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        assert bridged_in(netns) == "[]"  # no default route yet
        ip("-n", netns, "route", "add", "default", "via", "198.18.7.1", "dev", "eth0")
        assert bridged_in(netns) == "['eth0']"
        assert network.driver(host_end) == "veth"
    finally:
        subprocess.run(["ip", "link", "del", host_end], check=False)


def test_a_default_route_through_a_macvlan_reaches_the_lan(netns):
    parent = subprocess.run(["ip", "-o", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    if "dev" not in parent:
        pytest.fail("the host has no default route to make a macvlan on")
    ip("link", "add", "nbxmv0", "link", parent[parent.index("dev") + 1], "type", "macvlan", "mode", "bridge")
    ip("link", "set", "nbxmv0", "netns", netns)
    ip("-n", netns, "addr", "add", "198.18.8.2/24", "dev", "nbxmv0")
    ip("-n", netns, "link", "set", "nbxmv0", "up")
    ip("-n", netns, "route", "add", "default", "via", "198.18.8.1", "dev", "nbxmv0")
    assert bridged_in(netns) == "[]"


def test_loopback_has_no_driver_to_tell():
    assert network.driver("lo") is None
    assert network.driver("no-such-if0") is None
