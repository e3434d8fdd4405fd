"""The scheduler daemon: runs every job on its schedule, in TZ, and never two that clash.

Small on purpose (supercronic's lesson): each due run is a child process, `nasbox sync|scrub
JOB --now --trigger ...`, the same command a person runs, so it takes the same locks, writes
the same history and sends the same notifications. The scheduler only decides when, and in
which order: a job already running or queued is not queued again; a run waits while a job
whose paths overlap runs or was queued before it (so a sync goes before the scrub of its
destination); at most max_parallel_jobs run at once.

Named schedules have fixed times: hourly at minute 0, daily at 02:30, weekly on Sunday at
04:00, monthly on the 1st at 05:00. A scrub job scheduled less often than hourly also gets a
parity update (`--update-only`) every hour at minute 15. A fire time missed while the
container was down runs once at start ("catch-up"); a new job waits for its first fire time.
On the day clocks go back, a schedule with a fixed hour runs once, not twice.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from nasbox import state
from nasbox.config import Config
from nasbox.history import History
from nasbox.jobs import all_jobs, job_paths, overlaps

log = logging.getLogger(__name__)

NAMED_SCHEDULES = {"hourly": "0 * * * *", "daily": "30 2 * * *", "weekly": "0 4 * * 0", "monthly": "0 5 1 * *"}
HOURLY_UPDATE = "15 * * * *"
HEARTBEAT_FILE = "scheduler.heartbeat"
HEARTBEAT_S = 15.0
TICK_S = 1.0
STOP_WAIT_S = 20.0


def cron_of(schedule: str) -> str:
    return NAMED_SCHEDULES.get(schedule, schedule)


def next_fire(cron: str, after: datetime) -> datetime:
    """The first fire time after `after` (aware, in TZ). When clocks go back, a fixed-hour
    schedule would fire twice at the same wall-clock time: the repeat is skipped."""
    times = croniter(cron, after)
    fire: datetime = times.get_next(datetime)
    fixed_hour = cron.split()[1] != "*"
    while fixed_hour and fire.replace(tzinfo=None) == after.replace(tzinfo=None):
        fire = times.get_next(datetime)
    return fire


def more_often_than_hourly(cron: str, tz: ZoneInfo) -> bool:
    """Whether a schedule fires at least every hour (then no separate parity update)."""
    times = croniter(cron, datetime(2025, 1, 1, tzinfo=tz))
    fires = [times.get_next(datetime) for _ in range(25)]
    return all(b - a <= timedelta(hours=1) for a, b in zip(fires, fires[1:]))


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    cron: str
    update_only: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}:{'update' if self.update_only else 'run'}"

    def argv(self, trigger: str) -> list[str]:
        argv = [sys.executable, "-m", "nasbox", self.kind, self.name, "--now", "--trigger", trigger]
        return argv + (["--update-only"] if self.update_only else [])


def entries(config: Config) -> list[Entry]:
    tz = ZoneInfo(config.server.timezone)
    found = [Entry("sync", name, cron_of(job.schedule)) for name, job in sorted(config.sync.items())]
    for name, job in sorted(config.scrub.items()):
        found.append(Entry("scrub", name, cron_of(job.schedule)))
        if not more_often_than_hourly(cron_of(job.schedule), tz):
            found.append(Entry("scrub", name, HOURLY_UPDATE, update_only=True))
    return found


@dataclass
class Queued:
    entry: Entry
    trigger: str


class Scheduler:
    def __init__(self, config: Config, history: History):
        self.config = config
        self.history = history
        self.tz = ZoneInfo(config.server.timezone)
        self.entries = entries(config)
        self.queue: list[Queued] = []
        self.next_due: dict[str, datetime] = {}
        self.running: dict[tuple[str, str], tuple[Queued, subprocess.Popen]] = {}
        self.stopping = False
        self.last_heartbeat = 0.0

    # ---- when --------------------------------------------------------------------------

    def collect_due(self, now: datetime, starting: bool = False) -> None:
        """Queue every entry whose next fire time has come (once, however many passed).
        The next fire times are kept in memory: a tick costs a comparison per entry."""
        for entry in self.entries:
            if entry.key not in self.next_due:
                last = self.history.last_due(entry.key)
                if last is None:  # a new job: its first run is at its first fire time
                    last = now.timestamp()
                    self.history.set_last_due(entry.key, last)
                self.next_due[entry.key] = next_fire(entry.cron, datetime.fromtimestamp(last, self.tz))
            fire = self.next_due[entry.key]
            if fire > now:
                continue
            while (following := next_fire(entry.cron, fire)) <= now:
                fire = following
            self.history.set_last_due(entry.key, fire.timestamp())
            self.next_due[entry.key] = next_fire(entry.cron, fire)
            self.enqueue(entry, "update" if entry.update_only else "catch-up" if starting else "scheduled")

    def enqueue(self, entry: Entry, trigger: str) -> None:
        job = (entry.kind, entry.name)
        if job in self.running or any((q.entry.kind, q.entry.name) == job for q in self.queue):
            log.info("%s %s: still running or queued; this run (%s) is skipped", entry.kind, entry.name, trigger)
            return
        self.queue.append(Queued(entry, trigger))
        self.queue.sort(key=lambda q: q.entry.kind != "sync")  # stable: syncs first, then in due order

    # ---- which, and running them --------------------------------------------------------

    def dispatch(self) -> None:
        still_queued: list[Entry] = []  # earlier in the queue, not started: they keep their turn
        for queued in list(self.queue):
            if len(self.running) >= self.config.server.max_parallel_jobs:
                return
            paths = job_paths(self.config, queued.entry.kind, queued.entry.name)
            blockers = [q.entry for q, _ in self.running.values()] + still_queued
            if any(overlaps(paths, job_paths(self.config, b.kind, b.name)) for b in blockers):
                still_queued.append(queued.entry)
                continue
            self.queue.remove(queued)
            # A session of its own, so that stopping it reaches rsync and par2 too.
            process = subprocess.Popen(queued.entry.argv(queued.trigger), start_new_session=True)
            self.running[(queued.entry.kind, queued.entry.name)] = (queued, process)
            log.info("%s %s: started (%s, pid %d)", queued.entry.kind, queued.entry.name, queued.trigger, process.pid)

    def reap(self) -> None:
        for job, (queued, process) in list(self.running.items()):
            code = process.poll()
            if code is not None:
                del self.running[job]
                log.info("%s %s: finished with exit code %d", *job, code)

    def heartbeat(self) -> None:
        if time.monotonic() - self.last_heartbeat >= HEARTBEAT_S:
            path = state.run_dir() / HEARTBEAT_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            self.last_heartbeat = time.monotonic()

    def tick(self, starting: bool = False) -> None:
        self.heartbeat()
        self.reap()
        if not self.stopping:
            self.collect_due(datetime.now(self.tz), starting)
            self.dispatch()

    def stop_children(self) -> None:
        for _, process in self.running.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_WAIT_S
        while self.running and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.2)
        for job, (_, process) in self.running.items():
            log.warning("%s %s: did not stop in %d s; killed", *job, STOP_WAIT_S)
            os.killpg(process.pid, signal.SIGKILL)

    def run_forever(self) -> int:
        def on_sigterm(*_: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, on_sigterm)
        interrupted = self.history.close_unfinished("interrupted: nasbox stopped during the run")
        if interrupted:
            log.warning("%d run(s) were cut short by the last stop; their jobs complete the work next time",
                        interrupted)
        log.info("scheduler: %d schedule entries, time zone %s", len(self.entries), self.config.server.timezone)
        for entry in self.entries:
            log.info("%s %s%s: next at %s", entry.kind, entry.name, " (parity update)" if entry.update_only else "",
                     next_fire(entry.cron, datetime.now(self.tz)).isoformat(timespec="minutes"))
        self.tick(starting=True)
        while not self.stopping:
            time.sleep(TICK_S)
            self.tick()
        self.stop_children()
        log.info("scheduler stopped")
        return 0


def next_runs(config: Config, now: datetime) -> dict[tuple[str, str], dict[str, datetime]]:
    """For `nasbox status`: job -> {"run": next fire, "update": next parity update}."""
    found: dict[tuple[str, str], dict[str, datetime]] = {job: {} for job in all_jobs(config)}
    for entry in entries(config):
        found[(entry.kind, entry.name)]["update" if entry.update_only else "run"] = next_fire(entry.cron, now)
    return found
