"""The run history and the scheduler's memory, in SQLite under /config/state.

Every run of a job, however started, is a row: start, end, status, summary, details and
stats. A row without an end is a run that was killed. `schedule` remembers, per schedule
entry, the last fire time handled, so that a run missed while the container was down runs
once at start.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasbox import state, stop
from nasbox.result import JobResult

log = logging.getLogger(__name__)

HISTORY_FILE = "history.sqlite"
KEEP_RUNS_PER_JOB = 500
SETUP_ATTEMPTS = 100

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    job TEXT NOT NULL,
    trigger TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT,
    summary TEXT,
    details TEXT,
    stats TEXT,
    skipped INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (kind, job, started);
CREATE TABLE IF NOT EXISTS schedule (key TEXT PRIMARY KEY, last_due REAL NOT NULL);
"""


@dataclass(frozen=True)
class Run:
    kind: str
    job: str
    trigger: str
    started: float
    finished: float | None
    status: str | None
    summary: str | None
    stats: dict[str, Any] = field(default_factory=dict)  # what the run counted (History.runs reads it)

    @property
    def duration_s(self) -> float | None:
        return None if self.finished is None else round(self.finished - self.started, 1)


class History:
    def __init__(self, state_dir: Path | None = None):
        state_dir = state_dir or state.state_dir()
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = state_dir / HISTORY_FILE
        # SQLite gives the -wal and -shm files the database file's mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        state.keep_private(path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        # Two runs that start at once both set up the database; switching to WAL does not
        # wait for the other's lock as statements do, so it is retried.
        for attempt in range(SETUP_ATTEMPTS):
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.executescript(SCHEMA)
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == SETUP_ATTEMPTS - 1:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self.db.close()

    def start(self, kind: str, job: str, trigger: str) -> int:
        cursor = self.db.execute(
            "INSERT INTO runs (kind, job, trigger, started) VALUES (?, ?, ?, ?)", (kind, job, trigger, time.time())
        )
        assert cursor.lastrowid is not None  # an INSERT into a rowid table
        return cursor.lastrowid

    def finish(self, run_id: int, result: JobResult) -> None:
        self.db.execute(
            "UPDATE runs SET finished = ?, status = ?, summary = ?, details = ?, stats = ?, skipped = ? WHERE id = ?",
            (
                result.finished,
                result.status,
                result.summary,
                json.dumps(result.details),
                json.dumps(result.stats),
                int(result.skipped),
                run_id,
            ),
        )
        self._prune(result.kind, result.job)

    def _prune(self, kind: str, job: str) -> None:
        self.db.execute(
            "DELETE FROM runs WHERE kind = ? AND job = ? AND id NOT IN "
            "(SELECT id FROM runs WHERE kind = ? AND job = ? ORDER BY started DESC LIMIT ?)",
            (kind, job, kind, job, KEEP_RUNS_PER_JOB),
        )

    def close_unfinished(self, summary: str) -> int:
        """Runs left without an end (their process was killed) become interrupted."""
        return self.db.execute(
            "UPDATE runs SET finished = started, status = 'warning', summary = ? WHERE finished IS NULL", (summary,)
        ).rowcount

    def last(self, kind: str, job: str) -> Run | None:
        row = self.db.execute(
            "SELECT kind, job, trigger, started, finished, status, summary FROM runs "
            "WHERE kind = ? AND job = ? ORDER BY started DESC LIMIT 1",
            (kind, job),
        ).fetchone()
        return Run(*row) if row else None

    def runs(self, kind: str, job: str, limit: int = KEEP_RUNS_PER_JOB) -> list[Run]:
        """The job's newest runs, newest first, with their stats."""
        rows = self.db.execute(
            "SELECT kind, job, trigger, started, finished, status, summary, stats FROM runs "
            "WHERE kind = ? AND job = ? ORDER BY started DESC LIMIT ?",
            (kind, job, limit),
        ).fetchall()
        return [
            Run(kind, job, trigger, started, finished, status, summary, json.loads(stats) if stats else {})
            for kind, job, trigger, started, finished, status, summary, stats in rows
        ]

    def count(self, kind: str, job: str) -> int:
        return self.db.execute("SELECT count(*) FROM runs WHERE kind = ? AND job = ?", (kind, job)).fetchone()[0]

    def last_due(self, key: str) -> float | None:
        row = self.db.execute("SELECT last_due FROM schedule WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_last_due(self, key: str, when: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO schedule VALUES (?, ?)", (key, when))


def record_run(kind: str, name: str, trigger: str, action: Callable[[], JobResult]) -> JobResult:
    """Run action and keep it in the history and the log, whoever runs it (a `--now` or
    scheduled run, or the parity update a sync runs for the scrub job of its destination).
    Its start and end are the wall-clock times around action, whatever the engine measured."""
    history = History()
    try:
        run_id = history.start(kind, name, trigger)
        log.info("%s %s: started (%s)", kind, name, trigger)
        started = time.time()
        try:
            result = action()
        except stop.Interrupted:
            result = JobResult(
                name,
                kind,
                "warning",
                "interrupted by a stop; the next run completes it",
                started,
                time.time(),
                skipped=True,
            )
        except Exception as e:  # a bug or an unexpected failure is an error run, not a crash
            log.exception("%s %s failed", kind, name)
            result = JobResult(name, kind, "error", f"failed: {e}", started, time.time())
        result.started, result.finished = started, time.time()
        result.stats["duration_s"] = result.duration_s
        history.finish(run_id, result)
    finally:
        history.close()
    log.info("%s %s: %s: %s", kind, name, result.status, result.summary)
    for line in result.details:
        log.info("%s %s: %s", kind, name, line)
    return result
