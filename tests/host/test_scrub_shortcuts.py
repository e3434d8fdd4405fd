"""The shortcuts of a full scrub's verify, attacked: a set judged intact by the digest of its
files, a set checked in a reader process, files listed without their metadata and marked
intact many at a time. Real par2 on a loop-mounted ext4 image, in the scrub's threads and in
its reader processes (nasbox.scrub.readers)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasbox.scrub import par2, readers, setcheck, walk
from nasbox.scrub.engine import Scrub
from nasbox.scrub.work import Worker
from tests.host import test_scrub_readers
from tests.host.test_scrub import data_disk, flip, make_job, write  # noqa: F401 (data_disk: the loop-mounted DIRECTORY)
from tests.host.test_scrub_readers import Reading, in_catalog
from tests.support.parity import set_files, set_of, stock_par2
from tests.support.rawdisk import loop_mount

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


def damage_set(job: object, set_id: str, other: str, how: str) -> None:
    """A set's files or its row as `how` says; other: an intact set of the same job."""
    index, volume = set_files(job, set_id)
    if how == "recovery file cut short":
        volume.write_bytes(volume.read_bytes()[:-100])
    elif how == "bytes appended to the index":
        index.write_bytes(index.read_bytes() + b"PAR2\0PKT" + bytes(56))
    elif how == "recovery file a link to a copy of itself":
        copy = volume.with_name("copy")
        shutil.copyfile(volume, copy)
        volume.unlink()
        volume.symlink_to(copy)
    elif how == "recovery file gone":
        volume.unlink()
    else:  # the row keeps another digest, and the files are damaged
        kept = {
            "the digest of another set": f"(SELECT digest FROM sets WHERE id = x'{other.encode().hex()}')",
            "a digest of no set": "randomblob(32)",
            "a text digest": "'not a digest'",
        }[how]
        in_catalog(job, f"UPDATE sets SET digest = {kept} WHERE id = x'{set_id.encode().hex()}'")
        data = bytearray(volume.read_bytes())
        data[len(data) // 2] ^= 0xFF
        volume.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "how",
    [
        "recovery file cut short",
        "bytes appended to the index",
        "recovery file a link to a copy of itself",
        "recovery file gone",
        "the digest of another set",
        "a digest of no set",
        "a text digest",
    ],
)
def test_damaged_parity_is_found_whatever_digest_its_row_keeps(tmp_path: Path, reading: Reading, how: str) -> None:
    """Parity damaged, or read through a link, or a row whose digest is not its files': the
    set is made again from the verified files."""
    job = make_job(tmp_path)
    root = Path(job.directory)
    small_files(root, 5)
    Scrub(job).run()
    write(root / "b" / "g", 3000, seed=99)
    Scrub(job).run()  # a set of its own for b/g
    time.sleep(0.1)
    set_id, other = set_of(job, "a/f0"), set_of(job, "b/g")
    damage_set(job, set_id, other, how)

    result = Scrub(job).run()
    assert (result.status, result.stats["verified"], result.stats["parity_rebuilt"]) == ("warning", 6, 5), (
        result.summary
    )
    assert set_of(job, "a/f0") not in (set_id, None) and set_of(job, "b/g") == other
    assert stock_par2(par2.binary(), "verify", job, "a/f0")
    assert Scrub(job).run().status == "good"
    reading.check()


def test_a_digest_an_earlier_version_kept_gives_way_to_this_versions(tmp_path: Path, reading: Reading) -> None:
    """An intact set whose row keeps the MD5 of its files one after the other (an earlier
    version's digest): its packets are checked once, and its row keeps this version's digest."""
    job = make_job(tmp_path)
    small_files(Path(job.directory), 5)
    Scrub(job).run()
    [(set_id, made)] = in_catalog(job, "SELECT id, digest FROM sets")
    earlier = hashlib.md5(b"".join(p.read_bytes() for p in set_files(job, set_id.decode()))).hexdigest()
    in_catalog(job, f"UPDATE sets SET digest = x'{earlier}'")
    time.sleep(0.1)
    result = Scrub(job).run()
    assert (result.status, result.stats["verified"]) == ("good", 5), result.summary
    assert in_catalog(job, "SELECT id, digest FROM sets") == [(set_id, made)]
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


# ---- files marked intact many at a time --------------------------------------------------


def odd_name(i: int) -> str:
    """Names a directory of a NAS holds: bytes that are not UTF-8, names as long as parity
    allows (253 bytes, with room for par2's `.1`), plain ones."""
    if i % 3 == 0:
        return os.fsdecode(b"\xff\xfe-latin1-\xe9t\xe9-%d" % i)
    if i % 3 == 1:
        return (f"{i}-" + "n" * 253)[:253]
    return f"plain-{i}"


def verified_rows(job: object, since: float) -> dict[bytes, tuple[object, object]]:
    """{name: (verified_at later than since, result)} of every row."""
    rows = in_catalog(job, "SELECT name, verified_at, result FROM files")
    return {name: (verified_at is not None and verified_at > since, result) for name, verified_at, result in rows}


@pytest.mark.parametrize("count", [501, 1025])  # past one IN (...) list of names, past one read task
def test_every_file_of_a_large_directory_is_marked_by_its_own_read(
    tmp_path: Path, reading: Reading, count: int
) -> None:
    """A directory of more files than one statement marks or one task reads: each file is
    marked verified once it was read intact, the corrupt ones (at the edges of the batches)
    are repaired and marked so, none is marked for another."""
    job = make_job(tmp_path, redundancy=10)
    root = Path(job.directory)
    names = [odd_name(i) for i in range(count)]
    contents = {name: write(root / "big" / name, 1000 + i % 7, seed=i) for i, name in enumerate(names)}
    first = Scrub(job).run()
    assert first.stats["new"] == count, first.summary
    time.sleep(0.1)
    ordered = sorted(os.fsencode(name) for name in names)
    corrupt = {ordered[i] for i in (0, 499, 500, count - 1)}
    for name in corrupt:
        flip(root / "big" / os.fsdecode(name), [10])
    since = time.time()

    result = Scrub(job).run()
    assert (result.stats["verified"], result.stats["repaired"]) == (count, len(corrupt)), result.summary
    assert all((root / "big" / name).read_bytes() == data for name, data in contents.items())
    assert verified_rows(job, since) == {
        name: (True, "repaired" if name in corrupt else "good") for name in map(os.fsencode, names)
    }
    reading.check()


def test_a_file_edited_while_its_batch_is_in_flight_is_kept(
    tmp_path: Path, reading: Reading, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file read intact, then edited (size and mtime kept) before the scrub marks its
    batch: the mark says when it was last found intact, never that the edit is; the next
    run takes the edit for one (new parity), never for corruption."""
    job = make_job(tmp_path)
    root = Path(job.directory)
    small_files(root, 5)
    Scrub(job).run()
    time.sleep(0.1)
    target = root / "a/f3"
    check = Worker.check

    def edited_after_the_read(self: Worker, directory: bytes, items: list) -> list:
        done = check(self, directory, items)
        if any(entry.name == b"f3" for entry, _, _ in items):
            edit_and_set_mtime_back(target)
        return done

    monkeypatch.setattr(Worker, "check", edited_after_the_read)
    result = Scrub(job).run()
    monkeypatch.undo()
    assert (result.status, result.stats["verified"]) == ("good", 5), result.summary
    edited = target.read_bytes()
    again = Scrub(job).run()
    assert (again.stats["updated"], again.stats["repaired"], again.stats["verified"]) == (1, 0, 4), again.summary
    assert target.read_bytes() == edited
    assert stock_par2(par2.binary(), "verify", job, "a/f3")
    reading.check()


# ---- killed during a verify ----------------------------------------------------------------

# A full scrub that kills itself (SIGKILL) at a point given as WHERE:N, its reads in reader
# processes: "read" after the N-th read task came back, not yet applied; "intact" after the
# N-th statement marking files intact; "commit" after the N-th commit; "checked" after the
# N-th set check came back; "digest" after the N-th digest recorded for a set.
KILLED_VERIFY = """
import os, signal, sys
from nasbox.scrub import readers
from nasbox.scrub.catalog import Catalog
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.work import Worker

readers.PROCESSES_FROM, readers.SMALL_BATCH = 0, 1 << 30
where, after = sys.argv[3].split(":")
count = [0]
def counted(function):
    def wrapper(*args, **kwargs):
        value = function(*args, **kwargs)
        count[0] += 1
        if count[0] == int(after):
            os.kill(os.getpid(), signal.SIGKILL)
        return value
    return wrapper
points = {"read": (Worker, "check"), "intact": (Catalog, "mark_intact"), "commit": (Catalog, "commit"),
          "checked": (Worker, "check_set"), "digest": (Catalog, "set_digest")}
owner, name = points[where]
setattr(owner, name, counted(getattr(owner, name)))
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5, schedule="weekly")).run()
"""
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "where", ["read:1", "read:3", "intact:1", "intact:3", "commit:1", "checked:1", "checked:2", "digest:1"]
)
def test_a_verify_killed_at_any_point_blesses_nothing_it_did_not_check(tmp_path: Path, where: str) -> None:
    """Killed while it verifies: every file the catalog says was found good since is as its
    row records it, every set that keeps a digest has that digest; the next run repairs the
    corrupt files and makes the damaged set again."""
    job = make_job(tmp_path)
    root = Path(job.directory)
    contents: dict[str, bytes] = {}
    for letter in "abc":  # a set for each directory, each made by a run of its own
        contents |= {f"{letter}/f{i}": write(root / letter / f"f{i}", 3000 + i, seed=i) for i in range(300)}
        Scrub(job).run()
    damaged, unknown = set_of(job, "a/f0"), set_of(job, "b/f0")
    in_catalog(
        job, f"UPDATE sets SET digest = NULL WHERE id IN (x'{damaged.encode().hex()}', x'{unknown.encode().hex()}')"
    )
    assert in_catalog(job, "SELECT count(*) FROM sets WHERE digest IS NULL") == [(2,)]
    volume = set_files(job, damaged)[1]
    data = bytearray(volume.read_bytes())
    data[len(data) // 2] ^= 0xFF
    volume.write_bytes(bytes(data))
    time.sleep(0.1)
    corrupt = {"a/f7", "b/f150", "c/f299"}
    for relative in corrupt:
        flip(root / relative, [10])
    since = time.time()

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_VERIFY, job.directory, job.database, where],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, (where, killed.returncode, killed.stderr[-2000:])
    marked = in_catalog(
        job, f"SELECT dir, name, size, mtime_ns, inode, ctime_ns, md5 FROM files WHERE verified_at > {since}"
    )
    for directory, name, *recorded, md5 in marked:
        path = root / os.fsdecode(directory) / os.fsdecode(name)
        st = path.stat()
        assert [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns] == recorded, path
        assert hashlib.md5(path.read_bytes()).digest() == md5, f"{path} was marked verified, and is corrupt"
    for set_id, digest in in_catalog(job, "SELECT id, digest FROM sets WHERE digest IS NOT NULL"):
        assert setcheck.digest_of([os.fsencode(p) for p in set_files(job, set_id.decode())]) == digest, set_id

    result = Scrub(job).run()  # waits for no process of the killed run: the lock is free
    stats = result.stats
    assert (stats["repaired"], stats["parity_rebuilt"], stats["verified"]) == (3, 300, 900), result.summary
    assert all((root / relative).read_bytes() == data for relative, data in contents.items())
    assert Scrub(job).run().status == "good"
    for letter in "abc":
        assert stock_par2(par2.binary(), "verify", job, f"{letter}/f0")


def test_whole_second_timestamps_tell_corruption_from_an_edit_at_the_read(
    tmp_path: Path, reading: Reading, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a filesystem that keeps whole seconds (ext4 with 128-byte inodes), files the walk
    lists without their metadata: one damaged below the filesystem is repaired; one written
    in place with its mtime set back (its ctime moved, within a second of the other's) keeps
    the edit."""
    disk = tmp_path / "seconds"
    with loop_mount(disk, mkfs_options=("-I", "128")):
        job = make_job(tmp_path, redundancy=50)  # the corrupt file's set also holds the edited one
        job = dataclasses.replace(job, directory=str(disk), database=str(disk / ".pardatabase"))
        root = Path(job.directory)
        contents = small_files(root, 6)
        time.sleep(3.1)  # older than the coarsest tick: listed without their metadata
        Scrub(job).run()
        flip(root / "a/f1", [100])
        edit_and_set_mtime_back(root / "a/f2")
        edited = (root / "a/f2").read_bytes()
        assert (root / "a/f2").stat().st_mtime_ns % 1_000_000_000 == 0

        result = Scrub(job).run()
        stats = result.stats
        assert (stats["repaired"], stats["updated"], stats["verified"]) == (1, 1, 5), result.summary
        assert (root / "a/f1").read_bytes() == contents["a/f1"]
        assert (root / "a/f2").read_bytes() == edited
        time.sleep(3.1)
        assert Scrub(job).run().status == "good"
        assert stock_par2(par2.binary(), "verify", job, "a/f2")
    reading.check()
