"""Stopping a job cleanly on SIGTERM (docker stop, or the scheduler stopping).

The handler only sets a flag and terminates the job's child processes (rsync, par2); the
engines look at the flag at safe points (between files, after rsync) and raise Interrupted,
so no parity set or catalog entry is left half-written and the run is recorded as
interrupted."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

import psutil

log = logging.getLogger(__name__)

STOP_WAIT_S = 20.0  # how long a stopped job has before it is killed

requested = threading.Event()


class Interrupted(Exception):
    """The job was asked to stop."""


def check() -> None:
    if requested.is_set():
        raise Interrupted("stopped by SIGTERM")


def install_handler() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: object) -> None:
    if requested.is_set():
        return
    requested.set()
    children = psutil.Process().children(recursive=True)
    log.warning("stopping: ending %d running program(s)", len(children))
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
