"""A full scrub's reads, in the scrub's own threads and in the worker processes a scrub of
many files hands them to (nasbox.scrub.readers), against real files on a real filesystem.

The walk lists a file it is about to verify without its metadata, and its read checks that
against the file's row; so every way a file can differ from its row is met at the read
here: corruption (repaired), an edit that kept size and mtime (new parity, never reverted),
an edit that changed the size, a change of mode or of inode alone (verified, nothing
else), and what the counters say of each.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from nasbox.scrub import par2, readers
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
from tests.host.test_scrub import data_disk, flip, make_job, write  # noqa: F401 (data_disk: the loop-mounted DIRECTORY)
from tests.support.parity import all_sets, set_files, set_of, stock_par2

pytestmark = pytest.mark.host


@dataclass
class Reading:
    where: str  # "processes" or "threads"
    asked: int = 0  # reads handed to a process

    def check(self) -> None:
        assert self.where == "threads" or self.asked, "the reads were not handed to worker processes"


@pytest.fixture(params=["processes", "threads"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Reading:
    """Where the reads run: in processes however few the files are, or in the scrub's threads."""
    found = Reading(request.param)
    if request.param == "processes":
        monkeypatch.setattr(readers, "PROCESSES_FROM", 0)
        monkeypatch.setattr(readers, "SMALL_BATCH", 1 << 30)  # every batch to a process
        borrow = readers.Readers._borrow

        def counted(self: readers.Readers) -> subprocess.Popen[bytes]:
            found.asked += 1
            return borrow(self)

        monkeypatch.setattr(readers.Readers, "_borrow", counted)
    return found


def ctime_of(job: ScrubJob, relative: str) -> int:
    db = sqlite3.connect(Path(job.database) / ".nasbox-scrub" / "catalog.sqlite")
    try:
        directory, name = os.path.split(relative.encode())
        return db.execute("SELECT ctime_ns FROM files WHERE dir = ? AND name = ?", (directory, name)).fetchone()[0]
    finally:
        db.close()


def test_every_difference_from_a_row_is_found_at_the_read(tmp_path: Path, reading: Reading) -> None:
    job = make_job(tmp_path, redundancy=50)  # the corrupt file's set also holds the edited ones
    root = Path(job.directory)
    contents = {f"d1/{name}": write(root / "d1" / name, 4096 + i, seed=i) for i, name in enumerate("abcdef")}
    contents["d2/big.bin"] = write(root / "d2" / "big.bin", 2_000_000, seed=9)
    first = Scrub(job).run()
    assert first.stats["new"] == 7, first.summary
    time.sleep(0.1)  # past a timestamp tick, as files on a NAS are

    flip(root / "d1/a", [100])  # corruption: size, mtime and ctime stay
    edited = root / "d1/b"
    kept = edited.stat()
    edited.write_bytes(b"X" * kept.st_size)  # an edit that sets its mtime back
    os.utime(edited, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    (root / "d1/c").chmod(0o600)  # its ctime moves, its content does not
    shutil.copy2(root / "d1/d", root / "d1/d.new")  # the same content and mtime, another inode
    os.replace(root / "d1/d.new", root / "d1/d")
    (root / "d1/e").write_bytes(b"longer than it was " * 300)  # another size
    write(root / "d2" / "new.bin", 3000, seed=10)

    result = Scrub(job).run()
    stats = result.stats
    assert (stats["repaired"], stats["updated"], stats["new"], stats["verified"]) == (1, 2, 1, 5), result.summary
    assert (stats["files"], stats["skipped"], stats["failed"]) == (8, 0, 0), result.summary
    data = [p for p in root.rglob("*") if p.is_file() and ".pardatabase" not in p.parts]
    assert stats["bytes"] == sum(p.stat().st_size for p in data)  # the edited file at its new size
    assert (root / "d1/a").read_bytes() == contents["d1/a"]  # repaired
    assert edited.read_bytes() == b"X" * kept.st_size  # the edit kept
    assert (root / "d1/e").read_bytes() == b"longer than it was " * 300
    assert ctime_of(job, "d1/c") == (root / "d1/c").stat().st_ctime_ns  # its row has its new ctime
    assert any("d1/a: was corrupt and has been repaired" in line for line in result.details)
    assert not any("d1/b" in line or "d1/c" in line or "d1/d" in line for line in result.details)

    time.sleep(0.1)
    again = Scrub(job).run()
    assert (again.status, again.stats["verified"], again.stats["updated"]) == ("good", 8, 0), again.summary
    reading.check()


def in_catalog(job: ScrubJob, sql: str) -> list[tuple]:
    """sql run on the job's catalog between runs (closed after: a run opens it alone)."""
    db = sqlite3.connect(Path(job.database) / ".nasbox-scrub" / "catalog.sqlite", isolation_level=None)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("digest", ["kept", "unknown"])
@pytest.mark.parametrize("damage", ["index", "recovery", "another set's"])
def test_a_set_that_does_not_describe_its_files_is_made_again(
    tmp_path: Path, reading: Reading, damage: str, digest: str
) -> None:
    """A byte changed in either parity file of a set, or both its files replaced by those
    of another set (intact, but describing other files): the set is made again from the
    verified files, whichever process checks it, and whether its row keeps the digest of its
    files (as made) or not (a set made by an earlier version: its packets are checked)."""
    job = make_job(tmp_path)
    root = Path(job.directory)
    for i in range(5):
        write(root / "a" / f"f{i}", 3000 + i, seed=i)
    Scrub(job).run()
    for i in range(3):
        write(root / "b" / f"f{i}", 3000 + i, seed=10 + i)
    Scrub(job).run()  # a set of its own for b/
    time.sleep(0.1)
    set_id, other = set_of(job, "a/f0"), set_of(job, "b/f0")
    assert set_id and other and set_id != other
    if digest == "unknown":
        in_catalog(job, "UPDATE sets SET digest = NULL")
    index, volume = set_files(job, set_id)
    if damage == "another set's":
        other_index, other_volume = set_files(job, other)
        shutil.copyfile(other_index, index)
        shutil.copyfile(other_volume, volume)
    else:
        damaged = index if damage == "index" else volume
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2] ^= 0xFF
        damaged.write_bytes(bytes(data))

    result = Scrub(job).run()
    assert (result.status, result.stats["verified"], result.stats["parity_rebuilt"]) == ("warning", 8, 5), (
        result.summary
    )
    assert set_of(job, "a/f0") not in (set_id, None) and set_of(job, "b/f0") == other
    assert stock_par2(par2.binary(), "verify", job, "a/f0")
    assert Scrub(job).run().status == "good"
    reading.check()


def test_a_set_whose_row_keeps_no_digest_gets_the_digest_of_its_files(tmp_path: Path, reading: Reading) -> None:
    """A catalog of an earlier version: its sets table gains the column, and each set found
    intact packet by packet keeps the digest of its files from then on."""
    job = make_job(tmp_path)
    for i in range(4):
        write(Path(job.directory) / f"f{i}", 3000 + i, seed=i)
    Scrub(job).run()
    made = in_catalog(job, "SELECT id, digest FROM sets")
    framed = b"".join(len(data).to_bytes(8, "little") + data for data in map(Path.read_bytes, all_set_files(job)))
    assert len(made) == 1 and made[0][1] == hashlib.sha256(framed).digest()
    in_catalog(job, "ALTER TABLE sets DROP COLUMN digest")
    time.sleep(0.1)
    result = Scrub(job).run()
    assert (result.status, result.stats["verified"]) == ("good", 4), result.summary
    assert in_catalog(job, "SELECT id, digest FROM sets") == made
    assert Scrub(job).run().status == "good"
    reading.check()


def all_set_files(job: ScrubJob) -> list[Path]:
    [set_id] = all_sets(job)
    return set_files(job, set_id)


def test_reader_processes_never_import_code_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scrub started from a directory anyone can write (a share, say) runs its reader
    processes as root: a `nasbox` package planted there must never be what they run."""
    monkeypatch.setattr(readers, "PROCESSES_FROM", 0)
    monkeypatch.setattr(readers, "SMALL_BATCH", 1 << 30)
    job = make_job(tmp_path)
    for i in range(3):
        write(Path(job.directory) / f"f{i}", 3000, seed=i)
    Scrub(job).run()
    planted = tmp_path / "share"
    marker = tmp_path / "planted code ran"
    (planted / "nasbox" / "scrub").mkdir(parents=True)
    (planted / "nasbox" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (planted / "nasbox" / "scrub" / "__init__.py").write_text("")
    monkeypatch.chdir(planted)
    result = Scrub(job).run()
    assert not marker.exists()
    assert (result.status, result.stats["verified"]) == ("good", 3), result.summary
