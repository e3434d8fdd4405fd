"""Repeated failed logins from one address get it banned, where the container has NET_ADMIN;
without it, a warning at start says so and nothing is banned. The gateway, where every client
comes from behind Docker's userland proxy, is never banned."""
from __future__ import annotations

import json

import pytest

from tests.container.helpers import CAPS, Nasbox, client_netns, nasbox_container, workspace
from tests.support.smbclient import Server, output, smbclient

pytestmark = pytest.mark.container

ENV = {"USER_ALICE": "alice:right-pw", "SHARE_DOCS": "write docs /data/docs alice"}
GATEWAY_WARNING = "the container's gateway: clients reach smbd through Docker's proxy"


def fail_five_times(server: Server) -> None:
    for _ in range(5):
        result = smbclient(server, "docs", "alice", "wrong-pw", "ls")
        assert "NT_STATUS_LOGON_FAILURE" in output(result), output(result)


def logs_in(server: Server) -> bool:
    return smbclient(server, "docs", "alice", "right-pw", "ls").returncode == 0


def login_ban(box: Nasbox) -> tuple[dict, str]:
    """`nasbox status`'s login ban, as JSON and as the table's line."""
    as_json = box.exec("nasbox", "status", "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    table = box.exec("nasbox", "status").stdout
    return json.loads(as_json.stdout)["login_ban"], next(
        line for line in table.splitlines() if line.startswith("login ban:"))


def test_an_address_is_banned_after_five_failed_logins() -> None:
    with workspace() as ws, nasbox_container(ws, ENV, "guard", caps=[*CAPS, "NET_ADMIN"]) as box, \
            client_netns() as netns:
        client = Server(box.address(), 445, netns=netns)
        assert logs_in(client)
        fail_five_times(client)
        assert not logs_in(client)  # even the right password: the address is banned
        rules = box.exec("iptables", "-S", "INPUT").stdout
        assert "--dport 445 -j REJECT --reject-with tcp-reset" in rules, rules
        assert "banned" in box.logs() and "after 5 failed logins" in box.logs()
        assert logs_in(box.server())  # only that address: others still get in
        ban, line = login_ban(box)
        assert ban["state"] == "active" and len(ban["banned"]) == 1, ban
        assert line.startswith("login ban: active") and f"banned now: {ban['banned'][0]}" in line, line


def test_failures_through_dockers_proxy_never_ban_the_gateway() -> None:
    with workspace() as ws, nasbox_container(ws, ENV, "guard-proxy", caps=[*CAPS, "NET_ADMIN"]) as box:
        assert "the ban needs real client addresses" in box.logs()
        ban, line = login_ban(box)
        assert ban["state"] == "active" and ban["gateways"], ban
        gateway = ban["gateways"][0]
        # From the host through the published port: the proxy connects from the gateway.
        for _ in range(3):
            fail_five_times(box.server())
        assert logs_in(box.server()), box.logs()
        assert "REJECT" not in box.exec("iptables", "-S", "INPUT").stdout
        logs = box.logs()
        assert logs.count(GATEWAY_WARNING) == 1, logs  # once per window, not per failure
        assert f"failed logins come from {gateway}" in logs and f"banned {gateway}" not in logs, logs
        ban, line = login_ban(box)
        assert ban["state"] == "cannot see client addresses" and ban["banned"] == [], ban
        assert line == (f"login ban: cannot see client addresses (behind Docker's proxy: failed logins arrive "
                        f"from the gateway {gateway}, which is never banned)"), line


def test_without_net_admin_nothing_is_banned_and_a_warning_says_so() -> None:
    with workspace() as ws, nasbox_container(ws, ENV, "noguard") as box:
        assert "no NET_ADMIN capability: addresses that keep failing to log in are not banned" in box.logs()
        fail_five_times(box.server())
        fail_five_times(box.server())
        assert logs_in(box.server())
        ban, line = login_ban(box)
        assert ban["state"] == "inactive" and line == "login ban: inactive (no NET_ADMIN capability)"
