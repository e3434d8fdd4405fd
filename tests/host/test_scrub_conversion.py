"""The first run over a database whose parity is one par2 set per file, mirrored beside each
file's path in DATABASE, with a catalog that knows no sets: every file is moved into a parity
set, and until that is done, killed or not, no file loses its protection, none is reverted and
no corruption is blessed into a set. The old database is made with real par2 exactly as that
layout did (OldDatabase), and, where the repository's history holds it, by that release's own
engine."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from nasbox.scrub import par2
from nasbox.scrub.engine import Scrub
from nasbox.scrub.files import CHUNK
from nasbox.scrub.kind import ScrubJob
from tests.host.test_scrub_integrity import job_for, settle, write
from tests.host.test_scrub_interrupted import KILLED_AT_THE_TIMES_RESTORE, kill_a_repair
from tests.support import parity
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
LAST_PER_FILE_RELEASE = "f637c40"  # the last commit whose engine kept parity per file

# The catalog schema of that release, as data: what its catalogs hold.
PER_FILE_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    dir BLOB NOT NULL,
    name BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    md5 BLOB NOT NULL,
    volumes BLOB NOT NULL,
    parity_at REAL NOT NULL,
    verified_at REAL,
    result TEXT NOT NULL,
    ctime_ns INTEGER,
    settled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dir, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    dir BLOB NOT NULL,
    name BLOB NOT NULL,
    staging BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    md5 BLOB NOT NULL,
    volumes BLOB NOT NULL,
    ctime_ns INTEGER,
    settled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dir, name)
) WITHOUT ROWID;
"""
PENDING_COLUMNS = "dir, name, staging, size, mtime_ns, inode, md5, volumes, ctime_ns, settled"

# Sizes: files of 1 MiB and more get a set each, smaller ones share sets.
LARGE = 1_100_000
SMALL = 30_000


def tree(directory: Path, large: int = 4, small: int = 24) -> dict[str, bytes]:
    """Files in three directories, old (mtime in 2020): {relative: content}."""
    contents = {}
    for i in range(large + small):
        relative = f"d{i % 3}/{'big' if i < large else 'f'}{i}.bin"
        contents[relative] = write(directory / relative, (LARGE if i < large else SMALL) + i * 100, seed=i)
    return contents


@dataclass
class OldDatabase:
    """A DATABASE as the per-file release left it: <DATABASE>/<path>.par2 and one recovery file
    per file (par2 create -s<slice> -c<count> -n1, sized by nasbox.scrub.par2.sizing), and a
    catalog of PER_FILE_SCHEMA with a row per file, its recorded metadata settled."""

    job: ScrubJob

    @property
    def private(self) -> Path:
        return parity.private(self.job)

    def create(self, relatives: list[str]) -> None:
        self.private.mkdir(mode=0o700, parents=True)
        for leftover in ("staging", "repair"):
            (self.private / leftover).mkdir(mode=0o700)
        db = self.catalog()
        db.executescript(PER_FILE_SCHEMA)
        for relative in relatives:
            db.execute("INSERT INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", self.row(relative))
        db.commit()
        db.close()

    def catalog(self) -> sqlite3.Connection:
        return sqlite3.connect(self.private / "catalog.sqlite")

    def parity(self, relative: str, into: Path | None = None) -> tuple[bytes, ...]:
        """Per-file parity of the file as it is now, at its mirrored path (or at `into`, an
        index path); the names of its recovery files."""
        size = (Path(self.job.directory) / relative).stat().st_size
        slice_size, recovery = par2.sizing(size, self.job.redundancy)
        index = into or Path(self.job.database) / f"{relative}.par2"
        index.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                par2.binary(),
                "create",
                "-q",
                "-q",
                f"-s{slice_size}",
                f"-c{recovery}",
                "-n1",
                "-B",
                self.job.directory,
                str(index),
                str(Path(self.job.directory) / relative),
            ],
            check=True,
            capture_output=True,
        )
        stem = index.name[: -len(".par2")]
        return tuple(sorted(os.fsencode(p.name) for p in index.parent.glob(f"{stem}.vol*.par2")))

    def row(self, relative: str) -> tuple:
        path = Path(self.job.directory) / relative
        volumes = self.parity(relative)
        st = path.stat()
        directory, name = os.path.split(os.fsencode(relative))
        return (
            directory,
            name,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            hashlib.md5(path.read_bytes()).digest(),
            b"/".join(volumes),
            time.time(),
            time.time(),
            "good",
            st.st_ctime_ns,
            1,
        )

    def legacy_files(self) -> list[Path]:
        """Parity files outside the private folder."""
        return [p for p in parity.all_parity_files(self.job) if parity.private(self.job) not in p.parents]


def old_database(job: ScrubJob, contents: dict[str, bytes]) -> OldDatabase:
    settle()  # the files were there a while before that release protected them
    old = OldDatabase(job)
    old.create(sorted(contents))
    settle()
    assert len(old.legacy_files()) == 2 * len(contents)
    return old


def assert_converted(job: ScrubJob, contents: dict[str, bytes]) -> None:
    """Every file in exactly one set that stock par2 verifies and that records the file's
    bytes; no set without a file, nothing of the per-file layout left, the catalog marked."""
    db = parity.catalog(job)
    try:
        rows = {
            os.fsdecode(os.path.join(d, n)): (s, m)
            for d, n, s, m in db.execute("SELECT dir, name, set_id, md5 FROM files")
        }
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        recorded_sets = {r[0].decode() for r in db.execute("SELECT id FROM sets")}
    finally:
        db.close()
    assert set(rows) == set(contents)
    for relative, data in contents.items():
        assert (Path(job.directory) / relative).read_bytes() == data, relative
        set_id, md5 = rows[relative]
        assert set_id is not None, f"{relative} has no set"
        assert md5 == hashlib.md5(data).digest(), relative
    used = {s.decode() for s, _ in rows.values()}
    assert parity.all_sets(job) == used == recorded_sets  # no orphan, no unused set
    for set_id in used:
        member = sorted(parity.members(job, set_id))[0]
        assert parity.stock_par2(par2.binary(), "verify", job, member), set_id
    assert OldDatabase(job).legacy_files() == []
    assert not [
        p
        for p in Path(job.database).rglob("*")
        if p.is_dir() and parity.private(job) not in p.parents and p != parity.private(job)
    ], "directories of the per-file layout are left"
    assert version == 2 and "pending" not in tables
    assert not list((parity.private(job) / "staging").iterdir())


# ---- a first run --------------------------------------------------------------------------


@pytest.mark.parametrize("update_only", [False, True])
def test_first_run_moves_every_file_into_sets(tmp_path: Path, update_only: bool) -> None:
    directory, database = tmp_path / "data", tmp_path / "db"
    contents = tree(directory)
    job = job_for(directory, database)
    old_database(job, contents)

    result = Scrub(job, update_only=update_only).run()
    assert result.status != "error", result.details
    assert result.stats["new"] == result.stats["updated"] == result.stats["repaired"] == 0, result.stats
    assert_converted(job, contents)
    assert Scrub(job).run().status == "good"


@pytest.mark.parametrize("update_only", [False, True])
def test_file_corrupt_at_conversion_is_repaired_from_its_own_parity(tmp_path: Path, update_only: bool) -> None:
    """Damage below the filesystem in a large and in a small file (size and times unchanged)
    before the first run: both are repaired from their per-file parity; no set is made of
    their damaged bytes, whether the run verifies them or only moves them into sets."""
    with loop_mount(tmp_path / "disk"):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        contents = tree(directory, large=2, small=10)
        job = job_for(directory, database)
        old_database(job, contents)
        rot(directory / "d0/big0.bin", [5000, 700_000])
        rot(directory / "d1/f4.bin", [100])
        assert (directory / "d0/big0.bin").read_bytes() != contents["d0/big0.bin"]

        result = Scrub(job, update_only=update_only).run()
        assert result.stats["repaired"] == 2, (result.stats, result.details)
        assert result.status == "warning"
        assert_converted(job, contents)


def test_file_edited_before_conversion_gets_new_parity(tmp_path: Path) -> None:
    directory, database = tmp_path / "data", tmp_path / "db"
    contents = tree(directory, large=2, small=8)
    job = job_for(directory, database)
    old_database(job, contents)
    for relative in ("d0/big0.bin", "d2/f5.bin"):
        path = directory / relative
        edited = path.read_bytes()[:-10] + b"the edit" + path.read_bytes()[-2:] + b"longer"
        path.write_bytes(edited)
        contents[relative] = edited

    result = Scrub(job).run()
    assert (result.stats["updated"], result.stats["repaired"]) == (2, 0), (result.stats, result.details)
    assert_converted(job, contents)


# ---- killed while converting ----------------------------------------------------------------

# An engine run that kills itself (SIGKILL; its par2 processes die with it) at a point given
# as WHERE:N: "par2" after its N-th par2 process ended; "placed" after the N-th set's files were
# moved into place, not yet recorded; "recorded" after the N-th set was recorded in the catalog;
# "unlink" after removing the N-th per-file parity file of a file moved into a set; "sweep"
# after the N-th removal of a leftover of the per-file layout; "rmdir" after the N-th directory
# of that layout removed.
KILLED_RUN = """
import os, signal, sys
from nasbox import commands
from nasbox.scrub import install
from nasbox.scrub.catalog import Catalog
from nasbox.scrub.engine import Scrub
from nasbox.scrub.files import CHUNK
from nasbox.scrub.kind import ScrubJob

where, after = sys.argv[3].split(":")
count = [0]
def tick():
    count[0] += 1
    if count[0] == int(after):
        os.kill(os.getpid(), signal.SIGKILL)
def counted(function, applies=lambda *a, **k: True):
    def wrapper(*args, **kwargs):
        value = function(*args, **kwargs)
        if applies(*args, **kwargs):
            tick()
        return value
    return wrapper
if where == "par2":
    commands.run = counted(commands.run)
elif where == "placed":
    os.replace = counted(os.replace, lambda source, target, **kwargs: os.fsencode(target).endswith(b".par2")
                         and b"/sets/" in os.fsencode(target) and b".vol" not in os.fsencode(target))
elif where == "recorded":
    Catalog.add_set = counted(Catalog.add_set)
elif where == "unlink":
    install._unlink_if_present = counted(install._unlink_if_present, lambda path: not b"/sets/" in path)
elif where == "sweep":  # by name in a directory of DATABASE; not a staged file (parity*) in a rmtree
    os.unlink = counted(os.unlink, lambda path, **kw: "dir_fd" in kw and not os.fsencode(path).startswith(b"parity"))
elif where == "rmdir":  # by path in DATABASE, outside the private folder; not a rmtree's (by name)
    os.rmdir = counted(os.rmdir, lambda path, **kw: "dir_fd" not in kw and b"/.nasbox-scrub" not in os.fsencode(path))
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5, schedule="weekly"),
      workers=1).run()
"""


def kill_a_run(job: ScrubJob, where: str) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, job.directory, job.database, where],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, (where, killed.returncode, killed.stderr[-2000:])


KILL_POINTS = [
    "par2:1",
    "par2:3",
    "placed:1",
    "placed:4",
    "recorded:1",
    "recorded:3",
    "unlink:1",
    "unlink:4",
    "sweep:1",
    "sweep:2",
    "rmdir:1",
    "rmdir:3",
]


def leave_stray_parity(database: Path) -> None:
    """Per-file parity no row names, as a per-file run killed while moving a new file's parity
    in left it: what the sweep of that layout removes."""
    for source in (database / "d0").glob("big0.bin*.par2"):
        target = database / "d1" / "gone" / source.name.replace("big0", "gone")
        target.parent.mkdir(exist_ok=True)
        shutil.copy(source, target)


@pytest.mark.parametrize("where", KILL_POINTS)
def test_conversion_killed_then_finished_by_a_normal_run(tmp_path: Path, where: str) -> None:
    directory, database = tmp_path / "data", tmp_path / "db"
    contents = tree(directory)
    job = job_for(directory, database)
    old_database(job, contents)
    leave_stray_parity(database)
    kill_a_run(job, where)
    for relative, data in contents.items():
        assert (directory / relative).read_bytes() == data, relative

    result = Scrub(job).run()
    assert result.status != "error", result.details
    assert result.stats["updated"] == result.stats["new"] == 0, (result.stats, result.details)
    assert_converted(job, contents)


@pytest.mark.parametrize("where", ["par2:2", "recorded:2", "unlink:3"])
def test_catalog_lost_during_conversion(tmp_path: Path, where: str) -> None:
    """A conversion killed part way, then the catalog lost: the rebuild finds the files
    already in sets and those still with parity of their own. An edit made meanwhile is kept,
    damage below the filesystem in a file of either kind is repaired, and every file ends in
    one set."""
    with loop_mount(tmp_path / "disk", size_mb=96):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        contents = tree(directory)
        job = job_for(directory, database)
        old_database(job, contents)
        kill_a_run(job, where)
        in_sets = {r for r in contents if parity.set_of(job, r)}
        still_legacy = sorted(set(contents) - in_sets)
        assert in_sets and still_legacy, where
        for suffix in ("", "-wal", "-shm"):
            (parity.private(job) / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
        rotten = [sorted(in_sets)[0], still_legacy[0]]
        for relative in rotten:
            rot(directory / relative, [200])
        for edited in {still_legacy[-1], sorted(in_sets)[-1]} - set(rotten):
            contents[edited] = b"edited after the catalog was lost"
            (directory / edited).write_bytes(contents[edited])

        result = Scrub(job).run()
        assert any("entries recovered from the parity files" in line for line in result.details), result.details
        assert result.stats["repaired"] == 2, (result.stats, result.details)
        assert_converted(job, contents)


# ---- a journal the per-file release left ----------------------------------------------------


@pytest.mark.parametrize("moved", ["nothing", "recovery file", "both"])
@pytest.mark.parametrize("why", ["edited", "parity made again"])
def test_pending_move_of_a_killed_per_file_run_is_finished(tmp_path: Path, moved: str, why: str) -> None:
    """The per-file release journalled each parity move; a run of it killed during a move left
    the journal row, the staged parity and part of it moved over the file's own. The move is
    finished as that release would have, the journal goes, and the file ends in a set of its
    present content, as every other file."""
    directory, database = tmp_path / "data", tmp_path / "db"
    contents = tree(directory, large=1, small=4)
    job = job_for(directory, database)
    old = old_database(job, contents)
    relative = "d0/big0.bin"
    path = directory / relative
    if why == "edited":
        contents[relative] = path.read_bytes()[::-1]
        path.write_bytes(contents[relative])
    staging = old.private / "staging" / ("ab" * 16)
    staging.mkdir()
    volumes = old.parity(relative, into=staging / "parity.par2")
    st = path.stat()
    db = old.catalog()
    db.execute(
        f"INSERT INTO pending ({PENDING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            b"d0",
            b"big0.bin",
            b"ab" * 16,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            hashlib.md5(contents[relative]).digest(),
            b"/".join(b"big0.bin" + v[len(b"parity") :] for v in volumes),
            st.st_ctime_ns,
            1,
        ),
    )
    db.commit()
    db.close()
    mirrored = database / "d0"
    if moved in ("recovery file", "both"):
        for volume in volumes:
            os.replace(staging / os.fsdecode(volume), mirrored / ("big0.bin" + os.fsdecode(volume)[len("parity") :]))
    if moved == "both":
        os.replace(staging / "parity.par2", mirrored / "big0.bin.par2")
    settle()

    result = Scrub(job).run()
    assert result.status != "error", result.details
    assert result.stats["repaired"] == 0, result.details
    assert result.stats["updated"] == 0, (result.stats, result.details)  # its parity was made
    assert_converted(job, contents)


# ---- the per-file release's own engine --------------------------------------------------------


def per_file_release(into: Path) -> Path:
    """The package of the last per-file release, from this repository's history."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the per-file release's engine comes from its history")
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{LAST_PER_FILE_RELEASE}^{{commit}}"], capture_output=True
    )
    if found.returncode != 0:
        pytest.skip(
            f"commit {LAST_PER_FILE_RELEASE} is not in this clone (shallow?): the tests above make "
            "the per-file layout by hand"
        )
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", LAST_PER_FILE_RELEASE, "nasbox"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


OLD_ENGINE_RUN = """
import sys
from nasbox.scrub.engine import Scrub
from nasbox.scrub.files import CHUNK
from nasbox.scrub.kind import ScrubJob
result = Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5,
                        schedule="weekly")).run()
print(result.status, result.stats["new"])
"""


def test_database_of_the_per_file_release_is_converted(tmp_path: Path) -> None:
    """The same first run over what that release's engine really wrote, a file damaged below
    the filesystem in it and one edited since."""
    release = per_file_release(tmp_path / "release")
    with loop_mount(tmp_path / "disk"):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        contents = tree(directory, large=2, small=10)
        job = job_for(directory, database)
        settle()
        made = subprocess.run(
            [sys.executable, "-c", OLD_ENGINE_RUN, job.directory, job.database],
            env={**os.environ, "PYTHONPATH": str(release)},
            cwd=release,
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0 and made.stdout.split() == ["info", str(len(contents))], made.stderr[-2000:]
        assert len(OldDatabase(job).legacy_files()) == 2 * len(contents)
        rot(directory / "d1/big1.bin", [300_000])
        contents["d2/f5.bin"] = b"edited"
        (directory / "d2/f5.bin").write_bytes(contents["d2/f5.bin"])

        result = Scrub(job).run()
        assert (result.stats["repaired"], result.stats["updated"]) == (1, 1), (result.stats, result.details)
        assert_converted(job, contents)


def test_parity_a_killed_per_file_run_made_again_still_repairs(tmp_path: Path) -> None:
    """That release made a file's parity again when its recovery file was damaged, and a run of
    it killed before the move left the good parity staged, journalled. The file is damaged
    below the filesystem before the first run: the staged parity repairs it."""
    with loop_mount(tmp_path / "disk"):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        contents = tree(directory, large=1, small=4)
        job = job_for(directory, database)
        old = old_database(job, contents)
        relative = "d0/big0.bin"
        (volume,) = (database / "d0").glob("big0.bin.vol*.par2")
        damaged = bytearray(volume.read_bytes())
        for offset in range(1000, len(damaged) - 1000, 4096):
            damaged[offset] ^= 0xFF
        volume.write_bytes(bytes(damaged))
        staging = old.private / "staging" / ("cd" * 16)
        staging.mkdir()
        volumes = old.parity(relative, into=staging / "parity.par2")
        st = (directory / relative).stat()
        db = old.catalog()
        db.execute(
            f"INSERT INTO pending ({PENDING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                b"d0",
                b"big0.bin",
                b"cd" * 16,
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
                hashlib.md5(contents[relative]).digest(),
                b"/".join(b"big0.bin" + v[len(b"parity") :] for v in volumes),
                st.st_ctime_ns,
                1,
            ),
        )
        db.commit()
        db.close()
        rot(directory / relative, [4000, 600_000])

        result = Scrub(job).run()
        assert result.stats["repaired"] == 1, (result.stats, result.details)
        assert_converted(job, contents)


def test_repair_from_per_file_parity_killed_then_finished(tmp_path: Path) -> None:
    """A file damaged below the filesystem at the first run, its repair from its own parity
    killed after the first damaged block was written back: the next run finishes the repair
    (never takes the half-repaired file for an edit) and then gives it a set."""
    with loop_mount(tmp_path / "disk"):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        contents = tree(directory, large=1, small=4)
        contents["d1/huge.bin"] = write(directory / "d1/huge.bin", 3 * CHUNK, seed=99)
        job = job_for(directory, database)
        old_database(job, contents)
        path = directory / "d1/huge.bin"
        rot(path, [100, 2 * CHUNK + 100])
        kill_a_repair(KILLED_AT_THE_TIMES_RESTORE, directory, database)
        half = path.read_bytes()
        assert half[:4096] == contents["d1/huge.bin"][:4096] and half != contents["d1/huge.bin"]

        result = Scrub(job).run()
        assert result.stats["repaired"] == 1 and result.stats["updated"] == 0, (result.stats, result.details)
        assert_converted(job, contents)


# The per-file release's engine, killed (SIGKILL) right after it moved the first recovery file
# of a new parity set into place: its journal row, staged index and half-moved parity are left.
OLD_ENGINE_KILLED_IN_A_MOVE = """
import os, signal, sys
from nasbox.scrub import install
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
replace = install._replace_if_present
def killed(source, target):
    replace(source, target)
    os.kill(os.getpid(), signal.SIGKILL)
install._replace_if_present = killed
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5, schedule="weekly")).run()
"""


def test_run_of_the_per_file_release_killed_in_a_move_is_converted(tmp_path: Path) -> None:
    """That release's engine protects the tree; a file is edited; its next run is killed while
    moving the file's new parity into place; then the file is damaged below the filesystem. The
    first run of sets finishes that move, so the damage is repaired from it (the file's row
    still held the content before the edit: taken for another edit, the damage would have been
    given parity), and converts all of it."""
    release = per_file_release(tmp_path / "release")
    with loop_mount(tmp_path / "disk"):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        contents = tree(directory, large=2, small=6)
        job = job_for(directory, database)
        settle()
        env = {**os.environ, "PYTHONPATH": str(release)}
        made = subprocess.run(
            [sys.executable, "-c", OLD_ENGINE_RUN, job.directory, job.database],
            env=env,
            cwd=release,
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr[-2000:]
        path = directory / "d1/big1.bin"
        contents["d1/big1.bin"] = contents["d1/big1.bin"][::-1]
        path.write_bytes(contents["d1/big1.bin"])
        settle()
        killed = subprocess.run(
            [sys.executable, "-c", OLD_ENGINE_KILLED_IN_A_MOVE, job.directory, job.database],
            env=env,
            cwd=release,
            capture_output=True,
            text=True,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        db = OldDatabase(job).catalog()
        assert db.execute("SELECT name FROM pending").fetchall() == [(b"big1.bin",)]
        db.close()
        rot(path, [70_000])

        result = Scrub(job).run()
        assert result.stats["repaired"] == 1 and result.stats["updated"] == 0, (result.stats, result.details)
        assert_converted(job, contents)


def test_another_jobs_database_inside_this_one_is_left_to_it(tmp_path: Path) -> None:
    """What is left of the per-file layout is swept once no row uses it, but a scrub job's
    DATABASE inside this one's, with per-file parity of its own not yet converted, is that
    job's to convert: none of its files goes."""
    directory, database = tmp_path / "data", tmp_path / "db"
    contents = tree(directory, large=1, small=4)
    job = job_for(directory, database)
    old_database(job, contents)
    other_directory = tmp_path / "other"
    other_contents = tree(other_directory, large=1, small=4)
    other = job_for(other_directory, database / "nested" / "other-db")
    (database / "nested").mkdir()
    old_database(other, other_contents)
    theirs = {p: p.read_bytes() for p in Path(other.database).rglob("*") if p.is_file()}
    assert len(OldDatabase(other).legacy_files()) == 2 * len(other_contents)

    result = Scrub(job, databases=[job.database, other.database]).run()
    assert result.status != "error", result.details
    assert {p: p.read_bytes() for p in Path(other.database).rglob("*") if p.is_file()} == theirs
    assert Scrub(other, databases=[job.database, other.database]).run().status != "error"
    assert_converted(other, other_contents)
