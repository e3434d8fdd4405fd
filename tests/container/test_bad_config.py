"""A bad configuration stops the container before any service starts, with
every problem on a line of its own, no password, and nothing on disk changed."""
from __future__ import annotations

import pytest

from tests.container.helpers import nasbox_container, workspace

pytestmark = pytest.mark.container

SHARE_PASSWORD = "Share-Secret-4711"
USER_PASSWORD = "User-Secret-0815"  # a valid item: its password must not leak either
BAD_ENV = {
    "SHARE_X": f"rw x relative/path alice:{SHARE_PASSWORD}",
    "SYNC_Y": "/a /b often",
    "TZ": "Nowhere/Land",
    "USER_DAVE": f"dave:{USER_PASSWORD}",
}
# (origin, what is wrong): each must be named on a line of its own.
PROBLEMS = [
    ("env SHARE_X", "access"),
    ("env SHARE_X", "paths"),
    ("env SYNC_Y", "schedule"),
    ("env TZ", "Nowhere/Land"),
]


def test_bad_configuration_exits_78_listing_every_problem() -> None:
    with workspace() as ws:
        with nasbox_container(ws, BAD_ENV, "badconfig", ready=False) as box:
            exit_code = box.container.get_wrapped_container().wait(timeout=60)["StatusCode"]
            log = box.logs()
            config_after = sorted(p.name for p in ws.config.iterdir())

    assert exit_code == 78, log
    lines = log.splitlines()
    for origin, what in PROBLEMS:
        assert [line for line in lines if origin in line and what in line], f"{origin} {what} missing:\n{log}"
    assert len([line for line in lines if "env " in line]) == len(PROBLEMS), log  # one line each
    assert SHARE_PASSWORD not in log and USER_PASSWORD not in log, log
    assert "smbd" not in log and "supervisord" not in log, log  # no service started
    assert config_after == [], f"/config was changed: {config_after}"
