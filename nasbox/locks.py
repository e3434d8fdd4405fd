"""File locks: the one way nasbox keeps two processes apart. A job runs once at a time,
whoever starts it (a `--now` run of a running job waits for it, or with --no-wait exits 75);
at most max_parallel_jobs hold a slot; holds and a scrub's DATABASE are changed by one
process at a time.

Locks are flock()s on files of mode 0600, released when the process ends, however it ends.
Waiting polls, so that a stop reaches a run still waiting for its turn.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from nasbox import state, stop

POLL_S = 0.5


class Busy(Exception):
    """The lock is held by another process and the caller did not want to wait."""


def lock_dir() -> Path:
    directory = state.run_dir() / "locks"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory


def try_lock(path: str | os.PathLike[str]) -> IO[bytes] | None:
    """The open, locked file at path, or None when another process holds it."""
    handle = open(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600), "r+b")  # noqa: SIM115 - returned open
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextmanager
def locked(path: str | os.PathLike[str], wait: bool = True, busy: str = "busy") -> Iterator[None]:
    """Hold the lock on path inside the block; without wait, Busy(busy) when it is taken."""
    while (handle := try_lock(path)) is None:
        if not wait:
            raise Busy(busy)
        stop.check()
        time.sleep(POLL_S)
    with handle:
        yield


@contextmanager
def job_lock(kind: str, name: str, wait: bool, directory: Path | None = None) -> Iterator[None]:
    with locked((directory or lock_dir()) / f"{kind}-{name}.lock", wait, f"{kind} {name} is running already"):
        yield


@contextmanager
def slot(limit: int, wait: bool) -> Iterator[None]:
    """One of `limit` places for a running job."""
    while True:
        for index in range(limit):
            handle = try_lock(lock_dir() / f"slot-{index}.lock")
            if handle is not None:
                with handle:
                    yield
                return
        if not wait:
            raise Busy(f"{limit} jobs are running already (max_parallel_jobs)")
        stop.check()
        time.sleep(POLL_S)
