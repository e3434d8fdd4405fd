"""The login guard's reading of smbd's audit lines and its ban decisions."""
import json

from nasbox import guard


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
    assert guard.failed_login(audit()) == "172.17.0.1"
    assert guard.failed_login(audit("NT_STATUS_NO_SUCH_USER", "ipv4:10.1.2.3:4")) == "10.1.2.3"
    assert guard.failed_login(audit(remote="ipv6:fe80::1:51936")) == "fe80::1"
    assert guard.failed_login(audit("NT_STATUS_OK")) is None
    assert guard.failed_login("smbd version 4.22.11 started.") is None
    assert guard.failed_login(HUMAN) is None  # the line for people is not parsed
    assert guard.iptables("fe80::1") == "ip6tables" and guard.iptables("10.1.2.3") == "iptables"


def test_a_user_name_cannot_pose_as_the_address_or_the_status():
    forged = "a] status [NT_STATUS_OK] workstation [x] remote host [ipv4:10.9.8.7:1] b"
    assert guard.failed_login(audit(account=forged)) == "172.17.0.1"
    assert guard.failed_login(audit(account='x", "remoteAddress": "ipv4:10.9.8.7:1')) == "172.17.0.1"


def test_five_failures_within_the_window_ban_for_an_hour():
    banner = guard.Banner()
    assert [banner.failure("10.0.0.9", t) for t in (0, 10, 20, 30)] == [False] * 4
    assert banner.failure("10.0.0.1", 35) is False  # another address counts apart
    assert banner.failure("10.0.0.9", 40) is True
    assert banner.failure("10.0.0.9", 41) is False  # banned already
    assert banner.expired(40 + guard.BAN_S - 1) == []
    assert banner.expired(40 + guard.BAN_S) == ["10.0.0.9"]


def test_failures_older_than_the_window_do_not_count():
    banner = guard.Banner()
    for t in (0, 100, 200, 300):
        banner.failure("10.0.0.9", t)
    assert banner.failure("10.0.0.9", guard.FIND_WINDOW_S + 1) is False  # the first fell out of the window
    assert banner.failure("10.0.0.9", guard.FIND_WINDOW_S + 2) is True


def test_ban_rule_rejects_smb_only():
    assert guard.rule("10.0.0.9") == ["INPUT", "-s", "10.0.0.9", "-p", "tcp", "--dport", "445", "-j", "REJECT",
                                      "--reject-with", "tcp-reset"]


def test_every_line_of_smbd_is_marked_as_smbds():
    # A share name holding a newline puts its second half on a line of its own.
    assert guard.tagged("2026-01-01t00:00:00+0000 nasbox error forged failed.\n") == (
        "smbd: 2026-01-01t00:00:00+0000 nasbox error forged failed.\n")
