"""The scrub's run-level integrity against real par2 on real, loop-mounted filesystems: a disk
that did not mount never costs parity, a lost catalog never lets corruption in, an edit is
never reverted, and a DATABASE setting never overwrites user data."""

from __future__ import annotations

import hashlib
import mmap
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox import exits
from nasbox.scrub import par2, par2format
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.work import SetMade
from tests.support.parity import all_parity_files, all_sets, index_of, members, set_files, set_of, stock_par2
from tests.support.rawdisk import loop_mount, mount_again, rot, unmount

pytestmark = pytest.mark.host

OLD_NS = 1_600_000_000_000_000_000  # 2020: files that have been there a while


def job_for(directory: Path, database: Path, **options: object) -> ScrubJob:
    return ScrubJob(
        name="t", directory=str(directory), database=str(database), redundancy=5, schedule="weekly", **options
    )


def write(path: Path, size: int, seed: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(hashlib.sha256(b"%d-%d" % (seed, i)).digest() for i in range(size // 32 + 1))[:size]
    path.write_bytes(data)
    os.utime(path, ns=(OLD_NS, OLD_NS))
    return data


def populate(directory: Path, count: int, size: int = 20_000, first_seed: int = 0) -> dict[Path, bytes]:
    return {directory / f"f{i}.bin": write(directory / f"f{i}.bin", size, first_seed + i) for i in range(count)}


def snapshot(database: Path) -> dict[str, bytes]:
    """Every parity file and the catalog rows: what must survive a skipped run."""
    files = {str(p.relative_to(database)): p.read_bytes() for p in database.rglob("*.par2")}
    db = sqlite3.connect(database / ".nasbox-scrub" / "catalog.sqlite")
    try:
        rows = sorted(db.execute("SELECT dir, name, size, md5, set_id FROM files").fetchall())
    finally:
        db.close()
    files["catalog rows"] = repr(rows).encode()
    return files


def stock_par2_verifies(job: ScrubJob, relative: str) -> bool:
    return stock_par2(par2.binary(), "verify", job, relative)


def settle() -> None:
    """Let the files just written age past a timestamp tick, as files on a NAS have."""
    time.sleep(0.2)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(image, mountpoint) of an ext4 image mounted at tmp_path/disk."""
    with loop_mount(tmp_path / "disk") as image:
        yield image, tmp_path / "disk"


# ---- a disk that did not mount ------------------------------------------------------------


@pytest.mark.parametrize("leftover", ["nothing", "empty subdirectory", "stray file"])
@pytest.mark.parametrize("database_inside", [True, False])
def test_unmounted_directory_keeps_all_parity(tmp_path, disk, leftover, database_inside):
    image, mountpoint = disk
    database = mountpoint / ".pardatabase" if database_inside else tmp_path / "parity"
    job = job_for(mountpoint, database)
    contents = populate(mountpoint / "docs", 10)
    settle()
    assert Scrub(job).run().stats["new"] == 10
    before = snapshot(database)
    unmount(mountpoint)
    if leftover == "empty subdirectory":
        (mountpoint / "docs").mkdir()
    elif leftover == "stray file":
        (mountpoint / "f0.bin").write_bytes(b"written while the disk was away")
    left = sorted(os.listdir(mountpoint))

    result = Scrub(job).run()
    assert (result.skipped, result.exit_code, result.status) == (True, exits.SKIPPED, "warning"), result.summary
    assert "not mounted?" in result.summary
    assert sorted(os.listdir(mountpoint)) == left  # no DATABASE made on the disk below
    for leftover_entry in left:
        os.unlink(mountpoint / leftover_entry) if leftover == "stray file" else os.rmdir(mountpoint / leftover_entry)
    mount_again(image, mountpoint)
    assert snapshot(database) == before
    again = Scrub(job).run()
    assert (again.status, again.stats["verified"]) == ("good", 10), again.summary
    assert all(path.read_bytes() == data for path, data in contents.items())


@pytest.mark.parametrize("on_the_disk", [3, 8])  # 3 of 7: within the removal limit; 8 of 12: most
def test_unmounted_subdirectory_keeps_its_parity(tmp_path, on_the_disk):
    directory = tmp_path / "data"
    job = job_for(directory, directory / ".pardatabase")
    populate(directory, 4)
    with loop_mount(directory / "photos", image=tmp_path / "photos.img") as image:
        populate(directory / "photos", on_the_disk, first_seed=100)
        settle()
        assert Scrub(job).run().stats["new"] == 4 + on_the_disk
        before = snapshot(Path(job.database))
        unmount(directory / "photos")
        result = Scrub(job).run()
        assert (result.skipped, result.exit_code) == (True, exits.SKIPPED), result.summary
        assert f"{directory}/photos was a mount point at the last scrub" in result.summary
        assert snapshot(Path(job.database)) == before
        mount_again(image, directory / "photos")
        assert Scrub(job).run().status == "good"


@pytest.mark.parametrize("mountpoint_left", [True, False])  # an automounter removes it
def test_database_on_an_unmounted_disk_is_not_made_again(tmp_path, disk, mountpoint_left):
    image, mountpoint = disk
    directory = tmp_path / "data"
    populate(directory, 4)
    job = job_for(directory, mountpoint / "docs-parity")
    settle()
    assert Scrub(job).run().stats["new"] == 4
    before = snapshot(Path(job.database))
    unmount(mountpoint)
    if not mountpoint_left:
        mountpoint.rmdir()
    result = Scrub(job).run()
    assert (result.skipped, result.exit_code) == (True, exits.SKIPPED), result.summary
    if mountpoint_left:
        assert f"{mountpoint} was a mount point at the last scrub and is not one now (not mounted?)" in result.summary
        assert os.listdir(mountpoint) == []  # nothing made on the root filesystem
    else:
        assert f"DATABASE {mountpoint}/docs-parity is missing or empty (not mounted?)" in result.summary
        assert not mountpoint.exists()
        mountpoint.mkdir()
    mount_again(image, mountpoint)
    assert snapshot(Path(job.database)) == before
    assert Scrub(job).run().status == "good"


def test_database_that_is_a_mount_point_is_not_used_unmounted(tmp_path, disk):
    image, mountpoint = disk
    directory = tmp_path / "data"
    populate(directory, 4)
    job = job_for(directory, mountpoint)
    settle()
    assert Scrub(job).run().stats["new"] == 4
    unmount(mountpoint)  # an empty directory where DATABASE was
    result = Scrub(job).run()
    assert (result.skipped, result.exit_code) == (True, exits.SKIPPED), result.summary
    assert f"{mountpoint} was a mount point at the last scrub" in result.summary
    assert os.listdir(mountpoint) == []
    mount_again(image, mountpoint)
    assert Scrub(job).run().status == "good"


def test_removals_beyond_max_delete_wait_for_force(tmp_path):
    """Removals past max_delete wait for --force; what is approved goes, and the file left
    keeps a set of its own, made again without the files that went."""
    directory = tmp_path / "data"
    contents = populate(directory, 10)
    job = job_for(directory, directory / ".pardatabase")
    settle()
    Scrub(job).run()
    before = snapshot(Path(job.database))
    for path in list(contents)[:6]:  # 6 of 10: more than the default half
        path.unlink()
    held = Scrub(job).run()
    assert (held.skipped, held.exit_code, held.stats["removed"]) == (True, exits.SKIPPED, 0), held.summary
    assert "6 of 10 protected files are gone, more than max_delete allows (5" in held.summary
    assert "--force" in held.summary
    assert snapshot(Path(job.database)) == before
    assert Scrub(job_for(directory, directory / ".pardatabase", max_delete="60%")).run().stats["removed"] == 6
    for path in list(contents)[6:9]:  # 3 of the 4 left
        path.unlink()
    assert Scrub(job).run().skipped
    forced = Scrub(job, force=True).run()
    assert (forced.skipped, forced.stats["removed"]) == (False, 3)
    kept = set_of(job, "f9.bin")  # the set the last file is left in, and nothing else
    assert kept is not None and members(job, kept) == {"f9.bin"}
    assert all_parity_files(job) == set_files(job, kept)
    assert stock_par2_verifies(job, "f9.bin")


# ---- a lost or damaged catalog ------------------------------------------------------------


def catalog(job: ScrubJob) -> Path:
    return Path(job.database) / ".nasbox-scrub" / "catalog.sqlite"


def delete_catalog(job: ScrubJob) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog(job)}{suffix}").unlink(missing_ok=True)


def test_lost_catalog_then_corruption_is_repaired_not_accepted(tmp_path):
    directory = tmp_path / "data"
    with loop_mount(directory):
        contents = populate(directory / "docs", 6, size=100_000)
        job = job_for(directory, directory / ".pardatabase")
        settle()
        Scrub(job).run()
        parity = {p: p.read_bytes() for p in Path(job.database).rglob("*.par2")}
        delete_catalog(job)
        rot(directory / "docs" / "f3.bin", [5000])
        result = Scrub(job).run()
        assert (result.stats["new"], result.stats["updated"], result.stats["repaired"]) == (0, 0, 1), result.summary
        assert result.stats["verified"] == 6 and result.status == "warning"
        assert any("recovered from the parity files" in d for d in result.details)
        assert all(path.read_bytes() == data for path, data in contents.items())
        assert all(p.read_bytes() == data for p, data in parity.items())  # the good parity was kept
        assert Scrub(job).run().status == "good"


@pytest.mark.parametrize("size", [50_000, 1_200_000], ids=["shared-set", "own-set"])
def test_entry_missing_from_the_catalog_is_checked_against_its_parity(tmp_path, size):
    """A row lost while its set is in place (shared with files that kept theirs, or its own,
    which no row then names) is recovered from the set before anything else."""
    directory = tmp_path / "data"
    with loop_mount(directory):
        contents = populate(directory, 3, size=size)
        job = job_for(directory, directory / ".pardatabase")
        settle()
        Scrub(job).run()
        db = sqlite3.connect(catalog(job))
        db.execute("DELETE FROM files WHERE name = ?", (b"f1.bin",))
        db.commit()
        db.close()
        rot(directory / "f1.bin", [100])
        result = Scrub(job).run()
        assert (result.stats["new"], result.stats["repaired"]) == (0, 1), result.summary
        assert any("1 entries were missing from the catalog" in d for d in result.details), result.details
        assert (directory / "f1.bin").read_bytes() == contents[directory / "f1.bin"]
        assert stock_par2_verifies(job, "f1.bin")
        assert Scrub(job).run().status == "good"


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_catalog_is_set_aside_and_rebuilt(tmp_path, damage):
    directory = tmp_path / "data"
    with loop_mount(directory):
        contents = populate(directory, 4, size=30_000)
        job = job_for(directory, directory / ".pardatabase")
        settle()
        Scrub(job).run()
        if damage == "truncated":
            os.truncate(catalog(job), 100)
        else:
            catalog(job).write_bytes(os.urandom(8192))
        result = Scrub(job).run()
        assert (result.status, result.stats["verified"], result.stats["new"]) == ("warning", 4, 0), result.summary
        assert any(
            "the catalog was damaged" in d and "set aside as catalog.sqlite.damaged-" in d for d in result.details
        ), result.details
        assert len(list(catalog(job).parent.glob("catalog.sqlite.damaged-*"))) == 1
        rot(directory / "f2.bin", [7])
        later = Scrub(job).run()
        assert (later.status, later.stats["repaired"]) == ("warning", 1), later.summary
        assert all(path.read_bytes() == data for path, data in contents.items())
        assert Scrub(job).run().status == "good"


def test_lost_catalog_and_an_edit_made_since_keeps_the_edit(tmp_path):
    directory = tmp_path / "data"
    populate(directory, 2, size=40_000)
    job = job_for(directory, directory / ".pardatabase")
    settle()
    Scrub(job).run()
    delete_catalog(job)
    edited = write(directory / "f0.bin", 40_000, seed=99)  # same size, old mtime set on purpose
    result = Scrub(job).run()  # its ctime is newer than its parity: an edit
    assert (result.stats["updated"], result.stats["repaired"], result.status) == (1, 0, "warning"), result.details
    assert any("f0.bin: differs from its parity set" in d for d in result.details)
    assert (directory / "f0.bin").read_bytes() == edited
    assert stock_par2_verifies(job, "f0.bin")


# ---- edits that keep size and mtime ---------------------------------------------------------


def test_edit_through_a_memory_map_with_mtime_set_back_is_kept(tmp_path):
    directory = tmp_path / "data"
    with loop_mount(directory):
        path = directory / "db.bin"
        write(path, 100_000, seed=1)
        job = job_for(directory, directory / ".pardatabase")
        settle()
        Scrub(job).run()
        recorded = path.stat()
        with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as mapped:
            mapped[1000:1004] = b"EDIT"
            mapped.flush()  # msync
        os.utime(path, ns=(recorded.st_atime_ns, recorded.st_mtime_ns))  # as a lazy mtime update leaves it
        assert path.stat().st_mtime_ns == recorded.st_mtime_ns and path.stat().st_ctime_ns != recorded.st_ctime_ns
        edited = path.read_bytes()
        result = Scrub(job).run()
        assert (result.stats["updated"], result.stats["repaired"]) == (1, 0), (result.summary, result.details)
        assert path.read_bytes() == edited
        assert stock_par2_verifies(job, "db.bin")


def next_second() -> None:
    time.sleep(1.02 - time.time() % 1)


def test_edit_in_the_same_second_on_whole_second_timestamps_is_kept(tmp_path):
    directory = tmp_path / "data"
    with loop_mount(directory, mkfs_options=("-I", "128")):  # 128-byte inodes: whole-second times
        path = directory / "notes.txt"
        job = job_for(directory, directory / ".pardatabase")
        next_second()
        path.write_bytes(b"first draft " * 1000)
        Scrub(job).run()
        path.write_bytes(b"FIRST" + (b"first draft " * 1000)[5:])  # same size, same second as the scrub
        edited = path.read_bytes()
        result = Scrub(job).run()
        assert (result.stats["updated"], result.stats["repaired"]) == (1, 0), (result.summary, result.details)
        assert path.read_bytes() == edited
        assert stock_par2_verifies(job, "notes.txt")


def test_edit_while_its_parity_is_made_in_the_same_second_is_kept(tmp_path):
    directory = tmp_path / "data"
    with loop_mount(directory, mkfs_options=("-I", "128")):
        path = directory / "notes.txt"
        job = job_for(directory, directory / ".pardatabase")
        times: list[int] = []

        class EditingScrub(Scrub):
            def _apply(self, catalog, done):
                super()._apply(catalog, done)
                made = isinstance(done, SetMade) and any(c.reason == "new" for _, c in done.members)
                if made:  # parity made, then an edit
                    path.write_bytes(b"FIRST" + (b"first draft " * 1000)[5:])
                    times.append(path.stat().st_mtime_ns)

        next_second()
        path.write_bytes(b"first draft " * 1000)
        first = path.stat().st_mtime_ns
        EditingScrub(job).run()
        assert times == [first], "the edit must fall in the same second for this test"
        edited = path.read_bytes()
        result = Scrub(job).run()
        assert (result.stats["updated"], result.stats["repaired"]) == (1, 0), (result.summary, result.details)
        assert path.read_bytes() == edited


def test_catalog_of_an_older_version_is_migrated(tmp_path):
    directory = tmp_path / "data"
    with loop_mount(directory):
        contents = populate(directory, 3, size=30_000)
        job = job_for(directory, directory / ".pardatabase")
        settle()
        Scrub(job).run()
        db = sqlite3.connect(catalog(job))
        for column in ("ctime_ns", "settled"):  # rows that never recorded a ctime
            db.execute(f"ALTER TABLE files DROP COLUMN {column}")
        db.commit()
        db.close()
        first = Scrub(job, update_only=True).run()  # each file hashed once, its ctime recorded
        assert first.status == "good", first.summary
        rot(directory / "f0.bin", [10])
        result = Scrub(job).run()
        assert result.stats["repaired"] == 1, result.summary
        assert all(path.read_bytes() == data for path, data in contents.items())


# ---- DATABASE settings that would destroy data ------------------------------------------


def test_database_holding_user_files_is_refused_at_run_time(tmp_path):
    directory = tmp_path / "data"
    populate(directory, 2)
    reports = directory / "reports"
    mine = write(reports / "q1.pdf", 5000, seed=7)
    result = Scrub(job_for(directory, reports)).run()
    assert (result.status, result.exit_code) == ("error", 1)
    assert f"{reports} holds files nasbox did not write (q1.pdf)" in result.summary
    assert os.listdir(reports) == ["q1.pdf"] and (reports / "q1.pdf").read_bytes() == mine


def test_database_that_is_the_directory_through_a_symlink_is_refused_at_run_time(tmp_path):
    directory = tmp_path / "data"
    populate(directory, 2)
    os.symlink(directory, tmp_path / "alias")
    result = Scrub(job_for(directory, tmp_path / "alias")).run()
    assert (result.status, result.exit_code) == ("error", 1), result.summary
    assert sorted(os.listdir(directory)) == ["f0.bin", "f1.bin"]


def test_user_folder_named_like_nasbox_private_folder_is_protected(tmp_path):
    """Parity lives only in DATABASE's own private folder: a user's folder of that name is data."""
    directory = tmp_path / "data"
    with loop_mount(directory):
        notes = write(directory / "project" / ".nasbox-scrub" / "notes.txt", 3000, seed=1)
        write(directory / "project" / "plan.txt", 3000, seed=2)
        job = job_for(directory, tmp_path / "parity")
        settle()
        result = Scrub(job).run()
        assert result.stats["new"] == 2, result.summary
        assert stock_par2_verifies(job, "project/.nasbox-scrub/notes.txt")
        rot(directory / "project" / ".nasbox-scrub" / "notes.txt", [10])
        repaired = Scrub(job).run()
        assert repaired.stats["repaired"] == 1, repaired.summary
        assert (directory / "project" / ".nasbox-scrub" / "notes.txt").read_bytes() == notes


def test_other_jobs_databases_are_skipped_by_identity(tmp_path):
    directory = tmp_path / "data"
    write(directory / "a.bin", 3000, seed=1)
    inner = job_for(directory / "photos", tmp_path / "data" / "photo-parity")
    write(directory / "photos" / "cat.jpg", 3000, seed=2)
    Scrub(inner).run()
    outer = job_for(directory, tmp_path / "parity")
    result = Scrub(outer, databases=[outer.database, inner.database]).run()
    assert result.stats["new"] == 2, result.summary  # a.bin and photos/cat.jpg, not the inner parity


# ---- from the command line --------------------------------------------------------------


def nasbox_scrub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasbox", "scrub", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NASBOX_CONFIG": "/dev/null", **env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def test_command_line_exits_75_for_an_unmounted_disk_and_force_passes_the_removal_limit(tmp_path, disk):
    image, mountpoint = disk
    contents = populate(mountpoint, 10)
    env = {"SCRUB_DOCS": f"{mountpoint} .pardatabase 5% weekly"}
    assert nasbox_scrub("--now", env=env).returncode == 0
    unmount(mountpoint)
    skipped = nasbox_scrub("--now", env=env)
    assert skipped.returncode == exits.SKIPPED and "not mounted?" in skipped.stdout, skipped.stdout
    assert os.listdir(mountpoint) == []
    mount_again(image, mountpoint)
    for path in list(contents)[:6]:
        path.unlink()
    held = nasbox_scrub("docs", "--now", env=env)
    assert held.returncode == exits.SKIPPED and "more than max_delete allows" in held.stdout, held.stdout
    forced = nasbox_scrub("docs", "--now", "--force", env=env)
    assert forced.returncode == 0 and "6 removed" in forced.stdout, forced.stdout


def test_lost_catalog_and_a_size_changed_below_the_filesystem_keeps_file_and_parity(tmp_path, disk):
    image, mountpoint = disk
    contents = populate(mountpoint, 3, size=40_000)
    job = job_for(mountpoint, tmp_path / "parity")
    settle()
    Scrub(job).run()
    parity = {p: p.read_bytes() for p in Path(job.database).rglob("*.par2")}
    delete_catalog(job)
    unmount(mountpoint)  # the inode's size shrinks as a damaged disk can leave it; its times stay
    subprocess.run(["debugfs", "-w", "-R", "sif /f1.bin size 30000", str(image)], check=True, capture_output=True)
    mount_again(image, mountpoint)
    truncated = (mountpoint / "f1.bin").read_bytes()
    assert len(truncated) == 30_000
    result = Scrub(job).run()
    assert (result.status, result.stats["unrepairable"], result.stats["updated"]) == ("error", 1, 0), result.summary
    assert any("f1.bin: its size (30000) differs from the 40000 bytes its parity records" in d for d in result.details)
    assert (mountpoint / "f1.bin").read_bytes() == truncated
    assert all(p.read_bytes() == data for p, data in parity.items())
    assert all(path.read_bytes() == data for path, data in contents.items() if path.name != "f1.bin")


def test_force_removes_only_as_many_parity_sets_as_the_hold_counted(tmp_path):
    """Held because 6 of 10 files are gone; before the admin, having checked, runs --force,
    the disk holding the rest is not mounted: --force approves the 6 it was shown, not the
    removal of the parity of the files on the missing disk. Held anew with the new count,
    which the next --force approves."""
    directory = tmp_path / "data"
    with loop_mount(directory / "photos", image=tmp_path / "photos.img") as image:
        contents = populate(directory, 6) | populate(directory / "photos", 4, first_seed=100)
        job = job_for(directory, tmp_path / "db")
        settle()
        Scrub(job).run()
        for path in list(contents)[:6]:
            path.unlink()
        held = Scrub(job).run()
        assert held.skipped and "6 of 10 protected files are gone" in held.summary, held.summary
        before = snapshot(Path(job.database))
        unmount(directory / "photos")  # the admin's --force comes later
        forced = Scrub(job, force=True).run()  # --force passes the mount guard: the disk is gone for good?
        assert (forced.skipped, forced.stats["removed"]) == (True, 0), forced.summary
        assert "10 of 10 protected files are gone" in forced.summary and "counted 6" in forced.summary
        assert snapshot(Path(job.database)) == before
        mount_again(image, directory / "photos")
        again = Scrub(job, force=True).run()
        assert (again.skipped, again.stats["removed"]) == (False, 6), again.summary
        assert all(stock_par2_verifies(job, f"photos/f{i}.bin") for i in range(4))


# ---- a set made again, and sets a killed run left behind ----------------------------------


def described_by(index: Path) -> dict[str, bytes]:
    """{file: MD5} as a set's index records them."""
    found = par2format.descriptions(par2format.read_packets(index))
    return {os.fsdecode(name): d.md5 for name, d in found.items()}


def test_lost_catalog_and_two_sets_describing_a_file_takes_the_newer(tmp_path):
    """A run killed after it put a file's new set in place and before it removed the old one
    leaves two sets describing that file; with the catalog lost too, the newer set is the
    file's: the edit it protects is kept, and corruption of the edited file is repaired to
    the edit, never to the older content."""
    directory = tmp_path / "data"
    with loop_mount(directory):
        contents = populate(directory, 3, size=30_000)
        job = job_for(directory, tmp_path / "db")
        settle()
        Scrub(job).run()
        older = set_of(job, "f1.bin")
        assert older is not None
        kept = {p: p.read_bytes() for p in set_files(job, older)}
        stamps = {p: p.stat() for p in kept}
        edited = write(directory / "f1.bin", 30_000, seed=99)
        os.utime(directory / "f1.bin")  # a real edit: a new mtime
        settle()
        assert Scrub(job).run().stats["updated"] == 1
        newer = set_of(job, "f1.bin")
        assert newer is not None and newer != older and not set_files(job, older)[0].exists()
        for path, data in kept.items():  # the older set back, as the killed run left it
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.utime(path, ns=(stamps[path].st_atime_ns, stamps[path].st_mtime_ns))
        assert described_by(set_files(job, older)[0])["f1.bin"] != described_by(set_files(job, newer)[0])["f1.bin"]
        delete_catalog(job)
        rot(directory / "f1.bin", [100])
        result = Scrub(job).run()
        assert (result.stats["repaired"], result.stats["updated"], result.stats["new"]) == (1, 0, 0), result.summary
        assert (directory / "f1.bin").read_bytes() == edited
        assert all(path.read_bytes() == data for path, data in contents.items() if path.name != "f1.bin")
        assert older not in all_sets(job)  # no row names it: removed
        assert all(stock_par2_verifies(job, f"f{i}.bin") for i in range(3))


@pytest.mark.parametrize("edit", ["in place", "whole file"])
def test_corrupt_member_found_while_its_set_is_made_again_is_repaired_not_blessed(tmp_path, edit):
    """A neighbour's edit makes its set be made again from the files still in it; one of
    them rotted since it was last read (a parity update reads no unchanged file): par2
    reads the damage, which must never enter the new set. It is repaired from the old set
    when the set can still rebuild it (an edit in place spends one slice of its recovery);
    when the edit rewrote more than the recovery left (the whole file), it is reported
    beyond repair and keeps the old set, which still describes its recorded content."""
    directory = tmp_path / "data"
    with loop_mount(directory):
        contents = populate(directory, 8, size=30_000)  # one set, 64 slices, 4 of recovery
        job = job_for(directory, tmp_path / "db")
        settle()
        Scrub(job).run()
        first = set_of(job, "f0.bin")
        assert {set_of(job, f"f{i}.bin") for i in range(8)} == {first}
        rot(directory / "f0.bin", [10])
        if edit == "in place":
            with open(directory / "f1.bin", "r+b") as f:
                f.seek(100)
                f.write(b"a record updated in place")
        else:
            write(directory / "f1.bin", 30_000, seed=99)
        os.utime(directory / "f1.bin")
        edited = (directory / "f1.bin").read_bytes()
        settle()
        result = Scrub(job, update_only=True).run()
        assert (directory / "f1.bin").read_bytes() == edited
        assert stock_par2_verifies(job, "f1.bin")
        original = hashlib.md5(contents[directory / "f0.bin"]).digest()
        assert described_by(index_of(job, "f0.bin"))["f0.bin"] == original  # never the damage
        for i in range(2, 8):
            assert (
                described_by(index_of(job, f"f{i}.bin"))[f"f{i}.bin"]
                == hashlib.md5(contents[directory / f"f{i}.bin"]).digest()
            )
            assert stock_par2_verifies(job, f"f{i}.bin")
        if edit == "in place":
            assert (result.stats["repaired"], result.stats["updated"]) == (1, 1), (result.summary, result.details)
            assert (directory / "f0.bin").read_bytes() == contents[directory / "f0.bin"]
            assert stock_par2_verifies(job, "f0.bin")
            assert Scrub(job).run().status == "good"
        else:
            assert (result.stats["unrepairable"], result.stats["updated"]) == (1, 1), (result.summary, result.details)
            assert set_of(job, "f0.bin") == first and set_of(job, "f2.bin") != first
