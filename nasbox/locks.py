"""Job locks: one run of a job at a time, whoever starts it (CONTRACT 3: a --now run of a
running job waits for it, or with --no-wait exits 75)."""
from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nasbox import state


class Busy(Exception):
    """The job is running already and the caller did not want to wait."""


@contextmanager
def job_lock(kind: str, name: str, wait: bool, lock_dir: Path | None = None) -> Iterator[None]:
    directory = lock_dir or state.run_dir() / "locks"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / f"{kind}-{name}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(f"{kind} {name} is running already") from None
        yield
