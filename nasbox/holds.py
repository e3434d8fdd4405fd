"""Held jobs: a run that would delete too much is not made, and the job waits, across
restarts, until `nasbox KIND JOB --now --force` (sync and offsite jobs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nasbox import locks, state

HOLDS_FILE = "{kind}-holds.json"


class Holds:
    """Held jobs of a kind (sync, offsite), kept under /config/state so that a hold survives restarts."""

    def __init__(self, state_dir: Path, kind: str = "sync"):
        self.path = state_dir / HOLDS_FILE.format(kind=kind)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with locks.locked(self.path.with_suffix(".lock")):
            holds = state.read_json(self.path, {})
            before = dict(holds)
            yield holds
            if holds != before:
                state.write_json(self.path, holds)

    def get(self, job: str) -> dict | None:
        return state.read_json(self.path, {}).get(job)

    def hold(self, job: str, reason: str, deletions: int | None = None, rewrites: int | None = None) -> None:
        """deletions, rewrites: the files the held run would have deleted and rewritten, all
        that --force approves."""
        with self._locked() as holds:
            hold: dict = {"since": time.time(), "reason": reason}
            for key, count in (("deletions", deletions), ("rewrites", rewrites)):
                if count is not None:
                    hold[key] = count
            holds.setdefault(job, hold)

    def release(self, job: str) -> None:
        with self._locked() as holds:
            holds.pop(job, None)


def held_since(job: str, hold: dict, kind: str = "sync") -> str:
    since = time.strftime("%Y-%m-%d %H:%M", time.localtime(hold["since"]))
    return f"held since {since}: {hold['reason']}; run `nasbox {kind} {job} --now --force`"
