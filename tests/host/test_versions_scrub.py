"""A scrub of a destination that keeps versions: no parity is made for the versions, and a
repaired file leaves no version holding its damaged bytes (a linked version shares the
repaired inode; a copy of its own, as a btrfs snapshot holds, is repaired too). Damage is
done below the filesystem, as a failing disk does it."""
from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from nasbox.config import load_config
from nasbox.kinds import KINDS
from nasbox.scrub.engine import Scrub
from nasbox.sync.engine import Sync
from nasbox.versions.store import VERSIONS_DIR, Versions
from tests.support.parity import catalog, set_of
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host


def configure(tmp_path: Path, backup: Path):
    source, destination = tmp_path / "docs", backup / "docs"
    source.mkdir(exist_ok=True)
    config_file = tmp_path / "nasbox.yaml"
    config_file.write_text(yaml.safe_dump({
        "sync": {"docs": {"source": str(source), "destination": str(destination), "schedule": "daily",
                          "versions": {"keep": {"last": 10}}}},
        "scrub": {"backup": {"directory": str(destination), "database": str(tmp_path / "parity"),
                             "redundancy": "10%", "schedule": "weekly"}},
    }))
    (tmp_path / "parity").mkdir(exist_ok=True)
    return load_config({"NASBOX_CONFIG": str(config_file)}), source, destination


def sync(config, tmp_path: Path, moment: datetime):
    result = Sync(config.sync["docs"], config, state_dir=tmp_path / "state", clock=lambda: moment).run()
    assert result.status == "good", result.summary
    return result


def scrub(config):
    job = config.scrub["backup"]
    return KINDS["scrub"].runner(config, job, argparse.Namespace(update_only=False, force=False))()


def write(path: Path, content: bytes) -> None:
    """A file as a backup holds most: written some time ago (a file written within the
    timestamp tick of its parity proves nothing about its content yet)."""
    path.write_bytes(content)
    os.utime(path, (1_700_000_000, 1_700_000_000))


def data(seed: int, size: int = 300_000) -> bytes:
    return bytes((i * 31 + seed * 7 + i // 251) % 256 for i in range(size))


@pytest.fixture
def ext4_backup(tmp_path: Path) -> Iterator[Path]:
    with loop_mount(tmp_path / "backup", size_mb=64):
        yield tmp_path / "backup"


@pytest.fixture
def btrfs_backup(tmp_path: Path) -> Iterator[Path]:
    """A btrfs mounted with nodatasum (damage reads back as damaged bytes, not as EIO), the
    destination a subvolume of it."""
    image, mountpoint = tmp_path / "btrfs.img", tmp_path / "backup"
    subprocess.run(["truncate", "-s", "256M", str(image)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", "-d", "single", "-m", "single", str(image)], check=True, capture_output=True)
    mountpoint.mkdir()
    subprocess.run(["mount", "-o", "loop,nodatasum", str(image), str(mountpoint)], check=True)
    try:
        subprocess.run(["btrfs", "-q", "subvolume", "create", str(mountpoint / "docs")], check=True)
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)


def test_the_versions_get_no_parity_of_their_own(tmp_path, ext4_backup):
    config, source, destination = configure(tmp_path, ext4_backup)
    write(source / "a.bin", data(1))
    moment = datetime(2026, 11, 10, tzinfo=UTC)
    sync(config, tmp_path, moment)
    write(source / "b.bin", data(2))
    sync(config, tmp_path, moment + timedelta(hours=1))
    assert len(Versions(str(destination)).all()) == 2
    first = scrub(config)
    assert first.status in ("good", "info"), first.summary
    db = catalog(config.scrub["backup"])
    recorded = {os.fsdecode(os.path.join(d, n)) for d, n in db.execute("SELECT dir, name FROM files")}
    db.close()
    assert recorded == {"a.bin", "b.bin"}


def test_a_repair_leaves_no_version_with_the_damaged_bytes(tmp_path, ext4_backup):
    config, source, destination = configure(tmp_path, ext4_backup)
    good = data(3)
    write(source / "photo.raw", good)
    write(source / "edited.txt", data(4))
    moment = datetime(2026, 11, 11, tzinfo=UTC)
    sync(config, tmp_path, moment)  # version 1 shares photo.raw's inode with the mirror
    write(source / "edited.txt", data(5, 1000))
    sync(config, tmp_path, moment + timedelta(hours=1))  # version 2 too
    assert scrub(config).status == "good"  # parity made
    versions = Versions(str(destination)).all()
    # Version 2 holds a copy of its own, as a snapshot or a file at the link limit does.
    # Made as nasbox makes one, so unlinking the shared inode is vouched for.
    own = Path(versions[1].path) / "photo.raw"
    with Scrub(config.scrub["backup"]).vouching():
        own.unlink()
    own.write_bytes(good)
    os.utime(own, ns=(0, (destination / "photo.raw").stat().st_mtime_ns))
    older = Path(versions[0].path) / "edited.txt"  # an older content: never touched
    rot(destination / "photo.raw", [10, 200_000])
    rot(own, [10, 200_000])
    damaged = own.read_bytes()
    assert damaged != good and (Path(versions[0].path) / "photo.raw").read_bytes() == damaged
    result = scrub(config)
    assert result.stats["repaired"] == 1, (result.summary, result.stats)
    assert (destination / "photo.raw").read_bytes() == good
    for version in versions:
        assert (Path(version.path) / "photo.raw").read_bytes() == good, version.name
    assert own.stat().st_mtime_ns == (destination / "photo.raw").stat().st_mtime_ns
    assert any(f"version {versions[1].name}: its copy of photo.raw was damaged too; repaired" in line
               for line in result.details), result.details
    assert older.read_bytes() == data(4)
    assert sorted(os.listdir(versions[1].path)) == ["edited.txt", "photo.raw"]  # no temporary left


def test_a_btrfs_snapshot_holding_the_damaged_extent_is_repaired_and_stays_read_only(tmp_path, btrfs_backup):
    config, source, destination = configure(tmp_path, btrfs_backup)
    good = data(6)
    write(source / "photo.raw", good)
    moment = datetime(2026, 11, 12, tzinfo=UTC)
    sync(config, tmp_path, moment)
    assert scrub(config).status == "good"
    rot(destination / "photo.raw", [5, 150_000])  # damaged before the next version is taken
    (source / "other.txt").write_text("a change, so that a version is taken")
    sync(config, tmp_path, moment + timedelta(hours=1))
    snapshot = Path(Versions(str(destination)).all()[1].path)
    assert subprocess.run(["btrfs", "property", "get", "-ts", str(snapshot), "ro"], capture_output=True,
                          text=True).stdout.strip() == "ro=true"
    assert (snapshot / "photo.raw").read_bytes() != good  # the snapshot shares the damaged extent
    result = scrub(config)
    assert result.stats["repaired"] == 1, result.details
    assert (destination / "photo.raw").read_bytes() == good
    assert (snapshot / "photo.raw").read_bytes() == good
    assert (Path(Versions(str(destination)).all()[0].path) / "photo.raw").read_bytes() == good
    assert subprocess.run(["btrfs", "property", "get", "-ts", str(snapshot), "ro"], capture_output=True,
                          text=True).stdout.strip() == "ro=true"
    with pytest.raises(OSError):
        (snapshot / "photo.raw").write_bytes(b"x")
    assert not (destination / VERSIONS_DIR / ".owed").exists()


def test_damage_is_still_found_after_versions_link_and_unlink_the_damaged_file(tmp_path, ext4_backup):
    """Taking a version links every file of the mirror and pruning one unlinks them, which
    moves their ctime: taken for a possible edit, the damage would be kept as new content."""
    config, source, destination = configure(tmp_path, ext4_backup)
    good = data(7)
    write(source / "photo.raw", good)
    moment = datetime(2026, 11, 13, tzinfo=UTC)
    sync(config, tmp_path, moment)
    assert set_of(config.scrub["backup"], "photo.raw")  # the sync's parity update made it
    rot(destination / "photo.raw", [77])
    for hour in range(1, 13):  # versions taken, and (keep: last 10) pruned
        write(source / "counter.txt", str(hour).encode() * hour)
        sync(config, tmp_path, moment + timedelta(hours=hour))
    assert len(Versions(str(destination)).all()) == 10
    result = scrub(config)
    assert (result.stats["repaired"], result.stats["updated"]) == (1, 0), result.summary
    assert (destination / "photo.raw").read_bytes() == good
    for version in Versions(str(destination)).all():
        assert (Path(version.path) / "photo.raw").read_bytes() == good
