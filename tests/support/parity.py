"""Where a scrub job's parity is, found the way a user without nasbox would: the catalog names
each file's set, and a set is <DATABASE>/.nasbox-scrub/sets/<id[:2]>/<id>.par2 and its
recovery files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.trust import PRIVATE


def private(job: ScrubJob) -> Path:
    return Path(job.database) / os.fsdecode(PRIVATE)


def catalog(job: ScrubJob) -> sqlite3.Connection:
    return sqlite3.connect(private(job) / "catalog.sqlite")


def set_of(job: ScrubJob, relative: str) -> str | None:
    """The id of the set protecting relative; None when it has none."""
    directory, name = os.path.split(relative)
    db = catalog(job)
    try:
        row = db.execute("SELECT set_id FROM files WHERE dir = ? AND name = ?",
                         (os.fsencode(directory), os.fsencode(name))).fetchone()
    finally:
        db.close()
    return row[0].decode() if row and row[0] else None


def set_files(job: ScrubJob, set_id: str) -> list[Path]:
    """The set's index file first, then its recovery files."""
    where = private(job) / "sets" / set_id[:2]
    return [where / f"{set_id}.par2", *sorted(where.glob(f"{set_id}.vol*.par2"))]


def parity_of(job: ScrubJob, relative: str) -> list[Path]:
    """The parity files of the set protecting relative (index first); [] when it has none."""
    set_id = set_of(job, relative)
    return set_files(job, set_id) if set_id else []


def index_of(job: ScrubJob, relative: str) -> Path:
    files = parity_of(job, relative)
    assert files, f"{relative} has no parity set"
    return files[0]


def all_sets(job: ScrubJob) -> set[str]:
    """The ids of the sets on disk."""
    top = private(job) / "sets"
    return {p.name[:-len(".par2")] for p in top.glob("*/*.par2") if ".vol" not in p.name}


def all_parity_files(job: ScrubJob) -> list[Path]:
    """Every parity file on disk, sets and anything left outside the private folder."""
    return sorted(p for p in Path(job.database).rglob("*.par2") if p.is_file())


def members(job: ScrubJob, set_id: str) -> set[str]:
    db = catalog(job)
    try:
        return {os.fsdecode(os.path.join(d, n))
                for d, n in db.execute("SELECT dir, name FROM files WHERE set_id = ?", (set_id.encode(),))}
    finally:
        db.close()


def stock_par2(binary: str, action: str, job: ScrubJob, relative: str) -> bool:
    """Whether stock par2 (verify or repair) succeeds on the set protecting relative, as the
    README tells a user to run it."""
    result = subprocess.run([binary, action, "-q", "-B", job.directory, str(index_of(job, relative))],
                            capture_output=True)
    return result.returncode == 0
