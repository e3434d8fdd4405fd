"""The filesystems in `nasbox status`, and the space warning sent to a real webhook server,
on real loop-mounted ext4 images."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nasbox import space, space_warning
from nasbox.config import load_config
from nasbox.history import History
from nasbox.scheduler import Scheduler
from tests.host.test_notify import Recorder
from tests.support.rawdisk import fill, loop_mount

pytestmark = pytest.mark.host


@pytest.fixture
def http() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A data disk and a backup disk, without a root reserve (used + free = size)."""
    with loop_mount(tmp_path / "data", size_mb=32, mkfs_options=("-m", "0")), \
            loop_mount(tmp_path / "backup", size_mb=16, mkfs_options=("-m", "0")):
        yield tmp_path / "data", tmp_path / "backup"


def write_config(tmp_path: Path, disks: tuple[Path, Path], **server: object) -> Path:
    data, backup = disks
    path = tmp_path / "nasbox.yaml"
    path.write_text(yaml.safe_dump({
        "server": server,
        "users": {"alice": {"password": "pw"}},
        "shares": {"docs": {"access": "write", "paths": [str(data / "docs")], "users": ["alice"]}},
        "sync": {"docs": {"source": str(data / "docs"), "destination": str(backup / "docs"), "schedule": "daily"}},
        "scrub": {"docs": {"directory": str(backup / "docs"), "database": str(backup / "parity"),
                           "redundancy": "5%", "schedule": "weekly"}},
    }))
    return path


def nasbox(config: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "nasbox", *args], env={**os.environ, "NASBOX_CONFIG": str(config)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_shows_each_filesystem_once_with_what_it_holds(tmp_path: Path, disks: tuple[Path, Path]) -> None:
    data, backup = disks
    (data / "docs").mkdir()
    (data / "docs" / "f").write_bytes(os.urandom(3 << 20))
    config = write_config(tmp_path, disks)
    found = json.loads(nasbox(config, "status", "--json"))["filesystems"]
    assert [f["mountpoint"] for f in found] == [str(data), str(backup)]
    on_data, on_backup = found
    assert on_data["holds"] == [f"share docs: {data}/docs", f"sync docs: {data}/docs"]
    assert on_backup["holds"] == [f"sync docs: {backup}/docs", f"scrub docs: {backup}/docs",
                                  f"scrub docs: {backup}/parity"]  # not made yet: where they will be
    st = os.statvfs(data)
    assert (on_data["size"], on_data["free"]) == (st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)
    assert on_data["used"] == (st.f_blocks - st.f_bfree) * st.f_frsize and on_data["used"] > 3 << 20
    assert on_data["used_percent"] == round(100 * on_data["used"] / (on_data["used"] + on_data["free"]), 1)

    text = nasbox(config, "status")
    header, *rows = text.split("\n\n")[-1].splitlines()
    assert header.split() == ["FILESYSTEM", "SIZE", "USED", "FREE", "USE%", "HOLDS"]
    assert rows[0].startswith(str(data)) and f"share docs: {data}/docs, sync docs: {data}/docs" in rows[0]
    assert f"{on_data['used_percent']:.0f}%" in rows[0].split()
    assert rows[1].startswith(str(backup)) and f"scrub docs: {backup}/parity" in rows[1]


def used_to(directory: Path, percent: float) -> None:
    usage = space.usage(str(directory))
    fill(directory, leave=int((usage.used + usage.free) * (100 - percent) / 100))


def test_a_warning_once_when_a_disk_crosses_the_threshold_and_once_when_it_is_back(
    tmp_path: Path, disks: tuple[Path, Path], http: Recorder, nasbox_dirs: dict[str, Path]
) -> None:
    data, backup = disks
    config = load_config({"NASBOX_CONFIG": str(write_config(tmp_path, disks)), "SPACE_WARNING": "60%",
                          "NOTIFY_OPS": f"webhook {http.url('/hook')}"})
    assert space_warning.check(config) == [] and http.requests == []

    used_to(backup, 70)
    assert [r.status for r in space_warning.check(config)] == ["warning"]
    assert space_warning.check(config) == []  # still over: not again
    used_to(backup, 80)
    assert space_warning.check(config) == []
    [payload] = [r.json() for r in http.requests]
    assert (payload["job"], payload["status"]) == (f"space {backup}", "warning")
    assert payload["message"].startswith(f"{backup} is 7") and "% full (" in payload["message"]
    assert payload["message"].endswith("free), at or above space_warning 60%")
    assert f"it holds sync docs: {backup}/docs" in payload["details"]
    state_file = nasbox_dirs["home"] / "state" / "space-warnings.json"
    assert list(json.loads(state_file.read_text())) == [str(backup)]
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600

    (backup / "filler").unlink()
    assert [r.status for r in space_warning.check(config)] == ["info"]
    assert space_warning.check(config) == []
    assert [r.json()["status"] for r in http.requests] == ["warning", "info"]
    assert http.requests[1].json()["message"].endswith(": back under space_warning 60%")
    assert json.loads(state_file.read_text()) == {}


def test_the_warning_survives_a_restart_and_a_disk_at_the_line_does_not_chatter(
    tmp_path: Path, disks: tuple[Path, Path], http: Recorder
) -> None:
    data, backup = disks
    config = load_config({"NASBOX_CONFIG": str(write_config(tmp_path, disks, space_warning="60%")),
                          "NOTIFY_OPS": f"webhook {http.url('/hook')}"})
    used_to(backup, 61)
    assert [r.status for r in space_warning.check(config)] == ["warning"]
    os.truncate(backup / "filler", (backup / "filler").stat().st_size - int(space.usage(str(backup)).size * 0.015))
    assert 59 < space.usage(str(backup)).used_percent < 60  # under the line, by less than a point
    assert space_warning.check(config) == []  # a check in a process started anew: the state file tells
    assert len(http.requests) == 1


def test_the_scheduler_checks_space_and_a_slow_target_does_not_hold_it_up(
    tmp_path: Path, disks: tuple[Path, Path], http: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, backup = disks
    config = load_config({"NASBOX_CONFIG": str(write_config(tmp_path, disks, space_warning="50%")),
                          "NOTIFY_OPS": f"webhook {http.url('/hook')}"})
    used_to(data, 75)
    real_check = space_warning.check

    def slow_check(*args: object) -> object:
        time.sleep(2)
        return real_check(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(space_warning, "check", slow_check)
    scheduler = Scheduler(config, History())
    began = time.monotonic()
    scheduler.tick()
    scheduler.tick()  # at once: one check at a time, one a minute
    assert time.monotonic() - began < 1
    deadline = time.monotonic() + 30
    while not http.requests and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r.json()["job"] for r in http.requests] == [f"space {data}"]
    scheduler.space_check.join()  # type: ignore[union-attr]
    scheduler.tick()
    assert scheduler.space_check is not None and not scheduler.space_check.is_alive()  # not due for a minute
