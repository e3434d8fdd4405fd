"""Removing the repository lock a killed run of nasbox left behind, and no other.

restic locks a repository while it works and removes the lock when it ends; a restic that is
killed (a time limit, `docker stop`, a crash) leaves it, and then every `forget`, `prune` and
`check` fails as locked. `restic unlock` removes every lock restic counts stale: one made on
this hostname by a process that no longer exists, or one not refreshed for 30 minutes (a
live restic refreshes its locks every 5). It cannot remove one lock by its ID.

So nasbox notes each run (host and start) before its first restic call and takes the note
off when every call ended by itself (nasbox.offsite.record). The next run lists the locks: a
lock made on a noted run's host after its start, whose process is gone, is that run's. It runs
`restic unlock` only when the locks restic would remove are all such locks; a stale lock of
anyone else is left alone and reported (the user decides). A lock made in an earlier
container (another hostname) becomes removable once it is 30 minutes old: until then the run
goes on (a backup is not stopped by another's lock) and says so.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil

from nasbox.offsite.record import Record
from nasbox.offsite.restic import Lock, Restic

STALE_AFTER = timedelta(minutes=30)  # restic's own rule
CLOCK_SKEW_S = 60  # a lock's time is the clock of the machine that made it


def counted_stale(lock: Lock, now: datetime, here: str) -> bool:
    """Whether `restic unlock` removes this lock."""
    return now - lock.time > STALE_AFTER or (lock.hostname == here and not psutil.pid_exists(lock.pid))


def killed_run_of(lock: Lock, runs: list[dict[str, Any]], here: str) -> dict[str, Any] | None:
    """The noted run that left this lock, if one did (its process must be gone)."""
    if lock.hostname == here and psutil.pid_exists(lock.pid):
        return None
    for run in runs:
        if lock.hostname == run["hostname"] and lock.time.timestamp() >= run["since"] - CLOCK_SKEW_S:
            return run
    return None


def described(locks: list[Lock]) -> str:
    return ", ".join(f"PID {lock.pid} on {lock.hostname} at {lock.time:%Y-%m-%d %H:%M:%S %Z}" for lock in locks)


def remove_killed_runs_locks(restic: Restic, record: Record, runs: list[dict[str, Any]]) -> list[str]:
    """Remove the locks the runs (noted, never ended) left, when only they would go; lines
    saying what was done. Runs with no lock left are taken off the record."""
    if not runs:
        return []
    locks, listed = restic.locks()
    if not listed.ok:
        return [f"could not list the repository's locks: {listed.message}"]
    now, here = datetime.now(UTC), socket.gethostname()
    theirs = {lock.id: run for lock in locks if (run := killed_run_of(lock, runs, here)) is not None}
    removable = [lock for lock in locks if lock.id in theirs and counted_stale(lock, now, here)]
    waiting = [lock for lock in locks if lock.id in theirs and lock not in removable]
    others = [lock for lock in locks if lock.id not in theirs and counted_stale(lock, now, here)]
    notes, left = [], list(waiting)
    if removable and others:
        notes.append(
            f"left the stale lock of a killed run of nasbox ({described(removable)}): `restic unlock` would also "
            f"remove stale locks of other processes ({described(others)}); check them, then run it yourself"
        )
        left += removable
    elif removable:
        unlocked = restic.run(restic.commands.unlock())
        if unlocked.ok:
            notes.append(f"removed the stale lock of a killed run of nasbox ({described(removable)})")
        else:
            notes.append(f"could not remove the stale lock of a killed run of nasbox: {unlocked.message}")
            left += removable
    if waiting:
        notes.append(
            f"a killed run of nasbox in another container left a lock ({described(waiting)}); restic counts it "
            "stale 30 minutes after it was made, and a run after that removes it"
        )
    still = [theirs[lock.id] for lock in left]
    record.end_runs(*(run for run in runs if run not in still))
    return notes
