"""A repair killed at its worst moment, for real (kill -9), against real par2 on a
loop-mounted ext4: what it leaves never lets damage into the parity."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasbox.scrub.engine import Scrub
from nasbox.scrub.files import CHUNK
from nasbox.scrub.kind import ScrubJob
from tests.host.test_scrub_integrity import job_for, settle, stock_par2_verifies, write
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]

# A scrub that kills itself (SIGKILL) the first time it sets a file's times through a
# descriptor: in a repair, right after it wrote the first damaged block back.
KILLED_AT_THE_TIMES_RESTORE = """
import os, signal, sys
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
KILLED_AT_THE_FLUSH = KILLED_AT_THE_TIMES_RESTORE.replace("""utime = os.utime
def killed(target, *args, **kwargs):
    if isinstance(target, int):
        os.kill(os.getpid(), signal.SIGKILL)
    return utime(target, *args, **kwargs)
os.utime = killed""", """fsync = os.fsync
def killed(fd):
    if os.readlink(f"/proc/self/fd/{fd}").startswith(sys.argv[1] + "/"):
        os.kill(os.getpid(), signal.SIGKILL)
    return fsync(fd)
os.fsync = killed""")


def kill_a_repair(script: str, directory: Path, database: Path) -> None:
    killed = subprocess.run([sys.executable, "-c", script, str(directory), str(database)],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
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
