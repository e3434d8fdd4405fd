"""Files whose times a user or a device set, against real par2 on loop-mounted ext4: times
that say nothing of the content's last change never cost a file its protection."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nasbox.scrub.engine import Scrub
from tests.host.test_scrub_integrity import delete_catalog, job_for, settle, stock_par2_verifies, write
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host

FUTURE_NS = 1_900_000_000_000_000_000  # 2030: a camera or an archive with a wrong clock


@pytest.mark.parametrize("catalog_lost", [False, True], ids=["catalog", "catalog-lost"])
@pytest.mark.parametrize("mkfs_options", [(), ("-I", "128")], ids=["ns-times", "whole-second-times"])
def test_corruption_in_a_file_with_an_mtime_in_the_future_is_repaired(tmp_path: Path, mkfs_options: tuple[str, ...],
                                                                      catalog_lost: bool) -> None:
    """A write stamps mtime with the clock's time, so an edit of a file whose mtime lies in
    the future changes that mtime: such a file's recording is trusted once its ctime is old
    enough, and a mismatch under it is corruption, repaired, not an edit that hands the
    damage new parity."""
    with loop_mount(tmp_path / "disk", mkfs_options=mkfs_options):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        original = write(directory / "photo.jpg", 200_000, seed=3)
        path = directory / "photo.jpg"
        os.utime(path, ns=(FUTURE_NS, FUTURE_NS))
        time.sleep(4.1 if mkfs_options else 0.2)  # its ctime older than a timestamp tick, and a second
        job = job_for(directory, database)
        assert Scrub(job).run().status == "info"  # parity made
        rot(path, [1000])
        if catalog_lost:
            delete_catalog(job)
        result = Scrub(job).run()
        assert path.read_bytes() == original, result.summary
        assert result.stats["repaired"] == 1, result.summary
        assert stock_par2_verifies(job, "photo.jpg")


def test_edit_of_a_file_with_an_mtime_in_the_future_is_kept(tmp_path: Path) -> None:
    with loop_mount(tmp_path / "disk"):
        directory, database = tmp_path / "disk" / "data", tmp_path / "disk" / "db"
        write(directory / "photo.jpg", 200_000, seed=3)
        path = directory / "photo.jpg"
        os.utime(path, ns=(FUTURE_NS, FUTURE_NS))
        settle()
        job = job_for(directory, database)
        assert Scrub(job).run().status == "info"  # parity made
        with open(path, "r+b") as f:
            f.write(b"an edit")
        edited = path.read_bytes()
        result = Scrub(job).run()
        assert path.read_bytes() == edited, result.summary
        assert result.stats["updated"] == 1, result.summary
        assert stock_par2_verifies(job, "photo.jpg")
