"""A repair killed at its worst moment, for real (kill -9), against real par2 on a
loop-mounted ext4: what it leaves never lets damage into the parity. A run killed while it
puts a set in place or removes one leaves nothing the next run does not clean up."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nasbox.scrub import par2
from nasbox.scrub.engine import Scrub
from nasbox.scrub.files import CHUNK
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.trust import REPAIRING
from tests.host.test_scrub_integrity import described_by, job_for, populate, settle, stock_par2_verifies, write
from tests.support.parity import all_sets, private, set_files
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]

# A scrub that kills itself (SIGKILL) the first time it sets a file's times through a
# descriptor: in a repair, right after it wrote the first damaged block back.
KILLED_AT_THE_TIMES_RESTORE = """
import os, signal, sys
from nasbox.scrub import par2
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
utime = os.utime
def killed(target, *args, **kwargs):
    if isinstance(target, int):
        os.kill(os.getpid(), signal.SIGKILL)
    return utime(target, *args, **kwargs)
os.utime = killed
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5, schedule="weekly")).run()
"""

# The same, killed when the repair flushes the file it wrote into: every block written and
# the times set back, its note not yet removed.
KILLED_AT_THE_FLUSH = KILLED_AT_THE_TIMES_RESTORE.replace(
    """utime = os.utime
def killed(target, *args, **kwargs):
    if isinstance(target, int):
        os.kill(os.getpid(), signal.SIGKILL)
    return utime(target, *args, **kwargs)
os.utime = killed""",
    """fsync = os.fsync
def killed(fd):
    if os.readlink(f"/proc/self/fd/{fd}").startswith(sys.argv[1] + "/"):
        os.kill(os.getpid(), signal.SIGKILL)
    return fsync(fd)
os.fsync = killed""",
)


def kill_a_repair(script: str, directory: Path, database: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", script, str(directory), str(database)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr


def protected_file(tmp_path: Path) -> tuple[Path, Path, ScrubJob, Path, bytes]:
    """A file of three chunks with its parity, on the loop-mounted disk at tmp_path/disk:
    (directory, database, job, the file, its content)."""
    directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
    original = write(directory / "big.bin", 3 * CHUNK, seed=1)
    job = job_for(directory, database)
    settle()
    assert Scrub(job).run().status == "info"  # parity made
    return directory, database, job, directory / "big.bin", original


def test_repair_killed_between_a_block_write_and_the_times_restore_is_finished(tmp_path: Path) -> None:
    """Killed between writing a block and setting the file's times back, a repair leaves a
    file with a new mtime and damage still in its other chunks: the next run must finish the
    repair, not take the file for an edit and make parity of the damage."""
    with loop_mount(tmp_path / "disk"):
        directory, database, job, path, original = protected_file(tmp_path)
        rot(path, [100, 2 * CHUNK + 100])
        kill_a_repair(KILLED_AT_THE_TIMES_RESTORE, directory, database)
        assert path.read_bytes()[:4096] == original[:4096]  # the first block was written back
        result = Scrub(job).run()
        assert path.read_bytes() == original, result.summary
        assert stock_par2_verifies(job, "big.bin")
        assert result.status == "warning" and "repaired" in "".join(result.details), result.details


def test_edit_after_a_repair_was_killed_is_kept(tmp_path: Path) -> None:
    """The same killed repair, then an edit elsewhere in the file before the next run: the
    file no longer holds only damage and the repair's writes, and the edit is kept."""
    with loop_mount(tmp_path / "disk"):
        directory, database, job, path, _ = protected_file(tmp_path)
        rot(path, [100, 2 * CHUNK + 100])
        kill_a_repair(KILLED_AT_THE_TIMES_RESTORE, directory, database)
        with open(path, "r+b") as f:
            f.seek(CHUNK + 10)
            f.write(b"the user's edit")
        edited = path.read_bytes()
        result = Scrub(job).run()
        assert path.read_bytes() == edited, result.details
        assert stock_par2_verifies(job, "big.bin")


def test_edit_that_sets_the_times_back_after_a_repair_was_killed_is_kept(tmp_path: Path) -> None:
    """A repair killed once it had written everything and set the times back, then an edit
    in place that keeps size and mtime (rsync --inplace of an older version, a program that
    restores the times): the file no longer holds only the repair's writes, and the edit is
    kept, not reverted as the rest of the damage."""
    with loop_mount(tmp_path / "disk"):
        directory, database, job, path, original = protected_file(tmp_path)
        rot(path, [100])
        kill_a_repair(KILLED_AT_THE_FLUSH, directory, database)
        assert path.read_bytes() == original  # repaired, times set back, note left
        before = path.stat()
        with open(path, "r+b") as f:
            f.seek(CHUNK + 10)
            f.write(b"the user's edit")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        edited = path.read_bytes()
        result = Scrub(job).run()
        assert path.read_bytes() == edited, result.details
        assert stock_par2_verifies(job, "big.bin")


# A scrub that kills itself (SIGKILL) at the moment argv[3] names.
KILLED_AMID_THE_SETS = """
import os, signal, sys
from nasbox.scrub import catalog, install
from nasbox.scrub import par2
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
def kill(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
where = sys.argv[3]
if where.endswith("moved in, not recorded"):  # every file of a new set in sets/, the catalog not told
    add_set = catalog.Catalog.add_set
    added = []
    def adding(self, *args):
        added.append(args)
        if len(added) == (2 if where.startswith("regrouped") else 1):
            kill()
        return add_set(self, *args)
    catalog.Catalog.add_set = adding
elif where == "between a set's files":  # its recovery file moved in, its index not yet
    replace = os.replace
    def moving(source, target, *args, **kwargs):
        target = os.fsencode(target)
        if b"/sets/" in target and b".vol" not in target:
            kill()
        return replace(source, target, *args, **kwargs)
    os.replace = moving
elif where == "removing an old set":  # its index removed, its recovery file not yet
    unlink = install._unlink_if_present
    removed = []
    def removing(path):
        if b"/sets/" in path:
            removed.append(path)
            if len(removed) == 2:
                kill()
        return unlink(path)
    install._unlink_if_present = removing
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5, schedule="weekly")).run()
"""


def set_ids_on_disk(job: ScrubJob) -> set[str]:
    """The set id of every file in the private folder's sets/."""
    return {p.name[:32] for p in (private(job) / "sets").glob("*/*")}


@pytest.mark.parametrize(
    "where",
    ["moved in, not recorded", "regrouped set moved in, not recorded", "between a set's files", "removing an old set"],
)
def test_run_killed_while_putting_sets_in_place_or_removing_them_leaves_one_set_per_file(
    tmp_path: Path, where: str
) -> None:
    """An edit makes a file's new set and its old set made again without it; the run is
    killed while it puts a set in place (files moved into sets/, the catalog not yet told)
    or while it removes the old set. The next run leaves no set file no row needs, every
    file described by exactly one set, each verified by stock par2, and the edit kept."""
    directory, database = tmp_path / "data", tmp_path / "db"
    contents = populate(directory, 6, size=30_000)
    job = job_for(directory, database)
    settle()
    assert Scrub(job).run().stats["new"] == 6
    first = all_sets(job)
    edited = contents[directory / "f1.bin"] = write(directory / "f1.bin", 30_000, seed=99)
    os.utime(directory / "f1.bin")
    settle()
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AMID_THE_SETS, str(directory), str(database), where],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr
    if where == "removing an old set":
        left = set_ids_on_disk(job) & first
        assert left and not (set_files(job, left.pop())[0]).exists()  # half removed
    else:
        assert set_ids_on_disk(job) - first  # set files no row names yet
    result = Scrub(job).run()
    assert result.status != "error", (result.summary, result.details)
    assert (directory / "f1.bin").read_bytes() == edited
    assert all(path.read_bytes() == data for path, data in contents.items())
    db = sqlite3.connect(private(job) / "catalog.sqlite")
    try:
        recorded = {r[0].decode() for r in db.execute("SELECT id FROM sets")}
        used = {r[0].decode() for r in db.execute("SELECT DISTINCT set_id FROM files WHERE set_id IS NOT NULL")}
    finally:
        db.close()
    assert set_ids_on_disk(job) == recorded == used == all_sets(job)
    described: list[str] = []
    for set_id in sorted(recorded):
        index, *volumes = set_files(job, set_id)
        assert volumes, f"{set_id} has no recovery file"
        described += described_by(index)
        assert (
            subprocess.run(
                [par2.binary(), "verify", "-q", "-B", str(directory), str(index)], capture_output=True
            ).returncode
            == 0
        ), set_id
    assert sorted(described) == sorted(f"f{i}.bin" for i in range(6))  # each once
    assert Scrub(job).run().status == "good"


# A scrub that kills itself (SIGKILL) the argv[3]th time it sets a file's times through a
# descriptor: in a repair of several files of one set, right after a block of one of them.
KILLED_AT_A_LATER_TIMES_RESTORE = """
import os, signal, sys
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
utime = os.utime
restored = []
def killed(target, *args, **kwargs):
    if isinstance(target, int):
        restored.append(target)
        if len(restored) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    return utime(target, *args, **kwargs)
os.utime = killed
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5, schedule="weekly")).run()
"""


@pytest.mark.parametrize("killed_at", [1, 2], ids=["first-file", "second-file"])
def test_repair_of_two_files_of_a_set_killed_midway_is_finished(tmp_path: Path, killed_at: int) -> None:
    """Two corrupt files of one shared set are repaired by one par2 run and written back one
    after the other, each under its own note; killed right after a block of the first or of
    the second, the next run finishes both, and neither is taken for an edit."""
    with loop_mount(tmp_path / "disk"):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        contents = populate(directory, 4, size=300_000)
        job = job_for(directory, database)
        settle()
        assert Scrub(job).run().stats["new"] == 4
        rot(directory / "f1.bin", [100])
        rot(directory / "f2.bin", [200_000])
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_AT_A_LATER_TIMES_RESTORE, str(directory), str(database), str(killed_at)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
        )
        assert killed.returncode == -9, killed.stderr
        notes = os.listdir(private(job) / os.fsdecode(REPAIRING))
        assert [note.rsplit(".", 1)[1] for note in notes] == [str(killed_at - 1)]  # the file being written
        result = Scrub(job).run()
        assert all(path.read_bytes() == data for path, data in contents.items()), result.details
        assert (result.stats["updated"], result.stats["new"]) == (0, 0), result.summary
        assert all(stock_par2_verifies(job, f"f{i}.bin") for i in range(4))
        assert Scrub(job).run().status == "good"
