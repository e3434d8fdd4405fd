"""The space guard of parity creation, and a DATABASE disk that fills up anyway: real par2,
DIRECTORY and DATABASE each on an ext4 image of their own (DATABASE's 16 MiB, without a
root reserve, so that free space is what root may use too)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nasbox import space
from nasbox.scrub.catalog import Catalog
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
from tests.support.parity import all_sets, catalog, private, set_of
from tests.support.rawdisk import fill, loop_mount, rot

pytestmark = pytest.mark.host

MIB = 1 << 20


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    with loop_mount(tmp_path / "data", size_mb=64), loop_mount(tmp_path / "dbdisk", size_mb=16,
                                                                mkfs_options=("-m", "0")):
        yield tmp_path / "data", tmp_path / "dbdisk"


def make_job(disks: tuple[Path, Path], **options: object) -> ScrubJob:
    data, dbdisk = disks
    return ScrubJob(name="t", directory=str(data), database=str(dbdisk / "parity"),
                    redundancy=options.pop("redundancy", 50), schedule="weekly", **options)  # type: ignore[arg-type]


def write(path: Path, size: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    content = os.urandom(size)
    path.write_bytes(content)
    return content


def recorded_sets(job: ScrubJob) -> set[str]:
    db = catalog(job)
    try:
        return {row[0].decode() for row in db.execute("SELECT id FROM sets")}
    finally:
        db.close()


def assert_nothing_half_made(job: ScrubJob) -> None:
    """Every set on disk is one the catalog records, and no staging is left."""
    assert all_sets(job) == recorded_sets(job)
    assert not list((private(job) / "staging").iterdir())


def test_parity_that_would_not_fit_is_not_made_and_verification_still_runs(
    disks: tuple[Path, Path]
) -> None:
    """A big new file whose parity would not leave min_free in DATABASE gets none (an error
    naming DATABASE, the estimate, what is free and min_free); the other files are verified,
    and a corrupt one is repaired, in the same run. Once there is room it gets its parity."""
    data, dbdisk = disks
    job = make_job(disks, min_free="1M")
    small = {f"docs/{i}.txt": write(data / f"docs/{i}.txt", 40_000) for i in range(20)}
    assert Scrub(job).run().status == "info"
    crowd = fill(dbdisk, leave=7 * MIB)
    big = write(data / "big.bin", 8 * MIB)  # 4 MiB of parity at 50%: fits in 7 MiB free, 1 MiB kept
    big2 = write(data / "video" / "big2.bin", 14 * MIB)  # 7 MiB of parity: never, before or after it
    rot(data / "docs/3.txt", [100])

    result = Scrub(job).run()

    assert (result.status, result.exit_code) == ("error", 1)
    assert result.summary.startswith("parity of 1 files (14.0 MiB) was not made: not enough space for "
                                     f"{job.database}: it needs about ")
    assert "and min_free (1.0 MiB) keeps 1.0 MiB free; they keep the parity they had" in result.summary
    assert "20 verified, 1 repaired" in result.summary
    assert (data / "docs/3.txt").read_bytes() == small["docs/3.txt"]
    assert set_of(job, "video/big2.bin") is None and set_of(job, "big.bin") is not None
    assert_nothing_half_made(job)
    assert space.usage(job.database).free >= 1 * MIB

    crowd.unlink()
    after = Scrub(job).run()
    assert after.status == "info" and "1 new" in after.summary
    assert set_of(job, "video/big2.bin") is not None
    assert Scrub(job).run().status == "good"
    assert (data / "big.bin").read_bytes() == big and (data / "video/big2.bin").read_bytes() == big2


def test_an_edited_file_without_room_keeps_its_old_parity(disks: tuple[Path, Path]) -> None:
    """An edit that grows a file beyond what DATABASE has room for: the file keeps its row
    and set until there is room, the run says so every time, and nothing else is lost."""
    data, dbdisk = disks
    job = make_job(disks, min_free="2M")
    write(data / "grows.bin", 1 * MIB)
    others = {f"o{i}": write(data / f"o{i}", 100_000) for i in range(5)}
    assert Scrub(job).run().status == "info"
    old_set = set_of(job, "grows.bin")
    fill(dbdisk, leave=5 * MIB)
    write(data / "grows.bin", 8 * MIB)
    for _ in range(2):  # not regrouped, not counted twice, and the same again next time
        result = Scrub(job).run()
        assert result.status == "error" and result.summary.startswith("parity of 1 files (8.0 MiB) was not made")
        assert set_of(job, "grows.bin") == old_set
        assert_nothing_half_made(job)
    assert all(set_of(job, name) for name in others)


def test_parity_cut_short_by_a_full_disk_is_not_recorded_and_the_next_run_completes(
    disks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard passes, then another writer takes DATABASE's space: par2 fails on ENOSPC.
    No set is recorded for the file and no staged file is left; once there is space again
    the next run makes its parity, and a full scrub verifies it."""
    data, dbdisk = disks
    job = make_job(disks, min_free=0)
    content = write(data / "big.bin", 10 * MIB)
    real = space.shortfall

    def guard_then_another_writer(*args: object, **kwargs: object) -> str | None:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        fill(dbdisk, leave=1 * MIB)
        return found

    monkeypatch.setattr(space, "shortfall", guard_then_another_writer)
    result = Scrub(job).run()
    assert result.status == "error"
    assert any("big.bin: par2 create exited" in line and "No space left on device" in line
               for line in result.details), result.details
    assert set_of(job, "big.bin") is None
    assert_nothing_half_made(job)

    monkeypatch.setattr(space, "shortfall", real)
    (dbdisk / "filler").unlink()
    assert Scrub(job, update_only=True).run().status == "info"
    assert set_of(job, "big.bin") is not None
    final = Scrub(job).run()
    assert final.status == "good" and "1 verified" in final.summary
    assert (data / "big.bin").read_bytes() == content


def test_a_catalog_that_cannot_be_written_records_no_set_and_the_next_run_completes(
    disks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills completely between a set's files being put in place and the catalog
    recording them: the run is an error that says so and records nothing; the next run, with
    space, finds the set whole (its index goes in place last), checks the file against it
    and records it, leaving no set unrecorded; a full scrub then verifies everything."""
    data, dbdisk = disks
    job = make_job(disks, min_free=0)
    write(data / "first.bin", 2 * MIB)
    assert Scrub(job).run().status == "info"
    write(data / "a.bin", 2 * MIB)
    real_add_set = Catalog.add_set

    def fill_then_record(self: Catalog, *args: object) -> None:
        fill(dbdisk, leave=0)
        real_add_set(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Catalog, "add_set", fill_then_record)
    result = Scrub(job).run()
    assert result.status == "error"
    assert result.summary.startswith(f"the filesystem of DATABASE {job.database} is full: the catalog could not "
                                     "be written")

    monkeypatch.setattr(Catalog, "add_set", real_add_set)
    (dbdisk / "filler").unlink()  # space again (also for sqlite in this test process)
    assert len(all_sets(job)) == 2 and len(recorded_sets(job)) == 1 and set_of(job, "a.bin") is None
    assert Scrub(job).run().status in ("info", "warning")
    assert set_of(job, "a.bin") is not None
    assert_nothing_half_made(job)
    final = Scrub(job).run()
    assert final.status == "good" and "2 verified" in final.summary


@pytest.mark.parametrize("leave", [0, 24 * 1024], ids=["full", "24KiB-free"])
def test_a_scrub_of_a_full_database_disk_never_crashes(tmp_path: Path, disks: tuple[Path, Path], leave: int) -> None:
    """`scrub --now` with DATABASE's disk full to the last block is an error that says so,
    and with a few KiB free (enough for the catalog) a good run. sqlite's shared-memory
    index on that disk made the first fail with "disk I/O error" and killed the second
    (SIGBUS: a page of the index mapped where the 1 KiB-block disk had no block left)."""
    data, dbdisk = disks
    for i in range(30):
        write(data / f"f{i}", 50_000)
    (tmp_path / "nasbox.yaml").write_text(yaml.safe_dump({"scrub": {"t": {
        "directory": str(data), "database": str(dbdisk / "parity"), "redundancy": "10%", "schedule": "weekly"}}}))
    env = {**os.environ, "NASBOX_CONFIG": str(tmp_path / "nasbox.yaml")}

    def scrub_now() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nasbox", "scrub", "t", "--now"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)

    assert scrub_now().returncode == 0
    fill(dbdisk, leave=leave)  # each file verified again is a row to write
    run = scrub_now()
    if leave:
        assert run.returncode == 0 and "scrub t: good: 30 files" in run.stdout, run.stdout[-2000:]
    else:
        assert run.returncode == 1, run.stdout[-2000:]
        assert "scrub t: error: the filesystem of DATABASE" in run.stdout and "is full" in run.stdout
    (dbdisk / "filler").unlink()
    again = scrub_now()
    assert again.returncode == 0, again.stdout[-2000:]
    assert "scrub t: good: 30 files" in again.stdout
