"""The scheduler daemon: runs every job on its schedule, in TZ, and never two that clash.

Small on purpose (supercronic's lesson): each due run is `nasbox KIND JOB --now --trigger
...`, the same command a person runs, so it takes the same locks, writes the same history and
sends the same notifications. It is handed to the runner (nasbox.runner), or started as a
child process when there is none. The scheduler only decides when, and in which
order: a job already running or queued is not queued again; a run waits while a job whose
paths overlap runs or was queued before it; among runs due together, kinds go in the order
of nasbox.kinds (a sync before the scrub of its destination); at most max_parallel_jobs run
at once. Each kind says its schedule entries (nasbox.schedules). A fire time missed while
the container was down runs once at start ("catch-up"); a new job waits for its first fire
time. The shares' recycle bins are emptied at start and every hour, beside the jobs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from nasbox import space_warning, state
from nasbox.config import Config
from nasbox.history import History
from nasbox.jobs import all_jobs, job_paths, overlaps
from nasbox.kinds import KINDS
from nasbox.relay import Handed
from nasbox.samba import recycle
from nasbox.schedules import ScheduleEntry, next_fire
from nasbox.stop import STOP_WAIT_S

log = logging.getLogger(__name__)

HEARTBEAT_FILE = "scheduler.heartbeat"
HEARTBEAT_S = 15.0
TICK_S = 1.0


def entries(config: Config) -> list[ScheduleEntry]:
    tz = ZoneInfo(config.server.timezone)
    return [
        entry
        for kind in KINDS.values()
        for _, job in sorted(kind.jobs(config).items())
        for entry in kind.schedule(job, tz)
    ]


@dataclass
class Queued:
    entry: ScheduleEntry
    trigger: str


class Scheduler:
    def __init__(self, config: Config, history: History):
        self.config = config
        self.history = history
        self.tz = ZoneInfo(config.server.timezone)
        self.entries = entries(config)
        self.queue: list[Queued] = []
        self.next_due: dict[str, datetime] = {}
        self.running: dict[tuple[str, str], tuple[Queued, Run]] = {}
        self.stopping = False
        self.last_heartbeat = 0.0
        self.last_space_check = -space_warning.CHECK_S
        self.space_check: threading.Thread | None = None
        self.recycle_due: datetime | None = None  # None: at the first tick
        self.emptying: threading.Thread | None = None

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
            self.enqueue(entry, entry.trigger(catching_up=starting))

    def enqueue(self, entry: ScheduleEntry, trigger: str) -> None:
        job = (entry.kind, entry.name)
        if job in self.running or any((q.entry.kind, q.entry.name) == job for q in self.queue):
            log.info("%s %s: still running or queued; this run (%s) is skipped", entry.kind, entry.name, trigger)
            return
        self.queue.append(Queued(entry, trigger))
        order = list(KINDS)
        self.queue.sort(key=lambda q: order.index(q.entry.kind))  # stable: by kind, then in due order

    # ---- which, and running them --------------------------------------------------------

    def dispatch(self) -> None:
        still_queued: list[ScheduleEntry] = []  # earlier in the queue, not started: they keep their turn
        for queued in list(self.queue):
            if len(self.running) >= self.config.server.max_parallel_jobs:
                return
            paths = job_paths(self.config, queued.entry.kind, queued.entry.name)
            blockers = [q.entry for q, _ in self.running.values()] + still_queued
            if any(overlaps(paths, job_paths(self.config, b.kind, b.name)) for b in blockers):
                still_queued.append(queued.entry)
                continue
            self.queue.remove(queued)
            process = start_run(queued.entry, queued.trigger)
            self.running[(queued.entry.kind, queued.entry.name)] = (queued, process)
            log.info("%s %s: started (%s, pid %d)", queued.entry.kind, queued.entry.name, queued.trigger, process.pid)

    def reap(self) -> None:
        for job, (_, process) in list(self.running.items()):
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

    def watch_space(self) -> None:
        """The space warning's check (nasbox.space_warning), in a thread of its own: a slow
        notification target must not hold up the schedule."""
        if time.monotonic() - self.last_space_check < space_warning.CHECK_S:
            return
        if self.space_check is not None and self.space_check.is_alive():
            return
        self.last_space_check = time.monotonic()
        self.space_check = threading.Thread(target=space_warning.check, args=(self.config,), daemon=True)
        self.space_check.start()

    def empty_recycle_bins(self, now: datetime) -> None:
        """At start and every EMPTY_EVERY_S, in a thread of its own: a large bin must not
        hold up the ticks and the heartbeat. A pass still running is not started again."""
        if not recycle.folders(self.config) or (self.recycle_due is not None and now < self.recycle_due):
            return
        self.recycle_due = now + timedelta(seconds=recycle.EMPTY_EVERY_S)
        if self.emptying is not None and self.emptying.is_alive():
            return
        self.emptying = threading.Thread(
            target=recycle.empty_all, args=(self.config, now.timestamp()), name="recycle", daemon=True
        )
        self.emptying.start()

    def tick(self, starting: bool = False) -> None:
        self.heartbeat()
        self.watch_space()
        self.reap()
        if not self.stopping:
            now = datetime.now(self.tz)
            self.collect_due(now, starting)
            self.dispatch()
            self.empty_recycle_bins(now)

    def stop_children(self) -> None:
        for _, process in self.running.values():
            signal_run(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        while self.running and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.2)
        for job, (_, process) in self.running.items():
            log.warning("%s %s: did not stop in %d s; killed", *job, STOP_WAIT_S)
            signal_run(process, signal.SIGKILL)

    def run_forever(self) -> int:
        def on_sigterm(*_: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, on_sigterm)
        interrupted = self.history.close_unfinished("interrupted: nasbox stopped during the run")
        if interrupted:
            log.warning(
                "%d run(s) were cut short by the last stop; their jobs complete the work next time", interrupted
            )
        log.info("scheduler: %d schedule entries, time zone %s", len(self.entries), self.config.server.timezone)
        for entry in self.entries:
            log.info(
                "%s %s%s: next at %s",
                entry.kind,
                entry.name,
                "" if entry.purpose == "run" else f" ({entry.purpose})",
                next_fire(entry.cron, datetime.now(self.tz)).isoformat(timespec="minutes"),
            )
        self.tick(starting=True)
        while not self.stopping:
            time.sleep(TICK_S)
            self.tick()
        self.stop_children()
        log.info("scheduler stopped")
        return 0


Run = Handed | subprocess.Popen[bytes]


def start_run(entry: ScheduleEntry, trigger: str) -> Run:
    """The run handed to the runner, where its modules are loaded already; when there is no
    runner, `nasbox ...` as a child process. Either way beside the scheduler (not
    commands.run, which waits for a program's end), in a session of its own, so that
    stopping it reaches rsync and par2 too."""
    handed = Handed.offer(entry.arguments(trigger))
    if handed is not None and handed.start():
        return handed
    return subprocess.Popen(entry.argv(trigger), start_new_session=True)


def signal_run(process: Run, signum: int) -> None:
    """signum to a run's process group."""
    if isinstance(process, Handed):
        process.send_signal(signum)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


def next_runs(config: Config, now: datetime) -> dict[tuple[str, str], dict[str, datetime]]:
    """For `nasbox status`: job -> {purpose: next fire}, e.g. {"run": ..., "update": ...}."""
    found: dict[tuple[str, str], dict[str, datetime]] = {job: {} for job in all_jobs(config)}
    for entry in entries(config):
        found[(entry.kind, entry.name)][entry.purpose] = next_fire(entry.cron, now)
    return found
