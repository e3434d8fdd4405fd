"""The scheduler and job coordination, with real processes, real rsync and par2, and the
real history database."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nasbox.actions.health import scheduler_alive
from nasbox.config import load_config
from nasbox.history import History
from nasbox.scheduler import Scheduler
from nasbox.schedules import ScheduleEntry

pytestmark = pytest.mark.host

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# ---- a slow job to contend for -----------------------------------------------------------

@pytest.fixture
def slow_env(tmp_path: Path) -> dict[str, str]:
    """A sync that takes about 3 s (rsync at 400 KB/s) and a scrub of its destination."""
    source = tmp_path / "src"
    source.mkdir()
    for i in range(6):
        (source / f"f{i}").write_bytes(os.urandom(200_000))
    (tmp_path / "nasbox.yaml").write_text(json.dumps({"sync": {"docs": {
        "source": str(source), "destination": str(tmp_path / "backup"), "schedule": "daily", "bwlimit": "400K"}}}))
    return {"NASBOX_CONFIG": str(tmp_path / "nasbox.yaml"),
            "SCRUB_DOCS": f"{tmp_path / 'backup'} .pardatabase 5% weekly",
            "SYNC_OTHER": f"{tmp_path / 'src'} {tmp_path / 'elsewhere'} daily"}


STARTED: list[subprocess.Popen] = []


def nasbox(*args: str, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "nasbox", *args], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    STARTED.append(process)
    return process


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """A failing test must not leave a scheduler or a job running behind it."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def runs(home: Path) -> list[tuple]:
    db = sqlite3.connect(home / "state" / "history.sqlite")
    try:
        return db.execute("SELECT kind, job, trigger, started, finished, status, summary FROM runs ORDER BY started").fetchall()
    finally:
        db.close()


def assert_no_overlap(rows: list[tuple]) -> None:
    for a, b in zip(rows, rows[1:]):
        assert a[4] is not None and a[4] <= b[3], f"{a[:3]} ran until {a[4]}, {b[:3]} started at {b[3]}"


def test_the_same_job_never_runs_twice_at_once(slow_env, nasbox_dirs, monkeypatch):
    for key, value in slow_env.items():
        monkeypatch.setenv(key, value)
    first, second = nasbox("sync", "docs", "--now", env={}), nasbox("sync", "docs", "--now", env={})
    config = load_config()
    history = History()
    scheduler = Scheduler(config, history)
    scheduler.enqueue(ScheduleEntry("sync", "docs", "* * * * *"), "scheduled")
    scheduler.dispatch()  # a third, scheduled, at the same time
    assert first.wait(60) == 0 and second.wait(60) == 0
    deadline = time.monotonic() + 60
    while scheduler.running and time.monotonic() < deadline:
        scheduler.reap()
        time.sleep(0.2)
    history.close()
    rows = [r for r in runs(nasbox_dirs["home"]) if r[:2] == ("sync", "docs")]
    assert sorted(r[2] for r in rows) == ["now", "now", "scheduled"]
    assert_no_overlap(rows)


def test_no_wait_exits_75_while_it_runs(slow_env):
    first = nasbox("sync", "docs", "--now", env=slow_env)
    time.sleep(1.0)
    busy = nasbox("sync", "docs", "--now", "--no-wait", env=slow_env)
    out, _ = busy.communicate(timeout=30)
    assert busy.returncode == 75 and "sync docs is running already" in out
    assert first.wait(60) == 0


def test_jobs_with_overlapping_paths_serialize(slow_env, nasbox_dirs):
    sync = nasbox("sync", "docs", "--now", env=slow_env)
    time.sleep(0.5)
    scrub = nasbox("scrub", "docs", "--now", env=slow_env)  # the sync's destination
    other = nasbox("sync", "other", "--now", env=slow_env)  # shares the source: also waits
    assert sync.wait(60) == 0 and scrub.wait(60) == 0 and other.wait(60) == 0
    rows = runs(nasbox_dirs["home"])
    assert [r[:2] for r in rows][0] == ("sync", "docs")
    # The sync's parity update of its destination is a run of the scrub job of its own,
    # recorded within the sync's run; every other run waits for the one before it.
    nested = [r for r in rows if r[:3] == ("scrub", "docs", "update")]
    assert len(nested) == 1 and rows[0][3] <= nested[0][3] <= nested[0][4] <= rows[0][4], rows
    assert_no_overlap([r for r in rows if r not in nested])


def test_independent_jobs_run_together_up_to_the_limit(tmp_path, nasbox_dirs):
    env = {"NASBOX_CONFIG": "/dev/null"}
    for name in ("a", "b"):
        source = tmp_path / f"src-{name}"
        source.mkdir()
        (source / "f").write_bytes(os.urandom(600_000))
    (tmp_path / "nasbox.yaml").write_text(json.dumps({"sync": {
        name: {"source": str(tmp_path / f"src-{name}"), "destination": str(tmp_path / f"dst-{name}"),
               "schedule": "daily", "bwlimit": "400K"} for name in ("a", "b")}}))
    env["NASBOX_CONFIG"] = str(tmp_path / "nasbox.yaml")
    for limit, together in (("2", True), ("1", False)):
        procs = [nasbox("sync", name, "--now", env={**env, "MAX_PARALLEL_JOBS": limit}) for name in ("a", "b")]
        outputs = [p.communicate(timeout=60)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        a, b = runs(nasbox_dirs["home"])[-2:]
        overlapped = a[4] > b[3]
        assert overlapped is together, (limit, a, b)


def test_jobs_wait_while_memory_is_low(slow_env, nasbox_dirs):
    env = {**slow_env, "MIN_AVAILABLE_MEMORY_MB": str(10**9)}  # far above what any machine has
    waiting = nasbox("sync", "docs", "--now", env=env)
    time.sleep(3)
    assert waiting.poll() is None  # still waiting
    waiting.send_signal(signal.SIGTERM)
    out, _ = waiting.communicate(timeout=30)
    assert waiting.returncode == 75 and "stopped before it started" in out
    assert "sync docs waits:" in out and "min_available_memory_mb is 1000000000" in out
    assert not (nasbox_dirs["home"] / "state" / "history.sqlite").exists()  # it never started
    assert not (Path(slow_env["SCRUB_DOCS"].split()[0])).exists()
    refused = nasbox("sync", "docs", "--now", "--no-wait", env=env)
    assert refused.wait(30) == 75


def test_sigterm_ends_rsync_and_records_the_run_as_interrupted(slow_env, nasbox_dirs):
    job = nasbox("sync", "docs", "--now", env=slow_env)
    time.sleep(1.5)
    started = time.monotonic()
    job.send_signal(signal.SIGTERM)
    out, _ = job.communicate(timeout=30)
    assert time.monotonic() - started < 5
    assert job.returncode == 75, out
    [row] = runs(nasbox_dirs["home"])
    assert row[5] == "warning" and row[6].startswith("interrupted"), row
    assert subprocess.run(["pgrep", "-f", "rsync.*--bwlimit=400K"], capture_output=True).returncode == 1


def test_missed_run_is_caught_up_once_at_start(slow_env, nasbox_dirs, monkeypatch):
    for key, value in slow_env.items():
        monkeypatch.setenv(key, value)
    history = History()
    tz = Scheduler(load_config(), history).tz
    # A weekly scrub on the weekday three days ahead: its last fire lies four days back, never
    # in the two days the container is down below, whatever day the test runs.
    weekday = (datetime.now(tz).isoweekday() + 3) % 7
    monkeypatch.setenv("SCRUB_DOCS", slow_env["SCRUB_DOCS"].replace("weekly", f"'0 4 * * {weekday}'"))
    config = load_config()
    scheduler = Scheduler(config, history)
    scheduler.collect_due(datetime.now(scheduler.tz), starting=True)
    assert scheduler.queue == []  # a first start: nothing was missed
    two_days_ago = time.time() - 2 * 86400  # as if the container had been down since
    for entry in scheduler.entries:
        history.set_last_due(entry.key, two_days_ago)
    restarted = Scheduler(config, history)
    restarted.collect_due(datetime.now(restarted.tz), starting=True)
    queued = [(q.entry.kind, q.entry.name, q.entry.purpose == "update", q.trigger) for q in restarted.queue]
    # Syncs first. The weekly scrub did not fall due in those two days; its hourly update did.
    assert queued == [("sync", "docs", False, "catch-up"), ("sync", "other", False, "catch-up"),
                      ("scrub", "docs", True, "update")]
    restarted.dispatch()
    assert [job for job in restarted.running] == [("sync", "docs")]  # 'other' and the scrub overlap it
    deadline = time.monotonic() + 90
    while (restarted.queue or restarted.running) and time.monotonic() < deadline:
        restarted.reap()
        restarted.dispatch()
        time.sleep(0.2)
    history.close()
    rows = {(r[0], r[1]): r for r in runs(nasbox_dirs["home"])}
    # The sync into the scrub's directory updated its parity: the update finds nothing to do.
    assert {(r[0], r[1], r[2], r[5]) for r in rows.values()} == {
        ("sync", "docs", "catch-up", "good"), ("sync", "other", "catch-up", "good"), ("scrub", "docs", "update", "good")}
    for later in (("sync", "other"), ("scrub", "docs")):  # each overlaps the sync into /backup's source or it
        assert_no_overlap([rows[("sync", "docs")], rows[later]])
    again = Scheduler(config, History())
    again.collect_due(datetime.now(again.tz), starting=True)
    assert again.queue == []  # caught up once, not again


def test_scheduler_daemon_heartbeat_status_and_clean_stop(slow_env, nasbox_dirs):
    daemon = nasbox("scheduler", env=slow_env)
    deadline = time.monotonic() + 20
    while not scheduler_alive()[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert scheduler_alive()[0]
    status = subprocess.run([sys.executable, "-m", "nasbox", "status", "--json"], capture_output=True,
                            text=True, env={**os.environ, **slow_env})
    data = json.loads(status.stdout)
    jobs = {(j["kind"], j["name"]): j for j in data["jobs"]}
    assert "T02:30" in jobs[("sync", "docs")]["next_run"] and jobs[("sync", "docs")]["last_run"] is None
    assert ":15" in jobs[("scrub", "docs")]["next_parity_update"]
    daemon.send_signal(signal.SIGTERM)
    out, _ = daemon.communicate(timeout=30)
    assert daemon.returncode == 0 and "scheduler stopped" in out
    table = subprocess.run([sys.executable, "-m", "nasbox", "status"], capture_output=True, text=True,
                           env={**os.environ, **slow_env}).stdout
    assert "sync docs" in table and "never run" in table and "NEXT RUN" in table


def test_every_run_is_also_logged_to_a_rotated_file(slow_env, nasbox_dirs):
    assert nasbox("sync", "docs", "--now", env=slow_env).wait(60) == 0
    log_file = nasbox_dirs["home"] / "logs" / "sync-docs.log"
    text = log_file.read_text()
    assert "sync docs: started (now)" in text and "sync docs: good: 6 files transferred" in text


def test_a_syncs_parity_update_is_in_the_history_and_the_sync_took_what_it_took(tmp_path, nasbox_dirs):
    """The parity update a sync runs for the scrub job of its destination is a run of that
    job; and the sync's duration covers its whole run, parity update included."""
    source = tmp_path / "src"
    source.mkdir()
    for i in range(30):
        (source / f"f{i}").write_bytes(os.urandom(300_000))
    env = {"NASBOX_CONFIG": "/dev/null", "SYNC_DOCS": f"{source} {tmp_path / 'backup'} daily",
           "SCRUB_DOCS": f"{tmp_path / 'backup'} .pardatabase 5% weekly"}
    sync = nasbox("sync", "docs", "--now", env=env)
    assert sync.wait(120) == 0, sync.stdout.read()
    status = json.loads(subprocess.run([sys.executable, "-m", "nasbox", "status", "--json"], capture_output=True,
                                       text=True, env={**os.environ, **env}, check=True).stdout)
    last = {job["kind"]: job["last_run"] for job in status["jobs"]}
    assert last["scrub"] is not None and (last["scrub"]["trigger"], last["scrub"]["status"]) == ("update", "info")
    assert "30 new" in last["scrub"]["summary"]
    (sync_row,) = [r for r in runs(nasbox_dirs["home"]) if r[0] == "sync"]
    (update_row,) = [r for r in runs(nasbox_dirs["home"]) if r[0] == "scrub"]
    assert sync_row[3] <= update_row[3] and update_row[4] <= sync_row[4]  # the update within the sync
    assert last["sync"]["duration_s"] >= round(update_row[4] - update_row[3], 1)
