"""The shortcuts of a full scrub's verify, attacked: a set judged intact by the digest of its
files, a set checked in a reader process, files listed without their metadata and marked
intact many at a time. Real par2 on a loop-mounted ext4 image, in the scrub's threads and in
its reader processes (nasbox.scrub.readers)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from nasbox.scrub import par2, readers, walk
from nasbox.scrub.engine import Scrub
from tests.host import test_scrub_readers
from tests.host.test_scrub import data_disk, flip, make_job, write  # noqa: F401 (data_disk: the loop-mounted DIRECTORY)
from tests.host.test_scrub_readers import Reading, in_catalog
from tests.support.parity import set_files, set_of, stock_par2

pytestmark = pytest.mark.host

reading = test_scrub_readers.reading  # the fixture: the reads in threads, or in processes


def small_files(root: Path, count: int, first_seed: int = 0) -> dict[str, bytes]:
    """count files of about 3 KB in root/a, which share one set."""
    return {f"a/f{i}": write(root / "a" / f"f{i}", 3000 + i, seed=first_seed + i) for i in range(count)}


# ---- a set judged intact by the digest of its files ---------------------------------------


@pytest.mark.parametrize("kept", ["made by this version", "an earlier version's MD5"])
@pytest.mark.parametrize("moved", [40, 150])  # the last packet cut in two; the one before it too
def test_bytes_moved_from_the_index_into_its_recovery_file_are_damage(
    tmp_path: Path, reading: Reading, moved: int, kept: str
) -> None:
    """The index loses its last bytes and its recovery file begins with them: the two files
    one after the other are what they were, each file is not. The packets cut in two fail
    their checksums, so the set is made again; also when its row keeps the MD5 of the two
    files one after the other, as an earlier version did (unknown now: the packets decide)."""
    job = make_job(tmp_path)
    root = Path(job.directory)
    small_files(root, 5)
    Scrub(job).run()
    time.sleep(0.1)
    set_id = set_of(job, "a/f0")
    index, volume = set_files(job, set_id)
    head, tail = index.read_bytes(), volume.read_bytes()
    if kept == "an earlier version's MD5":
        in_catalog(job, f"UPDATE sets SET digest = x'{hashlib.md5(head + tail).hexdigest()}'")
    index.write_bytes(head[:-moved])
    volume.write_bytes(head[-moved:] + tail)

    result = Scrub(job).run()
    assert (result.status, result.stats["verified"], result.stats["parity_rebuilt"]) == ("warning", 5, 5), (
        result.summary
    )
    assert set_of(job, "a/f0") not in (set_id, None)
    assert stock_par2(par2.binary(), "verify", job, "a/f0")
    assert Scrub(job).run().status == "good"
    reading.check()


# ---- a set checked in a reader process ---------------------------------------------------


def test_a_set_whose_checking_process_ends_is_still_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader process that ends while it checks a set (killed, out of memory) leaves that
    set to be checked all the same: its damage is found and the set made again."""
    monkeypatch.setattr(readers, "PROCESSES_FROM", 0)
    monkeypatch.setattr(readers, "SMALL_BATCH", 1 << 30)
    job = make_job(tmp_path)
    root = Path(job.directory)
    small_files(root, 5)
    Scrub(job).run()
    time.sleep(0.1)
    set_id = set_of(job, "a/f0")
    volume = set_files(job, set_id)[1]
    data = bytearray(volume.read_bytes())
    data[len(data) // 2] ^= 0xFF
    volume.write_bytes(bytes(data))
    ends = "import os; from nasbox.scrub import readers; readers.TASKS['check_set'] = lambda *_: os._exit(9); "
    monkeypatch.setattr(readers, "SERVE", ends + readers.SERVE)

    result = Scrub(job).run()
    assert (result.status, result.stats["verified"], result.stats["parity_rebuilt"]) == ("warning", 5, 5), (
        result.summary
    )
    assert set_of(job, "a/f0") not in (set_id, None)
    assert stock_par2(par2.binary(), "verify", job, "a/f0")


def test_reader_processes_never_import_code_from_the_working_directory_whatever_pythonpath_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty entry in PYTHONPATH (`PYTHONPATH=$PYTHONPATH:/x` with PYTHONPATH unset) means
    the working directory, whatever `python -P` says: a scrub started from a share must still
    never run a `nasbox` package planted there in its reader processes (root)."""
    monkeypatch.setattr(readers, "PROCESSES_FROM", 0)
    monkeypatch.setattr(readers, "SMALL_BATCH", 1 << 30)
    job = make_job(tmp_path)
    small_files(Path(job.directory), 3)
    Scrub(job).run()
    planted = tmp_path / "share"
    marker = tmp_path / "planted code ran"
    (planted / "nasbox" / "scrub").mkdir(parents=True)
    (planted / "nasbox" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (planted / "nasbox" / "scrub" / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", f":{Path(readers.__file__).parents[2]}")  # first the working directory
    monkeypatch.chdir(planted)
    result = Scrub(job).run()
    assert not marker.exists()
    assert (result.status, result.stats["verified"]) == ("good", 3), result.summary


# ---- files listed without their metadata -------------------------------------------------


def replace_with_link_outside(path: Path, outside: Path) -> None:
    """A symlink to a copy of the file (its bytes and times) outside the job."""
    shutil.copy2(path, outside)
    path.unlink()
    path.symlink_to(outside)


def replace_with_hard_link_outside(path: Path, outside: Path, same_content: bool) -> None:
    """A hard link to a file outside the job, with the file's size and mtime, and its bytes
    or others."""
    st = path.stat()
    data = path.read_bytes()
    outside.write_bytes(data if same_content else bytes(b ^ 0x5A for b in data))
    os.utime(outside, ns=(st.st_atime_ns, st.st_mtime_ns))
    path.unlink()
    os.link(outside, path)


def replace_with_copy_of_other_content(path: Path) -> None:
    """Another file of the same size and mtime renamed over it (a new inode)."""
    st = path.stat()
    other = path.with_name(path.name + ".tmp")
    other.write_bytes(bytes(b ^ 0x5A for b in path.read_bytes()))
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)


def edit_and_set_mtime_back(path: Path) -> None:
    """Written in place, its size and mtime kept (its ctime moves)."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"EDITED")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


SWAPS = {
    "symlink outside": (lambda path, outside: replace_with_link_outside(path, outside), "skipped"),
    "hard link outside, same bytes": (lambda path, outside: replace_with_hard_link_outside(path, outside, True), None),
    "hard link outside, other bytes": (
        lambda path, outside: replace_with_hard_link_outside(path, outside, False),
        "updated",
    ),
    "fifo": (lambda path, _: (path.unlink(), os.mkfifo(path)), "skipped"),
    "directory": (lambda path, _: (path.unlink(), path.mkdir()), "skipped"),
    "another size": (lambda path, _: path.write_bytes(b"shorter"), "updated"),
    "same size and mtime, another inode": (lambda path, _: replace_with_copy_of_other_content(path), "updated"),
    "edited, mtime set back": (lambda path, _: edit_and_set_mtime_back(path), "updated"),
}


@pytest.mark.parametrize("swap", SWAPS)
def test_a_file_replaced_between_the_listing_and_its_read(
    tmp_path: Path, reading: Reading, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    """The walk lists a file it verifies without its metadata; before its read, the file is
    replaced. Whatever took its place is never blessed as the file, never repaired (what a
    user put there is kept, a file outside the job is never written), never followed; a
    corrupt neighbour in the same read is still repaired."""
    replace, counted = SWAPS[swap]
    data = Path(tmp_path / "data")
    job = dataclasses.replace(make_job(tmp_path, redundancy=50), directory=str(data / "job"))
    root = Path(job.directory)
    contents = small_files(root, 6)
    (data / "outside").mkdir()
    outside = data / "outside" / "secret"
    Scrub(job).run()
    time.sleep(0.1)
    flip(root / "a/f1", [100])
    target = root / "a/f0"
    listed = walk.read_directory
    left: dict[Path, bytes] = {}  # the regular files the swap left, as it left them

    def replaced_after_listing(directory: bytes, relative: bytes, *args: object) -> list:
        found = listed(directory, relative, *args)
        if relative == b"a":
            assert (b"f0", None) in found, "the file is listed without its metadata"
            replace(target, outside)
            left.update({p: p.read_bytes() for p in (target, outside) if p.is_file() and not p.is_symlink()})
        return found

    monkeypatch.setattr(walk, "read_directory", replaced_after_listing)
    result = Scrub(job).run()
    monkeypatch.undo()
    stats = result.stats
    assert (root / "a/f1").read_bytes() == contents["a/f1"], result.summary
    assert (stats["repaired"], stats["failed"], stats["unrepairable"]) == (1, 0, 0), result.summary
    expected = {"skipped": 0, "updated": 0, "verified": 5}
    if counted is None:
        expected["verified"] = 6
    else:
        expected[counted] += 1
    assert {k: stats[k] for k in expected} == expected, (result.summary, result.details)
    assert {p: p.read_bytes() for p in left} == left  # what a user put there kept, outside never written
    again = Scrub(job).run()
    assert again.status in ("good", "info"), again.summary
    assert Scrub(job).run().status == "good"
    reading.check()
