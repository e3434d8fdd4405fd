"""A large file's own set repairs a few damaged slices in place from one read of the file
(nasbox.scrub.blockfix), against real par2 on a loop-mounted ext4 with damage made below the
file system; more damage than that route can take goes to par2 repair. Killed (kill -9)
while it writes, the repair by slices is finished by the next run, and an edit made after
the kill is kept."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nasbox import commands
from nasbox.scrub import blockfix, par2, repair, work
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.repair import read_repairing_note
from nasbox.scrub.trust import REPAIRING
from tests.host.test_scrub_integrity import OLD_NS, job_for, settle, stock_par2_verifies, write
from tests.host.test_scrub_interrupted import KILLED_AT_THE_FLUSH, KILLED_AT_THE_TIMES_RESTORE, kill_a_repair
from tests.support.parity import catalog, private, set_files, set_of
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host

SIZE = 4 << 20 | 1234  # its own set: 260 slices of 16140 bytes (the last one short), 13 recovery slices
SLICE, RECOVERY = par2.sizing(SIZE, 5)


@pytest.fixture
def par2_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What each par2 run of the test was: "slices" (recovery of the damaged file) or "repair"."""
    runs: list[str] = []
    run = commands.run

    def recorded(argv: Any, *args: Any, **kwargs: Any) -> Any:
        words = [bytes(a) if isinstance(a, bytes) else os.fsencode(a) for a in argv]
        if b"create" in words and any(w.startswith(b"-f") for w in words):
            runs.append("slices")
        elif b"repair" in words:
            runs.append("repair")
        return run(argv, *args, **kwargs)

    monkeypatch.setattr(commands, "run", recorded)
    yield runs


def protected(tmp_path: Path) -> tuple[ScrubJob, Path, bytes]:
    """(job, the file, its content): a file with an owner, mode and extended attribute of
    its own and an old mtime, protected by a first run."""
    directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
    path = directory / "big.bin"
    original = write(path, SIZE, seed=3)
    os.chown(path, 1234, 5678)
    os.chmod(path, 0o640)
    os.setxattr(path, "user.origin", b"camera")
    os.utime(path, ns=(OLD_NS, OLD_NS))
    job = job_for(directory, database)
    settle()
    assert Scrub(job).run().stats["new"] == 1
    assert len(set_files(job, set_of(job, "big.bin") or "")) == 2  # index and one recovery file
    return job, path, original


def in_slices(slices: list[int]) -> list[int]:
    """An offset inside each of these slices (the last one is short)."""
    return [min(k * SLICE + 777, SIZE - 1) for k in slices]


@pytest.mark.parametrize("slices", [[5], [0, 130, 259]], ids=["one-slice", "three-slices"])
def test_damaged_slices_are_repaired_in_place_from_one_read(
    tmp_path: Path, par2_runs: list[str], slices: list[int]
) -> None:
    with loop_mount(tmp_path / "disk"):
        job, path, original = protected(tmp_path)
        before = path.stat()
        rot(path, in_slices(slices))
        assert path.read_bytes() != original
        par2_runs.clear()
        result = Scrub(job).run()
        assert par2_runs == ["slices"], result.details  # no copy and par2 repair
        assert path.read_bytes() == original
        after = path.stat()
        assert (after.st_ino, after.st_uid, after.st_gid, after.st_mode) == (
            before.st_ino,
            before.st_uid,
            before.st_gid,
            before.st_mode,
        )
        assert after.st_mtime_ns == before.st_mtime_ns == OLD_NS
        assert os.getxattr(path, "user.origin") == b"camera"
        assert result.status == "warning" and "repaired" in "".join(result.details), result.details
        assert (result.stats["updated"], result.stats["new"]) == (0, 0), result.summary
        assert stock_par2_verifies(job, "big.bin")
        assert os.listdir(private(job) / os.fsdecode(REPAIRING)) == []
        assert Scrub(job).run().status == "good"


def test_a_repaired_file_is_settled_by_the_repair_s_own_final_read(
    tmp_path: Path, par2_runs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repair's final check of the whole file begins a timestamp tick after its last
    write: that read settles the file, and the run does not read a large file once more."""
    with loop_mount(tmp_path / "disk"):
        job, path, original = protected(tmp_path)
        rot(path, in_slices([5]))
        read_again: list[bytes] = []
        read = work.read

        def recorded(directory: bytes, relative_dir: bytes, name: bytes) -> Any:
            read_again.append(name)
            return read(directory, relative_dir, name)

        monkeypatch.setattr(work, "read", recorded)
        par2_runs.clear()
        result = Scrub(job).run()
        assert par2_runs == ["slices"] and path.read_bytes() == original, result.details
        assert read_again == []
        settled = catalog(job).execute("SELECT settled FROM files WHERE name = ?", (b"big.bin",)).fetchone()
        assert settled == (1,)


def test_more_damaged_slices_than_recovery_slices_go_to_par2_and_are_beyond_repair(
    tmp_path: Path, par2_runs: list[str]
) -> None:
    with loop_mount(tmp_path / "disk"):
        job, path, _ = protected(tmp_path)
        rot(path, in_slices(list(range(0, 2 * (RECOVERY + 1), 2))))
        damaged = path.read_bytes()
        par2_runs.clear()
        result = Scrub(job).run()
        assert par2_runs == ["repair"], result.details  # nothing to solve with: par2 tries
        assert path.read_bytes() == damaged
        assert result.stats["unrepairable"] == 1, result.summary


def test_a_damaged_recovery_file_sends_the_repair_to_par2_which_repairs(tmp_path: Path, par2_runs: list[str]) -> None:
    """One recovery packet damaged: its file is not read for slices, par2 repair reads the
    intact packets in it and repairs the file."""
    with loop_mount(tmp_path / "disk"):
        job, path, original = protected(tmp_path)
        volume = set_files(job, set_of(job, "big.bin") or "")[1]
        data = bytearray(volume.read_bytes())
        data[-100] ^= 0xFF  # in the last recovery slice
        volume.write_bytes(data)
        rot(path, in_slices([40]))
        par2_runs.clear()
        result = Scrub(job).run()
        assert par2_runs == ["repair"], result.details
        assert path.read_bytes() == original
        assert "repaired" in "".join(result.details), result.details


@pytest.mark.parametrize("when", ["rebuilding", "writing"])
def test_an_edit_of_a_damaged_slice_during_the_repair_is_kept(
    tmp_path: Path, par2_runs: list[str], monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A program writes into a damaged slice while its repair is rebuilt, or once the repair
    has noted what it will write, and sets the times back: nothing is written over the edit
    (its moved ctime, or the slice no longer holding the damaged bytes, shows it), and the
    edit is kept and protected as one."""
    with loop_mount(tmp_path / "disk"):
        job, path, _ = protected(tmp_path)
        rot(path, in_slices([5, 9]))

        def edit() -> None:
            before = path.stat()
            with open(path, "r+b") as f:
                f.seek(9 * SLICE + 50)
                f.write(b"the user's edit")
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

        hooked = blockfix.rebuild_slices if when == "rebuilding" else repair._note_repairing

        def edited_meanwhile(*args: Any, **kwargs: Any) -> Any:
            done = hooked(*args, **kwargs)
            edit()
            return done

        if when == "rebuilding":
            monkeypatch.setattr(blockfix, "rebuild_slices", edited_meanwhile)
        else:
            monkeypatch.setattr(repair, "_note_repairing", edited_meanwhile)
        par2_runs.clear()
        result = Scrub(job).run()
        assert par2_runs == ["slices"], result.details
        edited = path.read_bytes()
        assert edited[9 * SLICE + 50 :].startswith(b"the user's edit")
        if when == "writing":  # the edit looks like one, whatever times the repair restored
            assert path.stat().st_mtime_ns != OLD_NS
        assert "edit is kept" in "".join(result.details), result.details
        assert not any((private(job) / os.fsdecode(REPAIRING)).glob("*"))
        assert stock_par2_verifies(job, "big.bin")  # parity of the edited file
        assert path.read_bytes() == edited


def killed_repair(tmp_path: Path, script: str, slices: list[int]) -> tuple[ScrubJob, Path, bytes]:
    """A file repaired by slices, the repair killed by the script: (job, file, content)."""
    job, path, original = protected(tmp_path)
    rot(path, in_slices(slices))
    kill_a_repair(script, Path(job.directory), Path(job.database))
    journal = private(job) / os.fsdecode(REPAIRING)
    (note,) = journal.iterdir()
    found = read_repairing_note(bytes(note))
    assert found is not None and sorted(found.repaired) == [k * SLICE for k in slices]  # by slices
    return job, path, original


def test_repair_by_slices_killed_at_the_times_restore_is_finished(tmp_path: Path) -> None:
    with loop_mount(tmp_path / "disk"):
        job, path, original = killed_repair(tmp_path, KILLED_AT_THE_TIMES_RESTORE, [3, 200])
        content = path.read_bytes()
        assert content[3 * SLICE : 4 * SLICE] == original[3 * SLICE : 4 * SLICE]  # the first slice written
        assert content != original and path.stat().st_mtime_ns != OLD_NS
        result = Scrub(job).run()
        assert path.read_bytes() == original, result.details
        assert path.stat().st_mtime_ns == OLD_NS
        assert (result.stats["updated"], result.stats["new"]) == (0, 0), result.summary
        assert stock_par2_verifies(job, "big.bin")
        assert Scrub(job).run().status == "good"


def test_repair_by_slices_killed_at_the_flush_is_not_taken_for_an_edit(tmp_path: Path) -> None:
    with loop_mount(tmp_path / "disk"):
        job, path, original = killed_repair(tmp_path, KILLED_AT_THE_FLUSH, [3, 200])
        assert path.read_bytes() == original and path.stat().st_mtime_ns == OLD_NS
        result = Scrub(job).run()
        assert path.read_bytes() == original
        assert (result.stats["updated"], result.stats["new"]) == (0, 0), result.summary
        assert stock_par2_verifies(job, "big.bin")


@pytest.mark.parametrize("script", [KILLED_AT_THE_TIMES_RESTORE, KILLED_AT_THE_FLUSH], ids=["times", "flush"])
def test_edit_after_a_repair_by_slices_was_killed_is_kept(tmp_path: Path, script: str) -> None:
    """An edit outside the noted slices, its times set back as a careful program does: the
    file with the noted slices as repaired no longer has the recorded MD5."""
    with loop_mount(tmp_path / "disk"):
        job, path, _ = killed_repair(tmp_path, script, [3, 200])
        before = path.stat()
        with open(path, "r+b") as f:
            f.seek(100 * SLICE + 10)
            f.write(b"the user's edit")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        edited = path.read_bytes()
        result = Scrub(job).run()
        assert path.read_bytes() == edited, result.details
        assert stock_par2_verifies(job, "big.bin")
