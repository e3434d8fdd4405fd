"""What nasbox remembers of an offsite job between runs, in /config/state/offsite-<job>.json:

- the last snapshot it approved (its ID, source, time and file count), which the next
  backup's deletions are counted against without reading the snapshot's tree again;
- the runs whose restic was killed (a time limit, a stop, a crash: the host and the time
  they started), whose repository locks restic may have left behind. A run is listed from its
  start and taken off when every restic call of it ended by itself.

Only one run of a job at a time writes its file (the job's lock).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from nasbox import state


class Record:
    def __init__(self, state_dir: Path, job: str):
        self.path = state_dir / f"offsite-{job}.json"

    def read(self) -> dict[str, Any]:
        return state.read_json(self.path, {})

    def _update(self, **changes: Any) -> None:
        data = self.read()
        data.update(changes)
        state.write_json(self.path, data)

    def snapshot(self) -> dict[str, Any] | None:
        """The last approved snapshot: id, source, time, files."""
        return self.read().get("snapshot")

    def approve(self, snapshot: str, source: str, when: str, files: int) -> None:
        self._update(snapshot={"id": snapshot, "source": source, "time": when, "files": files})

    def forget_snapshot(self) -> None:
        self._update(snapshot=None)

    def killed_runs(self) -> list[dict[str, Any]]:
        return list(self.read().get("runs", []))

    def start_run(self) -> dict[str, Any]:
        """Note this run (its host and start) before its first restic call; returns the note."""
        run = {"hostname": socket.gethostname(), "since": time.time()}
        self._update(runs=[*self.killed_runs(), run])
        return run

    def end_runs(self, *runs: dict[str, Any]) -> None:
        """Take runs off the list: they ended cleanly, or their locks are gone."""
        self._update(runs=[r for r in self.killed_runs() if r not in runs])
