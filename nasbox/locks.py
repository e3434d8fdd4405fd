"""Job locks: one run of a job at a time, whoever starts it (CONTRACT 3: a --now run of a
running job waits for it, or with --no-wait exits 75)."""
from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nasbox import state, stop

POLL_S = 0.5


class Busy(Exception):
    """The job is running already and the caller did not want to wait."""


@contextmanager
def job_lock(kind: str, name: str, wait: bool, lock_dir: Path | None = None) -> Iterator[None]:
    directory = lock_dir or state.run_dir() / "locks"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / f"{kind}-{name}.lock", "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise Busy(f"{kind} {name} is running already") from None
            stop.check()  # polling, so that a stop reaches a run still waiting for its turn
            time.sleep(POLL_S)
        yield
