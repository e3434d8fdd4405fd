"""Schedules: named schedules, fire times in TZ, daylight saving, and each kind's entries."""
from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from nasbox.config import load_config
from nasbox.scheduler import entries
from nasbox.schedules import ScheduleEntry, next_fire
from nasbox.scrub.kind import HOURLY_UPDATE

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def test_named_schedules_have_fixed_times():
    after = at(2026, 6, 10, 12, 0)
    assert next_fire("0 * * * *", after) == at(2026, 6, 10, 13, 0)
    config = load_config({"NASBOX_CONFIG": "/dev/null", "TZ": "Europe/Berlin",
                          "SYNC_D": "/a /b daily", "SCRUB_W": "/c .par 5% weekly", "SCRUB_M": "/e .par 5% monthly",
                          "SCRUB_H": "/g .par 5% hourly"})
    found = {(e.kind, e.name, e.purpose == "update"): e.cron for e in entries(config)}
    assert found == {("sync", "d", False): "30 2 * * *", ("scrub", "w", False): "0 4 * * 0",
                     ("scrub", "w", True): HOURLY_UPDATE, ("scrub", "m", False): "0 5 1 * *",
                     ("scrub", "m", True): HOURLY_UPDATE, ("scrub", "h", False): "0 * * * *"}


def test_next_runs_are_computed_in_tz():
    utc_now = datetime(2026, 6, 10, 0, 15, tzinfo=ZoneInfo("UTC"))  # 02:15 in Berlin
    fire = next_fire("30 2 * * *", utc_now.astimezone(BERLIN))
    assert fire == at(2026, 6, 10, 2, 30) and fire.utcoffset().total_seconds() == 7200


def test_spring_forward_runs_once_at_the_first_valid_time():
    # 2026-03-29: clocks jump from 02:00 to 03:00; 02:30 does not exist that night.
    first = next_fire("30 2 * * *", at(2026, 3, 28, 12, 0))
    assert first == at(2026, 3, 29, 3, 0)
    assert next_fire("30 2 * * *", first) == at(2026, 3, 30, 2, 30)


def test_fall_back_runs_a_fixed_time_once_but_every_real_hour():
    # 2026-10-25: 02:00 to 03:00 happens twice (CEST, then CET).
    first = next_fire("30 2 * * *", at(2026, 10, 24, 12, 0))
    assert first.isoformat() == "2026-10-25T02:30:00+02:00"
    assert next_fire("30 2 * * *", first).isoformat() == "2026-10-26T02:30:00+01:00"  # not 02:30+01:00 again
    hours, t = [], at(2026, 10, 25, 1, 30)
    for _ in range(4):
        t = next_fire("0 * * * *", t)
        hours.append(t.isoformat())
    assert hours == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
                     "2026-10-25T03:00:00+01:00", "2026-10-25T04:00:00+01:00"]


def test_a_scheduled_run_never_imports_a_nasbox_package_from_its_working_directory(tmp_path):
    """Jobs run as root from whatever directory the scheduler (or the dashboard) has: a
    `nasbox` package planted there must not be what `-m nasbox` runs."""
    planted = tmp_path / "cwd" / "nasbox"
    planted.mkdir(parents=True)
    marker = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text("")
    (planted / "__main__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    argv = ScheduleEntry("sync", "nothing", "30 2 * * *").argv("scheduled")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "NASBOX_CONFIG": "/dev/null", "NASBOX_HOME": str(tmp_path / "home"),
           "NASBOX_RUN_DIR": str(tmp_path / "run")}
    ran = subprocess.run(argv, cwd=planted.parent, env=env, capture_output=True, text=True, timeout=60)
    assert not marker.exists()
    assert ran.returncode == 2 and "no sync job named nothing" in ran.stdout + ran.stderr  # nasbox's own answer
