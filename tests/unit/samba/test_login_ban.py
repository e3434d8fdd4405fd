"""The login ban's reading of smbd's audit lines and its ban decisions."""
import json

from nasbox.samba import firewall_cmds, login_ban
from nasbox.actions.status import login_ban_line

def audit(status: str = "NT_STATUS_WRONG_PASSWORD", remote: str = "ipv4:172.17.0.1:51936",
          account: str = "alice") -> str:
    """A JSON audit line as smbd 4.22 writes it (auth_json_audit:2), shortened."""
    return json.dumps({"timestamp": "2026-11-28T17:47:52.826962+0000", "type": "Authentication",
                       "Authentication": {"version": {"major": 1, "minor": 3}, "eventId": 4625, "status": status,
                                          "localAddress": "ipv4:172.17.0.5:445", "remoteAddress": remote,
                                          "serviceDescription": "SMB2", "clientDomain": "WORKGROUP",
                                          "clientAccount": account, "workstation": "VM",
                                          "mappedAccount": account, "passwordType": "NTLMv2"}}) + "\n"


HUMAN = ("Auth: [SMB2,(null)] user [WORKGROUP]\\[alice] at [Fri, 27 Nov 2026 10:58:44.466392 UTC] with [NTLMv2] "
         "status [NT_STATUS_WRONG_PASSWORD] workstation [VM] remote host [ipv4:172.17.0.1:51936] mapped to "
         "[WORKGROUP]\\[alice]. local host [ipv4:172.17.0.2:445] ")


def test_failed_logins_are_read_from_json_audit_lines():
    assert login_ban.failed_login(audit()) == "172.17.0.1"
    assert login_ban.failed_login(audit("NT_STATUS_NO_SUCH_USER", "ipv4:10.1.2.3:4")) == "10.1.2.3"
    assert login_ban.failed_login(audit(remote="ipv6:fe80::1:51936")) == "fe80::1"
    assert login_ban.failed_login(audit("NT_STATUS_OK")) is None
    assert login_ban.failed_login("smbd version 4.22.11 started.") is None
    assert login_ban.failed_login(HUMAN) is None  # the line for people is not parsed
    assert firewall_cmds.ban("fe80::1")[0] == "ip6tables" and firewall_cmds.ban("10.1.2.3")[0] == "iptables"


def test_a_user_name_cannot_pose_as_the_address_or_the_status():
    forged = "a] status [NT_STATUS_OK] workstation [x] remote host [ipv4:10.9.8.7:1] b"
    assert login_ban.failed_login(audit(account=forged)) == "172.17.0.1"
    assert login_ban.failed_login(audit(account='x", "remoteAddress": "ipv4:10.9.8.7:1')) == "172.17.0.1"


def test_every_line_of_smbd_is_marked_as_smbds():
    # A share name holding a newline puts its second half on a line of its own.
    assert login_ban.tagged("2026-01-01t00:00:00+0000 nasbox error forged failed.\n") == (
        "smbd: 2026-01-01t00:00:00+0000 nasbox error forged failed.\n")


def test_five_failures_within_the_window_ban_for_an_hour():
    banner = login_ban.Banner()
    assert [banner.failure("10.0.0.9", t) for t in (0, 10, 20, 30)] == [False] * 4
    assert banner.failure("10.0.0.1", 35) is False  # another address counts apart
    assert banner.failure("10.0.0.9", 40) is True
    assert banner.failure("10.0.0.9", 41) is False  # banned already
    assert banner.expired(40 + login_ban.BAN_S - 1) == []
    assert banner.expired(40 + login_ban.BAN_S) == ["10.0.0.9"]


def test_failures_older_than_the_window_do_not_count():
    banner = login_ban.Banner()
    for t in (0, 100, 200, 300):
        banner.failure("10.0.0.9", t)
    assert banner.failure("10.0.0.9", login_ban.FIND_WINDOW_S + 1) is False  # the first fell out of the window
    assert banner.failure("10.0.0.9", login_ban.FIND_WINDOW_S + 2) is True


def test_ban_rule_rejects_smb_only():
    rule = ["INPUT", "-s", "10.0.0.9", "-p", "tcp", "--dport", "445", "-j", "REJECT", "--reject-with", "tcp-reset"]
    assert firewall_cmds.ban("10.0.0.9") == ["iptables", "-I", *rule]
    assert firewall_cmds.unban("10.0.0.9") == ["iptables", "-D", *rule]


def test_addresses_are_compared_without_zone_or_ipv4_mapping():
    assert login_ban.plain_address("::ffff:172.17.0.1") == "172.17.0.1"
    assert login_ban.plain_address("fe80::1%eth0") == "fe80::1"
    assert login_ban.failed_login(audit(remote="ipv6:::ffff:172.17.0.1:51936")) == "172.17.0.1"


def test_a_gateway_is_never_banned_and_reported_once_per_window():
    banner = login_ban.Banner(gateways=frozenset({"172.17.0.1"}))
    reported = [banner.gateway_failure("172.17.0.1", t) for t in range(0, 50, 5)]
    assert reported == [True] + [False] * 9
    assert [banner.failure("172.17.0.1", t) for t in range(0, 50, 5)] == [False] * 10
    assert banner.banned == {}
    assert banner.gateway_failure("172.17.0.1", login_ban.FIND_WINDOW_S) is True  # a window later: again
    # Other addresses are still banned as before.
    assert banner.gateway_failure("10.0.0.9", 0) is False
    assert [banner.failure("10.0.0.9", t) for t in range(5)] == [False] * 4 + [True]


def saved(enforce: bool, banner: login_ban.Banner) -> dict:
    login_ban.save_state(enforce, banner)
    return login_ban.status()


def test_status_says_what_the_ban_can_do():
    assert login_ban.status()["state"] == "not running"
    assert saved(False, login_ban.Banner())["state"] == "inactive"
    banner = login_ban.Banner(gateways=frozenset({"172.17.0.1"}))
    active = saved(True, banner)
    assert active["state"] == "active" and active["detail"] == "never bans the gateway 172.17.0.1"
    banner.failure("10.0.0.9", 0)
    banner.banned["10.0.0.8"] = login_ban.BAN_S
    banner.gateway_failure("172.17.0.1", 0)
    blind = saved(True, banner)
    assert blind["state"] == "cannot see client addresses"
    assert "behind Docker's proxy" in blind["detail"] and "172.17.0.1" in blind["detail"]
    assert blind["banned"] == ["10.0.0.8"]


def test_status_line():
    banner = login_ban.Banner(gateways=frozenset({"172.17.0.1"}))
    banner.gateway_failure("172.17.0.1", 0)
    assert login_ban_line(saved(True, banner)) == (
        "login ban: cannot see client addresses (behind Docker's proxy: failed logins arrive from the gateway "
        "172.17.0.1, which is never banned)")
    assert login_ban_line(saved(False, login_ban.Banner())) == "login ban: inactive (no NET_ADMIN capability)"
