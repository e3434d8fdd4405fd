"""Attacks on the versions of a sync destination: a hostile share user writing the source, a
failing disk, and bad luck (a step that fails half-way, an administrator's mistake). Each
test names the attack; the versions, the mirror and its parity must come through."""
from __future__ import annotations

import argparse
import os
import stat
import subprocess
import threading
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
from tests.host.test_restore import V1, Box, output
from tests.support.files import snapshot, tree
from tests.support.parity import set_of
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host

T0 = datetime(2026, 11, 16, tzinfo=UTC)


def configure(tmp_path: Path, backup: Path, keep: dict | None = None, scrub: bool = True, **sync_fields):
    """A sync job docs (source tmp_path/docs, destination backup/docs) keeping versions, and
    a scrub job over its destination."""
    source, destination = tmp_path / "docs", backup / "docs"
    source.mkdir(exist_ok=True)
    jobs: dict = {"sync": {"docs": {"source": str(source), "destination": str(destination), "schedule": "daily",
                                    "versions": {"keep": keep or {"last": 10}}, "min_free": 0, **sync_fields}}}
    if scrub:
        (tmp_path / "parity").mkdir(exist_ok=True)
        jobs["scrub"] = {"backup": {"directory": str(destination), "database": str(tmp_path / "parity"),
                                    "redundancy": "10%", "schedule": "weekly"}}
    config_file = tmp_path / "nasbox.yaml"
    config_file.write_text(yaml.safe_dump(jobs))
    return load_config({"NASBOX_CONFIG": str(config_file)}), source, destination


def sync(config, tmp_path: Path, moment: datetime):
    return Sync(config.sync["docs"], config, state_dir=tmp_path / "state", clock=lambda: moment).run()


def scrub(config):
    job = config.scrub["backup"]
    return KINDS["scrub"].runner(config, job, argparse.Namespace(update_only=False, force=False))()


def write(path: Path, content: bytes, mtime: int = 1_700_000_000) -> None:
    """A file as a backup holds most: written some time ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))


def data(seed: int, size: int = 200_000) -> bytes:
    return bytes((i * 31 + seed * 7 + i // 251) % 256 for i in range(size))


@pytest.fixture
def linear_backup(tmp_path: Path) -> Iterator[Path]:
    """ext4 without hashed directories: a directory lists its entries in the order they were
    made, so which file a removal reaches first is known."""
    with loop_mount(tmp_path / "backup", size_mb=64, mkfs_options=("-O", "^dir_index")):
        yield tmp_path / "backup"


def test_a_prune_that_fails_half_way_still_vouches_for_the_ctimes_it_moved(tmp_path, linear_backup):
    """Attack: bad luck. Pruning a version unlinks its files one by one; a file it cannot
    unlink (made immutable) stops it half-way, after the links of other files were removed
    and their ctimes moved. Those files must still be recorded as they are: a file the disk
    damaged before must be repaired, never taken for an edit and given parity of its damage."""
    config, source, destination = configure(tmp_path, linear_backup, keep={"last": 1})
    good = data(1)
    write(source / "a" / "photo.raw", good)
    write(source / "z" / "locked.txt", b"locked")
    assert sync(config, tmp_path, T0).status == "good"
    assert set_of(config.scrub["backup"], "a/photo.raw")  # the sync's parity update made it
    locked = destination / "z" / "locked.txt"
    subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        rot(destination / "a" / "photo.raw", [1234])  # silent damage, found by no scrub yet
        write(source / "other.txt", b"a change, so that a version is taken and the first pruned")
        failed = sync(config, tmp_path, T0 + timedelta(hours=1))
        assert failed.status == "error" and "Operation not permitted" in failed.summary, failed.summary
        assert (destination / "a" / "photo.raw").stat().st_nlink == 2  # its link in the old version is gone
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    result = scrub(config)
    assert (result.stats["repaired"], result.stats["updated"]) == (1, 0), (result.summary, result.details)
    assert (destination / "a" / "photo.raw").read_bytes() == good
    for version in Versions(str(destination)).all():
        assert (Path(version.path) / "a" / "photo.raw").read_bytes() == good, version.name


def test_a_version_that_cannot_be_renamed_for_pruning_is_an_error_and_the_others_are_pruned(tmp_path):
    """Attack: an administrator made one version immutable (`chattr +i` on its directory) to
    keep it. Pruning cannot rename it: the run is an error naming it, not a crash; the versions
    the retention drops besides are pruned, and the parity update after the copy still runs."""
    (tmp_path / "backup").mkdir()
    config, source, destination = configure(tmp_path, tmp_path / "backup", keep={"last": 1})
    write(source / "a.txt", b"first")
    assert sync(config, tmp_path, T0).status == "good"
    pinned = Path(Versions(str(destination)).all()[0].path)
    subprocess.run(["chattr", "+i", str(pinned)], check=True)
    try:
        for hour in (1, 2):
            write(source / "a.txt", f"state {hour}".encode(), mtime=1_700_000_000 + hour)
            result = sync(config, tmp_path, T0 + timedelta(hours=hour))
            assert result.status == "error", result.summary
            assert f"{pinned.name}: Operation not permitted" in result.summary, result.summary
            assert any(line.startswith("parity update of scrub backup: ") for line in result.details), result.details
        assert [v.name for v in Versions(str(destination)).all()] == [pinned.name, "@GMT-2026.11.16-02.00.00"]
    finally:
        subprocess.run(["chattr", "-i", str(pinned)], check=True)
    assert (pinned / "a.txt").read_bytes() == b"first"


def deep_tree(top: Path, levels: int, name: str = "d") -> list[str]:
    """levels directories, each in the one before, below top, and a file at the bottom; made
    through descriptors, one name at a time. The parts below top."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as bottom:
            bottom.write(b"at the bottom")
    finally:
        os.close(fd)
    return [name] * levels + ["bottom.txt"]


def read_below(top: str | Path, parts: list[str]) -> bytes:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


@pytest.fixture
def removed_after(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, emptied with rm(1) afterwards: pytest's own removal recurses once a level."""
    yield tmp_path
    subprocess.run(["rm", "-rf", "--one-file-system", str(tmp_path)], check=False)


def test_a_tree_as_deep_as_rsync_copies_is_taken_and_pruned(removed_after):
    """Attack: a share user nests directories 1,020 deep in the source: about as deep as
    rsync copies, and deeper than Python recurses. rsync copies it; the version must be taken, and pruned,
    like any other, or no version could ever be taken again."""
    tmp_path = removed_after
    (tmp_path / "backup").mkdir()
    config, source, destination = configure(tmp_path, tmp_path / "backup", keep={"last": 1}, scrub=False)
    parts = deep_tree(source, 1020)
    first = sync(config, tmp_path, T0)
    assert first.status == "good", (first.summary, first.details)
    assert read_below(destination, parts) == b"at the bottom"
    taken = Versions(str(destination)).all()
    assert [v.name for v in taken] == ["@GMT-2026.11.16-00.00.00"]
    assert read_below(taken[0].path, parts) == b"at the bottom"
    write(source / "other.txt", b"a change")
    second = sync(config, tmp_path, T0 + timedelta(hours=1))
    assert second.status == "good", (second.summary, second.details)
    assert "version @GMT-2026.11.16-00.00.00 pruned (last=1)" in second.details
    assert sorted(os.listdir(destination / VERSIONS_DIR)) == ["@GMT-2026.11.16-01.00.00"]
    assert read_below(Versions(str(destination)).all()[0].path, parts) == b"at the bottom"


@pytest.fixture
def ext4_backup(tmp_path: Path) -> Iterator[Path]:
    with loop_mount(tmp_path / "backup", size_mb=64):
        yield tmp_path / "backup"


def test_a_repair_never_gives_an_older_content_of_the_same_size_and_mtime_the_repaired_bytes(tmp_path, ext4_backup):
    """Attack: a share user rewrites a file with other bytes of the same size, and once that
    is backed up sets its mtime back to the old one (`touch -d`); rsync then makes the mirror's
    file anew with the old mtime. The oldest version holds the first content, of the same size
    and mtime as the mirror's file but another inode. When the disk damages the mirror's file,
    the repair must not take that older content for a damaged copy and overwrite it."""
    config, source, destination = configure(tmp_path, ext4_backup)
    first, second = data(2), data(3)
    write(source / "f.bin", first)
    assert sync(config, tmp_path, T0).status == "good"
    write(source / "f.bin", second, mtime=1_700_000_100)
    assert sync(config, tmp_path, T0 + timedelta(hours=1)).status == "good"
    os.utime(source / "f.bin", (1_700_000_000, 1_700_000_000))
    assert sync(config, tmp_path, T0 + timedelta(hours=2)).status == "good"
    oldest = Path(Versions(str(destination)).all()[0].path) / "f.bin"
    live = destination / "f.bin"
    assert (oldest.stat().st_size, oldest.stat().st_mtime_ns) == (live.stat().st_size, live.stat().st_mtime_ns)
    assert oldest.stat().st_ino != live.stat().st_ino and oldest.read_bytes() == first
    rot(live, [4321])
    result = scrub(config)
    assert result.stats["repaired"] == 1, (result.summary, result.details)
    assert live.read_bytes() == second
    assert oldest.read_bytes() == first, result.details
    assert not any("damaged too" in line for line in result.details), result.details


def test_a_mending_leaves_a_users_file_of_any_name_in_the_version(tmp_path, ext4_backup):
    """Attack: a share user names a file `.nasbox-mending` beside one that a version holds a
    copy of its own of (as at the link limit), made while the mirror's file was damaged. The
    mending gives the copy the repaired bytes and leaves every other entry of the version as
    it was."""
    config, source, destination = configure(tmp_path, ext4_backup)
    good = data(4)
    write(source / "dir" / "photo.raw", good)
    write(source / "dir" / ".nasbox-mending", b"the user's own file")
    assert sync(config, tmp_path, T0).status == "good"
    write(source / "other.txt", b"a change, so that a version is taken")
    assert sync(config, tmp_path, T0 + timedelta(hours=1)).status == "good"
    versions = Versions(str(destination)).all()
    own = Path(versions[1].path) / "dir" / "photo.raw"
    with Scrub(config.scrub["backup"]).vouching():  # a copy of its own, made as nasbox makes one
        own.unlink()
    own.write_bytes(good)
    os.utime(own, ns=(0, (destination / "dir" / "photo.raw").stat().st_mtime_ns))
    rot(destination / "dir" / "photo.raw", [99])
    rot(own, [99])
    result = scrub(config)
    assert result.stats["repaired"] == 1, (result.summary, result.details)
    assert own.read_bytes() == good, result.details
    for version in versions:
        assert (Path(version.path) / "dir" / ".nasbox-mending").read_bytes() == b"the user's own file", version.name
        assert sorted(os.listdir(Path(version.path) / "dir")) == [".nasbox-mending", "photo.raw"], version.name


def test_a_restore_never_writes_into_another_jobs_destination_or_versions(tmp_path):
    """Attack: a mistaken (or persuaded) administrator restores with --to into a version of
    another sync job, a directory that exists and is no link. A version is never written
    after it is taken, whichever job's it is: refused, nothing written."""
    box = Box(tmp_path)
    photos = {"source": str(tmp_path / "data" / "photos"), "destination": str(tmp_path / "backup" / "photos"),
              "schedule": "daily", "versions": {"keep": {"last": 5}}}
    settings = yaml.safe_load(box.config_file.read_text())
    settings["sync"]["photos"] = photos
    box.config_file.write_text(yaml.safe_dump(settings))
    tree(box.source, {"proj/a.txt": "docs' a"})
    tree(tmp_path / "data" / "photos", {"proj/a.txt": "a photo's", "cat.jpg": "meow"})
    box.sync(V1)
    config = load_config({"NASBOX_CONFIG": str(box.config_file)})
    assert Sync(config.sync["photos"], config, clock=lambda: V1).run().status == "good"
    version = Versions(photos["destination"]).all()[0].path
    before = snapshot(Path(version))
    for into in (version, photos["destination"]):
        refused = box.restore("proj", "--at", "2026-11-21", "--to", into)
        assert refused.returncode == 2 and "lies in the destination" in output(refused), output(refused)
    assert snapshot(Path(version)) == before == {"proj/a.txt": b"a photo's", "cat.jpg": b"meow"}


def test_the_versions_are_listed_while_a_prune_renames_them(tmp_path):
    """Attack: bad luck. `nasbox versions` and `nasbox status` read the versions without the
    job's lock, while a run may be renaming one to remove it: a version gone between the
    listing and the look at it is simply not listed, never an error."""
    (tmp_path / "backup").mkdir()
    config, source, destination = configure(tmp_path, tmp_path / "backup", scrub=False)
    write(source / "a.txt", b"a")
    assert sync(config, tmp_path, T0).status == "good"
    version = Versions(str(destination)).all()[0]
    pruning = os.path.join(os.path.dirname(version.path), ".pruning-" + version.name)
    done = threading.Event()

    def prune_and_put_back() -> None:
        while not done.is_set():
            os.rename(version.path, pruning)
            os.rename(pruning, version.path)

    renamer = threading.Thread(target=prune_and_put_back)
    renamer.start()
    try:
        for _ in range(3000):
            assert [v.name for v in Versions(str(destination)).all()] in ([], [version.name])
    finally:
        done.set()
        renamer.join()


def test_a_tree_as_deep_as_rsync_copies_is_restored(removed_after):
    """Attack: a share user nests directories 1,020 deep; the directory holding them is
    deleted and restored. The restore walks the version and the target to any depth."""
    box = Box(removed_after)
    (box.source / "deep").mkdir()
    parts = deep_tree(box.source / "deep", 1020)
    box.sync(V1)
    subprocess.run(["rm", "-rf", str(box.source / "deep")], check=True)
    restored = box.restore("deep", "--at", "2026-11-21")
    assert restored.returncode == 0, output(restored)[-2000:]
    assert "1 file, 1021 directories" in restored.stdout, restored.stdout[-2000:]
    assert read_below(box.source / "deep", parts) == b"at the bottom"


def test_a_restore_never_overwrites_other_bytes_of_the_same_mtime_without_force(tmp_path):
    """Attack: bad luck. An application that keeps a file's mtime (VeraCrypt does, for its
    containers) rewrites it with bytes of the same size: rsync skips it (same size and mtime),
    so no version holds the new bytes. A restore of the version's file must not overwrite the
    only copy of them without --force: with the same mtime, the target's file is not older."""
    box = Box(tmp_path)
    write(box.source / "vault.hc", data(5, 50_000))
    box.sync(V1)
    write(box.source / "vault.hc", data(6, 50_000))  # the same size and mtime, other bytes
    box.sync(V1 + timedelta(hours=1))
    refused = box.restore("vault.hc", "--at", "2026-11-21")
    assert refused.returncode == 75, output(refused)
    assert "nothing was written" in refused.stdout and "vault.hc" in refused.stdout, output(refused)
    assert (box.source / "vault.hc").read_bytes() == data(6, 50_000)
    os.chmod(box.source / "vault.hc", 0o600)  # only the mode differs once the bytes are the version's
    forced = box.restore("vault.hc", "--at", "2026-11-21", "--force")
    assert forced.returncode == 0 and (box.source / "vault.hc").read_bytes() == data(5, 50_000), output(forced)
    os.chmod(box.source / "vault.hc", 0o600)
    again = box.restore("vault.hc", "--at", "2026-11-21")  # nothing of the target's would be lost
    assert again.returncode == 0, output(again)
    assert stat.S_IMODE((box.source / "vault.hc").stat().st_mode) == 0o644


def test_names_a_user_plants_in_the_source_are_data_never_versions_or_leftovers(tmp_path):
    """Attack: a share user plants the names nasbox gives its own things: a `.nasbox-versions`
    link to a directory outside, and `.pruning-`, `.taking-`, `@GMT-` and `.owed` entries at
    the top of the source and in a `.nasbox-versions` folder further down. They are the user's
    data in the mirror and in every version, and nothing is removed through them. (Held from
    the start.)"""
    (tmp_path / "backup").mkdir()
    config, source, destination = configure(tmp_path, tmp_path / "backup", keep={"last": 1}, scrub=False)
    outside = tmp_path / "outside"
    tree(outside, {".pruning-@GMT-2020.01.01-00.00.00/keep.txt": "keep", "@GMT-2020.01.01-00.00.00/x": "x"})
    planted = {".pruning-@GMT-2020.01.01-00.00.00/a.txt": "a", ".taking-@GMT-2020.01.01-00.00.00/b.txt": "b",
               "@GMT-2020.01.01-00.00.00/c.txt": "c", ".owed": "o",
               f"sub/{VERSIONS_DIR}/.pruning-@GMT-2020.01.01-00.00.00/d.txt": "d",
               f"sub/{VERSIONS_DIR}/@GMT-2020.01.01-00.00.00/e.txt": "e"}
    tree(source, planted)
    (source / VERSIONS_DIR).symlink_to(outside)
    for hour in range(3):
        write(source / "counter.txt", str(hour).encode(), mtime=1_700_000_000 + hour)
        result = sync(config, tmp_path, T0 + timedelta(hours=hour))
        assert result.status == "good", (result.summary, result.details)
    assert [v.name for v in Versions(str(destination)).all()] == ["@GMT-2026.11.16-02.00.00"]
    assert sorted(os.listdir(destination / VERSIONS_DIR)) == ["@GMT-2026.11.16-02.00.00"]
    newest = Path(Versions(str(destination)).all()[0].path)
    mirror = {path: content for path, content in snapshot(destination).items() if not path.startswith(VERSIONS_DIR)}
    assert mirror == snapshot(newest) == {**{k: v.encode() for k, v in planted.items()}, "counter.txt": b"2"}
    assert snapshot(outside) == {".pruning-@GMT-2020.01.01-00.00.00/keep.txt": b"keep",
                                 "@GMT-2020.01.01-00.00.00/x": b"x"}


@pytest.fixture
def btrfs_backup(tmp_path: Path) -> Iterator[Path]:
    """A loop-mounted btrfs whose docs is a subvolume: versions are snapshots."""
    image, mountpoint = tmp_path / "btrfs.img", tmp_path / "backup"
    subprocess.run(["truncate", "-s", "256M", str(image)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
    mountpoint.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        subprocess.run(["btrfs", "-q", "subvolume", "create", str(mountpoint / "docs")], check=True)
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)


def read_only(snapshot: str) -> bool:
    shown = subprocess.run(["btrfs", "property", "get", "-ts", snapshot, "ro"], capture_output=True, text=True)
    return shown.stdout.strip() == "ro=true"


def test_a_snapshot_a_killed_mending_left_writable_is_read_only_again_after_the_next_run(tmp_path, btrfs_backup):
    """Attack: kill -9 while a scrub mends a btrfs snapshot, which it makes writable for that
    and read-only again after: the snapshot is left writable. The next run makes it read-only
    again, before it takes or prunes anything."""
    config, source, destination = configure(tmp_path, btrfs_backup, scrub=False)
    write(source / "a.txt", b"a")
    assert sync(config, tmp_path, T0).status == "good"
    snapshot_path = Versions(str(destination)).all()[0].path
    assert read_only(snapshot_path)
    # As a kill -9 between the mending's two property changes leaves it:
    subprocess.run(["btrfs", "property", "set", "-ts", snapshot_path, "ro", "false"], check=True)
    write(source / "a.txt", b"changed", mtime=1_700_000_001)
    assert sync(config, tmp_path, T0 + timedelta(hours=1)).status == "good"
    assert all(read_only(v.path) for v in Versions(str(destination)).all())
    assert (Path(snapshot_path) / "a.txt").read_bytes() == b"a"



def test_forced_runs_that_copy_nothing_take_no_version_and_prune_none(tmp_path):
    """Attack: bad luck (a script that runs `nasbox sync docs --now --force` every hour).
    A forced run makes no preview; one that copies nothing must still take no version, or
    each would push an older version, perhaps the last holding a file, out of `last: 2`."""
    (tmp_path / "backup").mkdir()
    config, source, destination = configure(tmp_path, tmp_path / "backup", keep={"last": 2}, scrub=False)
    write(source / "a.txt", b"the first content")
    assert sync(config, tmp_path, T0).status == "good"
    write(source / "a.txt", b"the second content", mtime=1_700_000_001)
    assert sync(config, tmp_path, T0 + timedelta(hours=1)).status == "good"
    for hour in (2, 3, 4):
        forced = Sync(config.sync["docs"], config, state_dir=tmp_path / "state", force=True,
                      clock=lambda hour=hour: T0 + timedelta(hours=hour)).run()
        assert forced.status == "good", forced.summary
        assert not any(line.startswith("version ") for line in forced.details), forced.details
    assert [v.name for v in Versions(str(destination)).all()] == ["@GMT-2026.11.16-00.00.00",
                                                                 "@GMT-2026.11.16-01.00.00"]
    assert (Path(Versions(str(destination)).all()[0].path) / "a.txt").read_bytes() == b"the first content"
