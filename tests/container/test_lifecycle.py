"""Stopping, restarting and re-creating the container: a clean stop, the configuration
applied anew at every start, and the remembered UIDs of nasbox.accounts."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.helpers import (
    DEFAULT_UID,
    STOP_GRACE_S,
    USERS,
    Nasbox,
    assert_reader_can_read,
    assert_writer_can_write,
    docker,
    nasbox_container,
    stop_container,
    workspace,
)
from tests.support.access_matrix import matrix_env

pytestmark = pytest.mark.container

ENV = matrix_env(USERS, "/data/docs", "/data/other")
ENV_WITH_AARON = {**ENV, "USER_AARON": "aaron:aaron-pw-4"}  # sorts before alice


@pytest.fixture
def nasbox() -> Iterator[Nasbox]:
    with workspace() as ws, nasbox_container(ws, ENV, "lifecycle") as box:
        yield box


def test_stop_is_quick_and_clean(nasbox: Nasbox) -> None:
    elapsed = stop_container(nasbox)
    state = nasbox.inspect()["State"]
    assert not state["Running"]
    assert elapsed < 10, f"docker stop took {elapsed:.1f} s; log:\n{nasbox.logs()}"
    assert state["ExitCode"] == 0, nasbox.logs()


def started_at(box: Nasbox) -> str:
    return box.inspect()["State"]["StartedAt"]


def test_docker_restart_keeps_users_working(nasbox: Nasbox, tmp_path: Path) -> None:
    assert_writer_can_write(nasbox, tmp_path, "before-restart")
    before = started_at(nasbox)
    result = docker("restart", "-t", str(STOP_GRACE_S), nasbox.name, timeout=STOP_GRACE_S + 30)
    assert result.returncode == 0, result.stderr
    assert started_at(nasbox) != before  # it did start again
    nasbox.wait_ready()
    assert_writer_can_write(nasbox, tmp_path, "after-restart")
    assert_reader_can_read(nasbox, tmp_path, "after-restart")


def test_stop_then_start_keeps_users_working(nasbox: Nasbox, tmp_path: Path) -> None:
    assert_writer_can_write(nasbox, tmp_path, "before-stop")
    before = started_at(nasbox)
    stop_container(nasbox)
    assert nasbox.inspect()["State"]["ExitCode"] == 0, nasbox.logs()
    result = docker("start", nasbox.name)
    assert result.returncode == 0, result.stderr
    assert started_at(nasbox) != before
    nasbox.wait_ready()
    assert_writer_can_write(nasbox, tmp_path, "after-start")
    assert_reader_can_read(nasbox, tmp_path, "after-start")


def test_a_new_container_with_the_same_config_keeps_uids(tmp_path: Path) -> None:
    # The share directory belongs to alice's first UID (mode 0755): only that UID can write it.
    with workspace(docs_owner=DEFAULT_UID) as ws:
        with nasbox_container(ws, ENV, "uids-first") as first:
            uids = {name: first.uid(name) for name in USERS.values()}
            assert uids[USERS["writer"]] == DEFAULT_UID
        assert list((ws.config / "state").iterdir()), "nothing remembered under /config/state"

        with nasbox_container(ws, ENV_WITH_AARON, "uids-second") as second:
            assert {name: second.uid(name) for name in USERS.values()} == uids
            assert second.uid("aaron") not in uids.values()  # a UID once given stays its user's
            assert_writer_can_write(second, tmp_path, "recreated")

    # Control: without the remembered state aaron would take alice's UID, so the check above
    # is what /config/state buys.
    with workspace() as fresh, nasbox_container(fresh, ENV_WITH_AARON, "uids-fresh") as control:
        assert control.uid("aaron") == DEFAULT_UID
        assert control.uid(USERS["writer"]) != DEFAULT_UID
