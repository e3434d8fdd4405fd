"""The space guard of sync jobs, and a destination that fills up anyway, on a real 16 MiB
ext4 image with real rsync."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nasbox import space
from nasbox.config import load_config
from nasbox.progress import human_bytes
from nasbox.sync import rsync_cmds
from nasbox.sync.engine import Sync
from tests.support.files import snapshot
from tests.support.rawdisk import fill, loop_mount

pytestmark = pytest.mark.host

MIB = 1 << 20


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """The backup disk: 16 MiB of ext4 without a root reserve (so free space is what root may
    use too), about 13 MiB of it free."""
    with loop_mount(tmp_path / "backup", size_mb=16, mkfs_options=("-m", "0")):
        yield tmp_path / "backup"


def config_for(tmp_path: Path, disk: Path, **options: object):
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    item = {"source": str(source), "destination": str(disk / "docs"), "schedule": "daily", **options}
    (tmp_path / "nasbox.yaml").write_text(yaml.safe_dump({"sync": {"docs": item}}))
    return load_config({"NASBOX_CONFIG": str(tmp_path / "nasbox.yaml")})


def run(config, tmp_path: Path):
    return Sync(config.sync["docs"], config, state_dir=tmp_path / "state").run()


def write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))


def test_a_first_copy_that_would_not_fit_copies_nothing(tmp_path: Path, disk: Path) -> None:
    config = config_for(tmp_path, disk)
    for name in ("a", "b", "c"):
        write(tmp_path / "source" / name, 5 * MIB)  # 15 MiB onto 13 MiB free
    result = run(config, tmp_path)
    assert (result.status, result.exit_code) == ("error", 1)
    assert result.summary.startswith(f"skipped: not enough space for {disk / 'docs'}: it needs about 15.0 MiB, ")
    keep = human_bytes(space.usage(str(disk)).size * 5 // 100)  # 5% of the disk: less than 10 GiB
    assert f"is free, and min_free (the smaller of 5% and 10.0 GiB) keeps {keep} free" in result.summary
    assert result.summary.endswith("nothing was copied or deleted")
    assert snapshot(disk / "docs") == {}


def test_an_update_that_would_not_fit_changes_nothing(tmp_path: Path, disk: Path) -> None:
    """The preview's bytes decide; nothing is copied, and nothing deleted either."""
    config = config_for(tmp_path, disk, min_free="2M")
    write(tmp_path / "source" / "old", 2 * MIB)
    write(tmp_path / "source" / "keep", 2 * MIB)
    assert run(config, tmp_path).status == "good"
    before = snapshot(disk / "docs")
    (tmp_path / "source" / "old").unlink()  # a deletion rsync would make
    write(tmp_path / "source" / "keep", 2 * MIB)  # changed
    os.utime(tmp_path / "source" / "keep", (1e9, 1e9))  # whatever the clock's tick: another mtime
    write(tmp_path / "source" / "big", 8 * MIB)  # 10 MiB to write, 9 free, 2 to keep
    result = run(config, tmp_path)
    assert (result.status, result.exit_code) == ("error", 1)
    assert "it needs about 10.0 MiB" in result.summary and "min_free (2.0 MiB) keeps 2.0 MiB free" in result.summary
    assert snapshot(disk / "docs") == before
    dry = Sync(config.sync["docs"], config, state_dir=tmp_path / "state", dry_run=True).run()
    assert dry.summary.startswith("would be skipped: not enough space for ") and dry.status == "warning"
    assert any("big" in line for line in dry.details)
    (tmp_path / "source" / "big").unlink()  # what fits goes
    assert run(config, tmp_path).status == "good"
    assert snapshot(disk / "docs") == snapshot(tmp_path / "source")


def test_min_free_as_a_percentage(tmp_path: Path, disk: Path) -> None:
    write(tmp_path / "source" / "a", 4 * MIB)
    held_back = run(config_for(tmp_path, disk, min_free="80%"), tmp_path)  # 13 free - 4 < 80% of 14
    assert held_back.status == "error" and "min_free (80%) keeps 11." in held_back.summary
    assert run(config_for(tmp_path, disk, min_free="50%"), tmp_path).status == "good"


def test_a_destination_that_fills_during_the_copy_is_completed_by_the_next_run(
    tmp_path: Path, disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard passes, then another writer takes the space: rsync stops on ENOSPC. No file
    of the destination is half-written (a complete old copy, or none), the error says what
    happened, and the next run, with space again, completes the copy."""
    config = config_for(tmp_path, disk, min_free=0)
    write(tmp_path / "source" / "keep", 1 * MIB)
    assert run(config, tmp_path).status == "good"
    old = snapshot(disk / "docs")
    write(tmp_path / "source" / "keep", 1 * MIB)  # changed: its old copy must stay whole until replaced
    os.utime(tmp_path / "source" / "keep", (1e9, 1e9))
    for name in ("a", "b"):
        write(tmp_path / "source" / name, 3 * MIB)
    write(tmp_path / "source" / "sub" / "d", 1 * MIB)  # 8 MiB to write, about 12 MiB free

    real = space.shortfall

    def guard_then_another_writer(*args: object, **kwargs: object) -> str | None:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        fill(disk, leave=4 * MIB)
        return found

    monkeypatch.setattr(space, "shortfall", guard_then_another_writer)
    result = run(config, tmp_path)
    assert (result.status, result.exit_code) == ("error", 1)
    assert result.summary.startswith("the destination's filesystem is full: ")
    assert "No space left on device" in result.summary
    now = snapshot(disk / "docs")
    source = snapshot(tmp_path / "source")
    for name, content in now.items():
        if name.startswith(rsync_cmds.PARTIAL_DIR + "/"):
            continue  # what was cut short waits here, out of sight, for the next run
        assert content in (old.get(name), source.get(name)), f"{name} is half-written"
        assert not os.path.basename(name).startswith("."), f"rsync's temporary file {name} was left"
    assert now != source

    monkeypatch.setattr(space, "shortfall", real)
    (disk / "filler").unlink()  # space again
    again = run(config, tmp_path)
    assert again.status == "good", again.summary
    assert snapshot(disk / "docs") == source
    assert not (disk / "docs" / rsync_cmds.PARTIAL_DIR).exists()
