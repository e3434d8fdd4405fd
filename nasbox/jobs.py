"""Running a job: the one path for `--now` runs and scheduled ones.

Coordination:
- a job never overlaps itself, and jobs whose paths overlap (a sync into X, a scrub of X)
  never run together: a run takes the lock of every job it overlaps, itself included, in
  one global order (so two runs cannot deadlock);
- at most `max_parallel_jobs` run at once (one lock file per slot);
- a run waits while available memory is below `min_available_memory_mb`.
Without waiting (--no-wait) a busy lock is Busy, exit 75. Then the run is recorded in the
history, logged to stdout and /config/logs/<kind>-<job>.log, and notified.
"""

from __future__ import annotations

import logging
import logging.handlers
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psutil

from nasbox import exits, paths, state, stop
from nasbox.config import Config
from nasbox.history import record_run
from nasbox.jobkind import JobKind
from nasbox.kinds import KINDS
from nasbox.locks import Busy, job_lock, slot
from nasbox.notify.deliver import deliver
from nasbox.notify.event import Event
from nasbox.result import JobResult, combined_exit_code
from nasbox.text import OneLineFormatter

log = logging.getLogger(__name__)

MEMORY_POLL_S = 5.0
LOG_FILE_BYTES = 1 << 20
LOG_FILE_BACKUPS = 5


def job_paths(config: Config, kind: str, name: str) -> list[str]:
    return KINDS[kind].paths(KINDS[kind].jobs(config)[name])


def overlaps(a: list[str], b: list[str]) -> bool:
    """Whether any path of one job is, holds or lies inside a path of the other, resolved now
    (a link changed since the configuration was checked counts as it is)."""
    return any(paths.overlap(x, y) for x in a for y in b)


def all_jobs(config: Config) -> list[tuple[str, str]]:
    return [(kind.name, name) for kind in KINDS.values() for name in sorted(kind.jobs(config))]


def conflicting(config: Config, kind: str, name: str) -> list[tuple[str, str]]:
    """The jobs that may not run at the same time as this one, itself included."""
    mine = job_paths(config, kind, name)
    return [(k, n) for k, n in all_jobs(config) if (k, n) == (kind, name) or overlaps(mine, job_paths(config, k, n))]


def wait_for_memory(minimum_mb: int, wait: bool, label: str) -> None:
    logged = False
    while (available := psutil.virtual_memory().available) < minimum_mb << 20:
        if not wait:
            raise Busy(f"{label}: only {available >> 20} MiB of memory available")
        if not logged:
            log.warning(
                "%s waits: %d MiB of memory available, min_available_memory_mb is %d",
                label,
                available >> 20,
                minimum_mb,
            )
            logged = True
        stop.check()
        time.sleep(MEMORY_POLL_S)


@contextmanager
def job_locks(config: Config, kind: str, name: str, wait: bool) -> Iterator[None]:
    """The locks of the job and of every job whose paths overlap its own: what a run holds,
    and what anything else that writes where the job does (a restore) holds too."""
    with ExitStack() as held:
        for other_kind, other in conflicting(config, kind, name):
            held.enter_context(job_lock(other_kind, other, wait))
        yield


@contextmanager
def coordinated(config: Config, kind: str, name: str, wait: bool) -> Iterator[None]:
    with job_locks(config, kind, name, wait), slot(config.server.max_parallel_jobs, wait):
        wait_for_memory(config.server.min_available_memory_mb, wait, f"{kind} {name}")
        yield


@contextmanager
def job_log(kind: str, name: str) -> Iterator[None]:
    """Everything logged during the run also goes to /config/logs/<kind>-<name>.log, rotated."""
    directory = state.log_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    state.keep_private(directory / f"{kind}-{name}.log")
    handler = logging.handlers.RotatingFileHandler(
        directory / f"{kind}-{name}.log", maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS
    )
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def run_job(
    config: Config, kind: str, name: str, trigger: str, wait: bool, action: Callable[[], JobResult]
) -> JobResult:
    """Run action under the job's locks, record and log it, and notify. Busy when not waiting."""
    with coordinated(config, kind, name, wait), job_log(kind, name):
        # The start ping goes out beside the job, so a slow target cannot delay it.
        start_event = Event(
            "start", JobResult(name, kind, "info", "started", time.time(), time.time()), trigger, config.server.name
        )
        announcing = threading.Thread(target=deliver, args=(config, start_event), daemon=True)
        announcing.start()
        result = record_run(kind, name, trigger, action)
    announcing.join()  # healthchecks wants the start before the outcome
    deliver(config, Event("finish", result, trigger, config.server.name))
    return result


def run_named(
    config: Config,
    kind: JobKind,
    names: list[str],
    wait: bool,
    trigger: str,
    make_action: Callable[[Any], Callable[[], JobResult]],
) -> int:
    """`nasbox KIND [JOB...] --now`: run the named jobs (all when none is named) one after
    another; make_action gives a job's run from its model. The exit code: an error wins over
    a skip (75), a skip over success; 2 for a job that is not configured."""
    configured = kind.jobs(config)
    unknown = sorted(set(names) - set(configured))
    if unknown:
        log.error(
            "no %s job named %s; configured: %s", kind.name, ", ".join(unknown), ", ".join(sorted(configured)) or "none"
        )
        return exits.USAGE
    stop.install_handler()
    results: list[JobResult] = []
    for name in names or sorted(configured):
        try:
            results.append(run_job(config, kind.name, name, trigger, wait, make_action(configured[name])))
        except Busy as e:
            log.warning("%s; skipped (--no-wait)", e)
            return exits.SKIPPED
        except stop.Interrupted:  # stopped while waiting for its turn: it never started
            log.warning("%s %s: stopped before it started", kind.name, name)
            return exits.SKIPPED
        if stop.requested.is_set():
            break
    return combined_exit_code(results)
