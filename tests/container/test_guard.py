"""Repeated failed logins from one address get it banned, where the container has NET_ADMIN
(CONTRACT 6); without it, a warning at start says so and nothing is banned."""
from __future__ import annotations

import pytest

from tests.container.helpers import CAPS, nasbox_container, workspace
from tests.support.smbclient import output, smbclient

pytestmark = pytest.mark.container

ENV = {"USER_ALICE": "alice:right-pw", "SHARE_DOCS": "write docs /data/docs alice"}


def fail_five_times(box) -> None:
    for _ in range(5):
        result = smbclient(box.server(), "docs", "alice", "wrong-pw", "ls")
        assert result.returncode != 0


def test_an_address_is_banned_after_five_failed_logins() -> None:
    with workspace() as ws, nasbox_container(ws, ENV, "guard", caps=[*CAPS, "NET_ADMIN"]) as box:
        assert smbclient(box.server(), "docs", "alice", "right-pw", "ls").returncode == 0
        fail_five_times(box)
        refused = smbclient(box.server(), "docs", "alice", "right-pw", "ls")
        assert refused.returncode != 0, output(refused)  # even the right password: the address is banned
        rules = box.exec("iptables", "-S", "INPUT").stdout
        assert "--dport 445 -j REJECT --reject-with tcp-reset" in rules, rules
        assert "banned" in box.logs() and "after 5 failed logins" in box.logs()


def test_without_net_admin_nothing_is_banned_and_a_warning_says_so() -> None:
    with workspace() as ws, nasbox_container(ws, ENV, "noguard") as box:
        assert "no NET_ADMIN capability: addresses that keep failing to log in are not banned" in box.logs()
        fail_five_times(box)
        fail_five_times(box)
        assert smbclient(box.server(), "docs", "alice", "right-pw", "ls").returncode == 0
