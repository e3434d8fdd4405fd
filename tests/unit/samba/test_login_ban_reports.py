"""Failed sign-ins reported to the login ban by other programs (the web dashboard)."""
from __future__ import annotations

from nasbox.samba import login_ban


def test_reported_failures_are_taken_once_and_only_valid_addresses():
    login_ban.report_failure("10.0.0.7")
    login_ban.report_failure("::ffff:10.0.0.8")  # IPv4-mapped: counted as the IPv4 address
    with open(login_ban.reported_file(), "a", encoding="utf-8") as f:
        f.write("not an address\n10.0.0.9 extra\n")
    assert login_ban.take_reported_failures() == ["10.0.0.7", "10.0.0.8"]
    assert login_ban.take_reported_failures() == []


def test_nothing_reported_is_nothing_taken():
    assert login_ban.take_reported_failures() == []
