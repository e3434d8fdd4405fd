"""Versions of a sync destination against real rsync on real filesystems: what a version
holds after the source is deleted, overwritten or encrypted in place, what pruning keeps
across a simulated month, and how taking or pruning one survives interruption, a full disk
and hostile names."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from nasbox.config import ConfigError, load_config
from nasbox.sync.engine import Sync
from nasbox.sync.kind import versions_status
from nasbox.versions.store import VERSIONS_DIR, Versions
from tests.support.files import snapshot, tree
from tests.support.rawdisk import loop_mount

pytestmark = pytest.mark.host

KEEP = {"hourly": 6, "daily": 7, "weekly": 4, "monthly": 2}


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    found = {"source": tmp_path / "data" / "docs", "backup": tmp_path / "backup", "state": tmp_path / "state"}
    found["source"].mkdir(parents=True)
    found["backup"].mkdir()
    found["destination"] = found["backup"] / "docs"
    return found


def config_for(paths: dict[str, Path], keep: dict | None = None, **sync_fields):
    path = paths["state"].parent / "nasbox.yaml"
    job = {"source": str(paths["source"]), "destination": str(paths["destination"]), "schedule": "daily"}
    job.update({"versions": {"keep": keep or KEEP}, **sync_fields})
    path.write_text(yaml.safe_dump({"sync": {"docs": job}}))
    return load_config({"NASBOX_CONFIG": str(path)})


class Clock:
    """The moment each run takes its version at: moved by the test, never slept for."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def run(config, paths, clock=None, **options):
    clock = clock or Clock(datetime.now(UTC))
    return Sync(config.sync["docs"], config, state_dir=paths["state"], clock=clock, **options).run()


def names(paths) -> list[str]:
    return [v.name for v in Versions(str(paths["destination"])).all()]


def test_each_changing_run_takes_a_version_that_keeps_the_old_content(paths):
    tree(paths["source"], {"a.txt": "first a", "sub/b.txt": "first b", "c.txt": "first c"})
    config = config_for(paths)
    clock = Clock(datetime(2026, 11, 1, 12, tzinfo=UTC))
    first = run(config, paths, clock)
    assert first.status == "good", first.summary
    assert names(paths) == ["@GMT-2026.11.01-12.00.00"]
    before = snapshot(paths["source"])

    clock.now += timedelta(hours=1)
    assert run(config, paths, clock).status == "good"
    assert names(paths) == ["@GMT-2026.11.01-12.00.00"], "a run that changed nothing takes no version"

    (paths["source"] / "a.txt").write_text("second a")  # overwritten
    (paths["source"] / "sub" / "b.txt").unlink()  # deleted
    clock.now += timedelta(hours=1)
    assert run(config, paths, clock).status == "good"
    versions = Versions(str(paths["destination"])).all()
    assert [v.name for v in versions] == ["@GMT-2026.11.01-12.00.00", "@GMT-2026.11.01-14.00.00"]
    assert snapshot(Path(versions[0].path)) == before
    assert snapshot(Path(versions[1].path)) == snapshot(paths["source"])
    # Unchanged files share their storage; the version holds no parity or versions of its own.
    c_old, c_new = (Path(v.path) / "c.txt" for v in versions)
    assert c_old.stat().st_ino == c_new.stat().st_ino == (paths["destination"] / "c.txt").stat().st_ino
    assert not (Path(versions[1].path) / VERSIONS_DIR).exists()
    assert versions_status(config.sync["docs"]) == {"count": 2, "oldest": "@GMT-2026.11.01-12.00.00",
                                                    "newest": "@GMT-2026.11.01-14.00.00",
                                                    "keep": "hourly=6, daily=7, weekly=4, monthly=2"}


def test_encrypted_in_place_source_leaves_the_old_content_in_a_version(paths):
    files = {f"d{i % 5}/f{i}.doc": f"document {i} " * 50 for i in range(60)}
    tree(paths["source"], files)
    config = config_for(paths, max_delete="100%")
    clock = Clock(datetime(2026, 11, 2, 3, tzinfo=UTC))
    assert run(config, paths, clock).status == "good"
    original = snapshot(paths["source"])
    for relative in files:  # rewritten with random bytes, as ransomware does
        (paths["source"] / relative).write_bytes(os.urandom(700))
    clock.now += timedelta(days=1)
    run(config, paths, clock, force=True)
    old = Versions(str(paths["destination"])).all()[0]
    assert snapshot(Path(old.path)) == original


def test_deletions_by_rsync_never_reach_the_versions_and_a_sources_own_are_not_copied(paths):
    tree(paths["source"], {"a.txt": "a", "b.txt": "b"})
    config = config_for(paths, max_delete="100%")
    clock = Clock(datetime(2026, 11, 3, tzinfo=UTC))
    assert run(config, paths, clock).status == "good"
    tree(paths["source"], {f"{VERSIONS_DIR}/@GMT-2020.01.01-00.00.00/planted.txt": "x"})
    (paths["source"] / "a.txt").unlink()
    clock.now += timedelta(hours=1)
    result = run(config, paths, clock)
    assert result.status == "good", result.summary
    assert names(paths) == ["@GMT-2026.11.03-00.00.00", "@GMT-2026.11.03-01.00.00"]
    assert (Path(Versions(str(paths["destination"])).all()[0].path) / "a.txt").read_text() == "a"


def expected_kept(moments: list[datetime], keep: dict) -> set[datetime]:
    """The retention worked out by hand: for each count, the newest moment of each of the
    newest N periods (hours, days, ISO weeks, months) having one."""
    chosen: set[datetime] = set()
    keys = {
        "hourly": lambda t: t.strftime("%Y%m%d%H"),
        "daily": lambda t: t.strftime("%Y%m%d"),
        "weekly": lambda t: "%d-%02d" % t.isocalendar()[:2],
        "monthly": lambda t: t.strftime("%Y%m"),
    }
    for word, count in keep.items():
        newest_per_period: dict[str, datetime] = {}
        for t in moments:
            key = keys[word](t)
            newest_per_period[key] = max(t, newest_per_period.get(key, t))
        chosen |= set(sorted(newest_per_period.values(), reverse=True)[:count])
    return chosen


def test_a_month_of_runs_keeps_exactly_what_the_retention_says(paths):
    config = config_for(paths)
    clock = Clock(datetime(2026, 10, 20, 1, 30, tzinfo=UTC))
    moments = []
    for run_number in range(5 * 35):  # every 5 hours for 35 days: two months, five weeks
        (paths["source"] / "counter.txt").write_text(str(run_number))
        os.utime(paths["source"] / "counter.txt", (clock.now.timestamp(),) * 2)  # as if written then
        result = run(config, paths, clock)
        assert result.status == "good", result.summary
        moments.append(clock.now)
        clock.now += timedelta(hours=5)
        kept = {v.time for v in Versions(str(paths["destination"])).all()}
        assert kept == expected_kept(moments, KEEP)
    assert len(kept) == len(expected_kept(moments, KEEP)) > 10
    newest = Versions(str(paths["destination"])).all()[-1]
    assert (Path(newest.path) / "counter.txt").read_text() == str(run_number)


def test_a_held_job_takes_and_prunes_no_version(paths):
    tree(paths["source"], {f"f{i}.txt": str(i) for i in range(10)})
    config = config_for(paths, keep={"last": 1})
    clock = Clock(datetime(2026, 11, 4, tzinfo=UTC))
    assert run(config, paths, clock).status == "good"
    for i in range(8):
        (paths["source"] / f"f{i}.txt").unlink()
    clock.now += timedelta(hours=1)
    held = run(config, paths, clock)
    assert held.skipped and "held" in held.summary
    assert names(paths) == ["@GMT-2026.11.04-00.00.00"]
    clock.now += timedelta(hours=1)
    assert run(config, paths, clock).skipped  # still held: the last good state stays
    assert len(list(Path(Versions(str(paths["destination"])).all()[0].path).iterdir())) == 10


def test_leftovers_of_an_interrupted_run_are_never_versions_and_are_removed(paths):
    tree(paths["source"], {"a.txt": "a"})
    config = config_for(paths)
    clock = Clock(datetime(2026, 11, 5, tzinfo=UTC))
    assert run(config, paths, clock).status == "good"
    root = paths["destination"] / VERSIONS_DIR
    tree(root, {".taking-@GMT-2026.11.05-00.30.00/a.txt": "half", ".pruning-@GMT-2026.01.01-00.00.00/x": "y"})
    assert names(paths) == ["@GMT-2026.11.05-00.00.00"]
    (paths["source"] / "a.txt").write_text("changed")
    clock.now += timedelta(hours=1)
    assert run(config, paths, clock).status == "good"
    assert sorted(os.listdir(root)) == ["@GMT-2026.11.05-00.00.00", "@GMT-2026.11.05-01.00.00"]


def test_a_link_in_place_of_the_versions_directory_is_refused(paths, tmp_path):
    tree(paths["source"], {"a.txt": "a"})
    config = config_for(paths)
    paths["destination"].mkdir()
    elsewhere = tmp_path / "elsewhere"
    tree(elsewhere, {".pruning-x/keep.txt": "keep"})
    (paths["destination"] / VERSIONS_DIR).symlink_to(elsewhere)
    result = run(config, paths)
    assert result.status == "error" and "not a directory" in result.summary
    assert (elsewhere / ".pruning-x" / "keep.txt").read_text() == "keep"


def test_symlinks_hard_links_sparse_files_and_long_names_are_kept_as_they_are(paths, tmp_path):
    outside = tmp_path / "outside"
    tree(outside, {"secret.txt": "s"})
    long_name = "n" * 255
    tree(paths["source"], {"a.txt": "a", f"deep/{long_name}": "long"})
    (paths["source"] / "link").symlink_to(outside)
    (paths["source"] / "deep" / "rel").symlink_to("../a.txt")
    with open(paths["source"] / "sparse.img", "wb") as f:
        f.truncate(64 << 20)
        f.write(b"head")
    os.link(paths["source"] / "a.txt", paths["source"] / "a-again.txt")
    config = config_for(paths, hard_links=True)
    assert run(config, paths).status == "good"
    version = Path(Versions(str(paths["destination"])).all()[0].path)
    assert os.readlink(version / "link") == str(outside)
    assert os.readlink(version / "deep" / "rel") == "../a.txt"
    assert (version / "deep" / long_name).read_text() == "long"
    assert (version / "sparse.img").stat().st_ino == (paths["destination"] / "sparse.img").stat().st_ino
    assert (version / "a.txt").stat().st_ino == (version / "a-again.txt").stat().st_ino
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_directories_keep_owner_mode_and_time(paths):
    tree(paths["source"], {"private/x.txt": "x"})
    os.chown(paths["source"] / "private", 1234, 4321)
    os.chmod(paths["source"] / "private", 0o750)
    os.utime(paths["source"] / "private", (1_600_000_000, 1_600_000_000))
    assert run(config_for(paths), paths).status == "good"
    st = (Path(Versions(str(paths["destination"])).all()[0].path) / "private").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777, int(st.st_mtime)) == (1234, 4321, 0o750, 1_600_000_000)


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB ext4 mounted at backup/."""
    image = tmp_path / "disk.img"
    subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    mountpoint = tmp_path / "backup"
    mountpoint.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=False)


def use_inodes_but(disk: Path, left: int) -> Path:
    """Files made on disk until only `left` inodes are free; the directory holding them."""
    filler = disk / "filler"
    filler.mkdir()
    for i in range(os.statvfs(disk).f_favail - left):
        (filler / str(i)).touch()
    assert os.statvfs(disk).f_favail == left
    return filler


def test_a_version_without_room_is_not_taken_and_the_next_run_with_room_takes_it(paths, small_disk):
    tree(paths["source"], {f"d{i}/f.txt": str(i) for i in range(20)})
    config = config_for(paths)
    clock = Clock(datetime(2026, 11, 6, tzinfo=UTC))
    first = run(config, paths, clock)
    assert first.status == "good", first.summary
    filler = use_inodes_but(small_disk, 5)  # a linked tree needs 21 directories
    (paths["source"] / "d0" / "f.txt").write_text("changed")
    clock.now += timedelta(hours=1)
    full = run(config, paths, clock)
    assert full.status == "error" and "was not taken: not enough space" in full.summary, full.summary
    assert "21 new files and directories" in full.summary
    assert sorted(os.listdir(paths["destination"] / VERSIONS_DIR)) == [".owed", "@GMT-2026.11.06-00.00.00"]
    assert (paths["destination"] / "d0" / "f.txt").read_text() == "changed"  # the copy itself was made
    subprocess.run(["rm", "-r", str(filler)], check=True)
    clock.now += timedelta(hours=1)
    result = run(config, paths, clock)  # the destination is as the last copy left it: a version all the same
    assert result.status == "good", result.summary
    assert sorted(os.listdir(paths["destination"] / VERSIONS_DIR)) == names(paths) == [
        "@GMT-2026.11.06-00.00.00", "@GMT-2026.11.06-02.00.00"]
    assert (paths["destination"] / VERSIONS_DIR / names(paths)[1] / "d0" / "f.txt").read_text() == "changed"


def test_a_disk_that_fills_while_a_version_is_linked_leaves_no_partial_version(paths, tmp_path):
    """The estimate (a block per directory) said there was room; a directory of many long
    names needs more blocks than that, and the disk fills while the tree is linked."""
    disk = tmp_path / "backup"
    with loop_mount(disk, size_mb=32, mkfs_options=("-b", "4096", "-m", "0")):
        tree(paths["source"], {f"many/{'n' * 200}{j:05}": "x" for j in range(2000)})
        config = config_for(paths, min_free=0)
        clock = Clock(datetime(2026, 11, 9, tzinfo=UTC))
        assert run(config, paths, clock).status == "good"
        free = os.statvfs(disk).f_bavail * 4096
        with open(disk / "filler", "wb") as filler:  # 64 KiB left: room for the estimate, not the tree
            filler.truncate(0)
            filler.write(b"\0" * (free - (64 << 10)))
        (paths["source"] / "small.txt").write_text("changed")
        clock.now += timedelta(hours=1)
        full = run(config, paths, clock)
        assert full.status == "error" and "could not be taken: No space left on device" in full.summary, full.summary
        root = paths["destination"] / VERSIONS_DIR
        assert sorted(os.listdir(root)) == [".owed", "@GMT-2026.11.09-00.00.00"]
        (disk / "filler").unlink()
        clock.now += timedelta(hours=1)
        assert run(config, paths, clock).status == "good"
        assert names(paths) == ["@GMT-2026.11.09-00.00.00", "@GMT-2026.11.09-02.00.00"]
        assert len(os.listdir(root / "@GMT-2026.11.09-02.00.00" / "many")) == 2000


def test_versions_are_configured_in_yaml_or_the_environment_and_bad_ones_named(paths):
    env = {"NASBOX_CONFIG": "/dev/null", "SYNC_DOCS": f"{paths['source']} {paths['destination']} daily",
           "SYNC_DOCS_VERSIONS": "daily=14,weekly=8"}
    job = load_config(env).sync["docs"]
    assert (job.versions.daily, job.versions.weekly, job.versions.hourly) == (14, 8, 0)
    with pytest.raises(ConfigError) as bad:
        load_config({**env, "SYNC_DOCS_VERSIONS": "daily=14,fortnightly=2"})
    assert "env SYNC_DOCS_VERSIONS" in str(bad.value) and "fortnightly" in str(bad.value)
    with pytest.raises(ConfigError) as orphan:
        load_config({"NASBOX_CONFIG": "/dev/null", "SYNC_OTHER_VERSIONS": "daily=1"})
    assert "there is no SYNC_OTHER" in str(orphan.value)
    with pytest.raises(ConfigError) as empty:
        config_for(paths, keep={"daily": 0})
    assert "sync.docs.versions.keep" in str(empty.value) and "above 0" in str(empty.value)
    with pytest.raises(ConfigError) as unknown:
        config_for(paths, keep={"daily": -1})
    assert "sync.docs.versions.keep.daily" in str(unknown.value)


@pytest.mark.parametrize("step", [".taking-", ".pruning-"])
def test_kill_9_while_a_version_is_taken_or_pruned_leaves_no_partial_version(paths, step):
    """`nasbox sync` killed while it links a version, or while it removes one: no partial
    tree is ever listed as a version, and the next run finishes the work."""
    tree(paths["source"], {f"d{i // 10}/f{i}.txt": str(i) for i in range(20_000)})
    config = config_for(paths, keep={"last": 1})
    env = {**os.environ, "NASBOX_CONFIG": str(paths["state"].parent / "nasbox.yaml")}
    assert subprocess.run([sys.executable, "-m", "nasbox", "sync", "docs", "--now"], env=env).returncode == 0
    root = paths["destination"] / VERSIONS_DIR
    first = names(paths)
    time.sleep(1.1)  # the next version gets another name
    (paths["source"] / "d0" / "f0.txt").write_text("changed")
    process = subprocess.Popen([sys.executable, "-m", "nasbox", "sync", "docs", "--now"], env=env)
    deadline = time.monotonic() + 60
    while not any(name.startswith(step) for name in os.listdir(root)):
        assert process.poll() is None and time.monotonic() < deadline, f"{step} never seen"
        time.sleep(0.002)
    process.kill()
    process.wait()
    listed = names(paths)
    assert 1 <= len(listed) <= 2 and len(set(listed) - set(first)) <= 1
    for name in listed:  # each listed version is complete
        assert len(list((root / name).rglob("*.txt"))) == 20_000, name
    result = run(config, paths)
    assert result.status == "good", result.summary
    assert [n for n in os.listdir(root) if n.startswith((".taking-", ".pruning-"))] == []
    newest = Versions(str(paths["destination"])).all()[-1]
    assert (Path(newest.path) / "d0" / "f0.txt").read_text() == "changed"
    assert len(names(paths)) == 1


@pytest.mark.parametrize("flag", ["+i", "+a"])
def test_an_immutable_or_append_only_file_is_copied_into_a_version_and_never_forced(paths, flag):
    """link(2) refuses such a file: the version gets a copy. Pruning a version that shares
    it fails with an error naming it (nasbox never lifts the flag), and the next run after the
    flag is lifted finishes the pruning."""
    tree(paths["source"], {"a.txt": "a", "locked.txt": "locked content"})
    config = config_for(paths, keep={"last": 1})
    clock = Clock(datetime(2026, 11, 7, tzinfo=UTC))
    assert run(config, paths, clock).status == "good"
    locked = paths["destination"] / "locked.txt"
    subprocess.run(["chattr", flag, str(locked)], check=True)
    try:
        (paths["source"] / "a.txt").write_text("changed a")
        clock.now += timedelta(hours=1)
        result = run(config, paths, clock)
        assert result.status == "error" and "Operation not permitted: locked.txt" in result.summary, result.summary
        assert any("version @GMT-2026.11.07-01.00.00 taken" in line for line in result.details)
        newest = Path(Versions(str(paths["destination"])).all()[-1].path)
        assert (newest / "locked.txt").read_text() == "locked content"
        assert (newest / "locked.txt").stat().st_ino != locked.stat().st_ino
        assert locked.read_text() == "locked content"
    finally:
        subprocess.run(["chattr", flag.replace("+", "-"), str(locked)], check=True)
    clock.now += timedelta(hours=1)
    assert run(config, paths, clock).status == "good"
    assert sorted(os.listdir(paths["destination"] / VERSIONS_DIR)) == ["@GMT-2026.11.07-01.00.00"]


def test_a_version_named_after_a_later_time_never_costs_the_one_just_taken(paths):
    """A clock set wrong once named a version after 2031; with `last: 1`, the version a run
    takes now is still kept (and so is the odd one, the newest by name)."""
    tree(paths["source"], {"a.txt": "a"})
    config = config_for(paths, keep={"last": 1})
    assert run(config, paths, Clock(datetime(2031, 1, 1, tzinfo=UTC))).status == "good"
    (paths["source"] / "a.txt").write_text("changed")
    assert run(config, paths, Clock(datetime(2026, 11, 8, tzinfo=UTC))).status == "good"
    assert names(paths) == ["@GMT-2026.11.08-00.00.00", "@GMT-2031.01.01-00.00.00"]
