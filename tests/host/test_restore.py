"""`nasbox versions` and `nasbox restore` from the command line, against versions taken by
real syncs: what comes back after a source is deleted, overwritten or encrypted in place,
which version a time chooses, what a newer file stops, and what a share user who plants or
swaps links in the target, or a kill -9, can do to a restore."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from nasbox.config import load_config
from nasbox.history import History
from nasbox.locks import job_lock
from nasbox.sync.engine import Sync
from nasbox.versions.restore import TEMP_NAME
from nasbox.versions.store import Versions
from tests.support.files import snapshot, tree

pytestmark = pytest.mark.host

TREE = Path(__file__).resolve().parents[2]
V1 = datetime(2026, 11, 20, 8, tzinfo=UTC)
V2 = datetime(2026, 11, 20, 12, tzinfo=UTC)
V3 = datetime(2026, 11, 21, 9, tzinfo=UTC)


class Box:
    """A sync job `docs` keeping versions, its source and destination, and the CLI."""

    def __init__(self, root: Path):
        self.root = root
        self.source = root / "data" / "docs"
        self.destination = root / "backup" / "docs"
        self.source.mkdir(parents=True)
        self.destination.parent.mkdir()
        self.config_file = root / "nasbox.yaml"
        job = {"source": str(self.source), "destination": str(self.destination), "schedule": "daily",
               "versions": {"keep": {"last": 50}}, "max_delete": "100%"}
        plain = {"source": str(root / "data" / "other"), "destination": str(root / "backup" / "other"),
                 "schedule": "daily"}
        self.config_file.write_text(yaml.safe_dump(
            {"server": {"timezone": "Europe/Berlin"}, "sync": {"docs": job, "plain": plain}}))

    def sync(self, moment: datetime) -> None:
        config = load_config({"NASBOX_CONFIG": str(self.config_file)})
        result = Sync(config.sync["docs"], config, force=True, clock=lambda: moment).run()
        assert result.status == "good", result.summary

    def nasbox(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nasbox", *args], capture_output=True, text=True,
                              timeout=300, env=self.env())

    def env(self) -> dict[str, str]:
        return {**{k: os.environ[k] for k in ("PATH", "NASBOX_HOME", "NASBOX_RUN_DIR")},
                "NASBOX_CONFIG": str(self.config_file), "PYTHONPATH": str(TREE)}

    def restore(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.nasbox("restore", "docs", *args)

    def version(self, moment: datetime) -> Path:
        return next(Path(v.path) for v in Versions(str(self.destination)).all() if v.time == moment)


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def output(completed: subprocess.CompletedProcess[str]) -> str:
    return completed.stdout + completed.stderr


def metadata(path: Path) -> tuple[int, int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_mtime_ns


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if TEMP_NAME.fullmatch(p.name)]


def test_deleted_overwritten_and_encrypted_files_come_back_as_they_were(box):
    photos = {f"photos/p{i:02}.jpg": f"photo {i} " * 200 for i in range(20)}
    tree(box.source, {"report.txt": "the report", "sub/deeper/note.txt": "a note", **photos})
    for path, owner, mode, mtime in (("report.txt", 1234, 0o640, 1_600_000_000),
                                     ("photos", 1235, 0o750, 1_600_000_100),
                                     ("photos/p03.jpg", 1236, 0o604, 1_600_000_200),
                                     ("sub/deeper", 1237, 0o710, 1_600_000_300)):
        os.chown(box.source / path, owner, 4321)
        os.chmod(box.source / path, mode)
        os.utime(box.source / path, (mtime, mtime))
    original = snapshot(box.source)
    before = {path: metadata(box.source / path) for path in ("report.txt", "photos", "photos/p03.jpg", "sub/deeper")}
    box.sync(V1)

    (box.source / "report.txt").unlink()  # deleted
    subprocess.run(["rm", "-r", str(box.source / "sub")], check=True)  # a whole tree deleted
    for name in photos:  # encrypted in place, as ransomware does
        (box.source / name).write_bytes(os.urandom(1500))
    box.sync(V2)

    result = box.restore("report.txt", "--at", "2026-11-20T10:00")
    assert result.returncode == 0, output(result)
    assert "restored report.txt as of @GMT-2026.11.20-08.00.00" in result.stdout
    restored = box.source / "report.txt"
    assert restored.read_text() == "the report" and metadata(restored) == before["report.txt"]
    in_version = box.version(V1) / "report.txt"
    assert restored.stat().st_ino != in_version.stat().st_ino and restored.stat().st_nlink == 1

    refused = box.restore("photos", "--at", "@GMT-2026.11.20-08.00.00")
    assert refused.returncode == 75, output(refused)
    assert "20 files are newer" in refused.stdout and "--force" in refused.stdout
    assert f"{box.source}/photos/p03.jpg" in refused.stdout
    assert all(len((box.source / name).read_bytes()) == 1500 for name in photos), "nothing written"

    forced = box.restore("photos", "--at", "@GMT-2026.11.20-08.00.00", "--force")
    assert forced.returncode == 0, output(forced)
    assert "20 files, 1 directory" in forced.stdout
    for name in ("photos", "photos/p03.jpg"):
        assert metadata(box.source / name) == before[name]
        assert (box.source / name).stat().st_ino != (box.version(V1) / name).stat().st_ino

    deep = box.restore("sub/deeper/note.txt", "--at", "2026-11-20T09:00:00Z")
    assert deep.returncode == 0, output(deep)
    assert metadata(box.source / "sub" / "deeper") == before["sub/deeper"]  # the directories on the way, made
    assert snapshot(box.source) == original
    assert leftovers(box.source) == []


def test_a_time_chooses_the_newest_version_taken_at_or_before_it(box):
    for moment, text in ((V1, "first"), (V2, "second"), (V3, "third")):
        (box.source / "f.txt").write_text(text)
        os.utime(box.source / "f.txt", (moment.timestamp() - 60,) * 2)
        box.sync(moment)

    def restored_at(at: str) -> str:
        (box.source / "f.txt").unlink()
        result = box.restore("f.txt", "--at", at)
        assert result.returncode == 0, output(result)
        return (box.source / "f.txt").read_text()

    assert restored_at("2026-11-21T09:59:59+01:00") == "second"  # 08:59:59 UTC: between the 2nd and 3rd
    assert restored_at("2026-11-21T09:00:00Z") == "third"  # taken at that very moment
    assert restored_at("2026-11-21T10:00") == "third"  # no offset: Berlin time, 09:00 UTC
    assert restored_at("2026-11-21T09:59") == "second"  # 08:59 UTC; read as UTC it would be the third
    assert restored_at("2026-11-21") == "second"  # midnight in Berlin: 2026-11-20T23:00 UTC
    assert restored_at("@GMT-2026.11.20-08.00.00") == "first"

    early = box.restore("f.txt", "--at", "2026-11-20T08:59+01:00")
    assert early.returncode == 2
    assert ("no version was taken at or before 2026-11-20 08:59:00 CET; the oldest is @GMT-2026.11.20-08.00.00 "
            "(2026-11-20 09:00:00 CET)") in output(early)
    pruned = box.restore("f.txt", "--at", "@GMT-2026.11.20-09.00.00")
    assert pruned.returncode == 2 and "there is no version @GMT-2026.11.20-09.00.00" in output(pruned)
    nonsense = box.restore("f.txt", "--at", "yesterday")
    assert nonsense.returncode == 2 and "expected a time in ISO 8601" in output(nonsense)
    assert (box.source / "f.txt").read_text() == "first"


def test_a_newer_file_refuses_the_whole_restore_until_forced(box):
    tree(box.source, {"proj/a.txt": "old a", "proj/b.txt": "old b", "proj/c.txt": "c"})
    box.sync(V1)
    (box.source / "proj" / "a.txt").unlink()
    (box.source / "proj" / "b.txt").write_text("new b, written after the version")
    (box.source / "proj" / "mine.txt").write_text("not in the version")

    refused = box.restore("proj", "--at", "2026-11-21")
    assert refused.returncode == 75, output(refused)
    assert "1 file is newer" in refused.stdout and "nothing was written" in refused.stdout
    assert f"newer in the target, left alone: {box.source}/proj/b.txt" in refused.stdout
    assert not (box.source / "proj" / "a.txt").exists(), "the preflight refused before writing anything"

    dry = box.restore("proj", "--at", "2026-11-21", "--force", "--dry-run")
    assert dry.returncode == 0 and "dry run: would restore proj" in dry.stdout, output(dry)
    assert "overwritten (--force): " in dry.stdout and not (box.source / "proj" / "a.txt").exists()

    forced = box.restore("proj", "--at", "2026-11-21", "--force")
    assert forced.returncode == 0, output(forced)
    assert "2 files, 1 directory, 0 links, 1 already as in the version" in forced.stdout
    assert {p.name: p.read_text() for p in (box.source / "proj").iterdir()} == {
        "a.txt": "old a", "b.txt": "old b", "c.txt": "c", "mine.txt": "not in the version"}


def test_a_restore_into_another_directory(box, tmp_path):
    tree(box.source, {"proj/a.txt": "a", "proj/sub/b.txt": "b"})
    box.sync(V1)
    (box.source / "proj" / "a.txt").write_text("changed")
    out = tmp_path / "restored"
    out.mkdir()
    result = box.restore("proj", "--at", "2026-11-21", "--to", str(out))
    assert result.returncode == 0, output(result)
    assert snapshot(out / "proj") == {"a.txt": b"a", "sub/b.txt": b"b"}
    assert (box.source / "proj" / "a.txt").read_text() == "changed"

    into_backup = box.restore("proj", "--at", "2026-11-21", "--to", str(box.destination))
    assert into_backup.returncode == 2 and "lies in the destination" in output(into_backup)
    (tmp_path / "via-link").symlink_to(out)
    through_link = box.restore("proj/a.txt", "--at", "2026-11-21", "--to", str(tmp_path / "via-link"))
    assert through_link.returncode == 2 and f"{tmp_path}/via-link is a symbolic link" in output(through_link)
    missing = box.restore("proj", "--at", "2026-11-21", "--to", str(tmp_path / "absent"))
    assert missing.returncode == 2 and "no such directory" in output(missing)


def test_a_link_planted_in_the_target_is_never_followed(box, tmp_path):
    tree(box.source, {"sub/inner/f.txt": "version's", "dir/x.txt": "x", "file.txt": "version's file"})
    box.sync(V1)
    outside = tmp_path / "outside"
    tree(outside, {"secret.txt": "secret"})
    subprocess.run(["rm", "-r", str(box.source / "sub")], check=True)
    (box.source / "sub").symlink_to(outside)  # a share user's link in place of a directory
    planted_parent = box.restore("sub/inner/f.txt", "--at", "2026-11-21", "--force")
    assert planted_parent.returncode == 1, output(planted_parent)
    assert f"{box.source}/sub is a symbolic link" in planted_parent.stdout
    assert "nothing was written" in planted_parent.stdout

    subprocess.run(["rm", "-r", str(box.source / "dir")], check=True)
    (box.source / "dir").symlink_to(outside)  # the directory restored is itself a link now
    in_the_way = box.restore("dir", "--at", "2026-11-21", "--force")
    assert in_the_way.returncode == 1 and "in the way" in in_the_way.stdout, output(in_the_way)

    (box.source / "file.txt").unlink()
    (box.source / "file.txt").symlink_to(outside / "secret.txt")
    os.utime(box.source / "file.txt", (1_000_000_000,) * 2, follow_symlinks=False)  # older than the version's
    replaced = box.restore("file.txt", "--at", "2026-11-21")
    assert replaced.returncode == 0, output(replaced)
    assert not (box.source / "file.txt").is_symlink() and (box.source / "file.txt").read_text() == "version's file"
    assert snapshot(outside) == {"secret.txt": b"secret"} and outside.stat().st_nlink == 2


def test_links_swapped_in_while_restoring_never_lead_outside(box, tmp_path):
    tree(box.source, {f"big/d{i:03}/f{j}.bin": "x" * 20_000 for i in range(150) for j in range(4)})
    box.sync(V1)
    subprocess.run(["rm", "-r", str(box.source / "big")], check=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = box.source / "big"
    swaps = 0
    done = threading.Event()

    def attack() -> None:  # a share user swapping each directory restored for a link to outside
        nonlocal swaps
        while not done.is_set():
            for i in range(150):
                directory = target / f"d{i:03}"
                try:
                    directory.rename(target / f"moved{i:03}")
                    directory.symlink_to(outside)
                    swaps += 1
                except OSError:
                    pass

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        result = box.restore("big", "--at", "2026-11-21")
    finally:
        done.set()
        attacker.join()
    assert swaps > 0, "the attack never ran during the restore"
    assert os.listdir(outside) == [], output(result)
    assert result.returncode in (0, 1), output(result)
    if result.returncode == 1:
        assert "restored before it" in result.stdout
        assert "is a symbolic link" in result.stdout or "was moved away or removed" in result.stdout
    for path in box.source.rglob("*"):  # every file restored went into a directory of the source
        assert path.is_symlink() or os.path.realpath(path).startswith(str(box.source))


def test_symlinks_in_a_version_are_restored_as_links_and_never_followed(box, tmp_path):
    outside = tmp_path / "outside"
    tree(outside, {"secret.txt": "secret"})
    tree(box.source, {"links/plain.txt": "p"})
    (box.source / "links" / "to-file").symlink_to(outside / "secret.txt")
    (box.source / "links" / "to-dir").symlink_to(outside)
    (box.source / "links" / "relative").symlink_to("plain.txt")
    box.sync(V1)
    subprocess.run(["rm", "-r", str(box.source / "links")], check=True)

    result = box.restore("links", "--at", "2026-11-21")
    assert result.returncode == 0 and "1 file, 1 directory, 3 links" in result.stdout, output(result)
    assert os.readlink(box.source / "links" / "to-file") == str(outside / "secret.txt")
    assert os.readlink(box.source / "links" / "to-dir") == str(outside)
    assert os.readlink(box.source / "links" / "relative") == "plain.txt"
    through = box.restore("links/to-dir/secret.txt", "--at", "2026-11-21", "--to", str(tmp_path))
    assert through.returncode == 2, output(through)
    assert "links/to-dir/secret.txt is not in the version @GMT-2026.11.20-08.00.00" in output(through)
    listed = box.nasbox("versions", "docs", "links/to-dir/secret.txt")
    assert listed.returncode == 0 and "is in none of the 1 versions" in listed.stdout, output(listed)
    assert not (tmp_path / "secret.txt").exists()
    assert snapshot(outside) == {"secret.txt": b"secret"}


def test_a_path_with_dotdot_outside_the_job_or_empty_is_a_usage_error(box):
    tree(box.source, {"a.txt": "a"})
    box.sync(V1)
    for path, said in (("../docs/a.txt", "without '..'"), ("x/../../etc/passwd", "without '..'"),
                       ("/etc/passwd", "lies outside the source"), ("", "without '..'"),
                       (str(box.source), "names the whole tree"),
                       (".nasbox-versions/@GMT-2026.11.20-08.00.00/a.txt", "lies in the versions")):
        result = box.restore(path, "--at", "2026-11-21")
        assert result.returncode == 2 and said in output(result), (path, output(result))
    (box.source / "a.txt").unlink()
    absolute = box.restore(str(box.source / "a.txt"), "--at", "2026-11-21")
    assert absolute.returncode == 0 and (box.source / "a.txt").read_text() == "a", output(absolute)
    (box.source / "a.txt").unlink()
    in_backup = box.restore(str(box.destination / "a.txt"), "--at", "2026-11-21")
    assert in_backup.returncode == 0 and (box.source / "a.txt").read_text() == "a", output(in_backup)


def digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))


def owned_by_root(path: Path) -> bool:
    try:
        return path.lstat().st_uid == 0
    except FileNotFoundError:  # renamed into place meanwhile
        return False


def test_a_kill_9_mid_restore_leaves_the_old_file_or_the_new_one_and_the_next_restore_completes(box):
    big = box.source / "big.bin"
    write_random(big, 384 << 20)
    os.utime(big, (1_600_000_000,) * 2)
    box.sync(V1)
    wanted = digest(big)
    write_random(big, 384 << 20)  # encrypted after the version
    current = digest(big)
    (box.source / ".nasbox-restore.0123456789abcdef").write_text("a user's file that looks like a leftover")
    os.chown(box.source / ".nasbox-restore.0123456789abcdef", 1234, 1234)

    before = big.stat()
    restore = subprocess.Popen([sys.executable, "-m", "nasbox", "restore", "docs", "big.bin", "--at", "2026-11-21",
                                "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=box.env())
    try:
        deadline = time.monotonic() + 60
        temporary: list[Path] = []
        touched = False  # the target itself written to or replaced
        while not (temporary or touched) and time.monotonic() < deadline and restore.poll() is None:
            temporary = [p for p in box.source.iterdir() if TEMP_NAME.fullmatch(p.name) and owned_by_root(p)]
            now = big.stat()
            touched = (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns)
        assert restore.poll() is None, "the restore ended before it could be killed"
        os.kill(restore.pid, signal.SIGKILL)
    finally:
        restore.wait()
    assert digest(big) == current, "the old file, whole"
    assert temporary and temporary[0].stat().st_size < big.stat().st_size, "killed while copying"

    again = box.restore("big.bin", "--at", "2026-11-21", "--force")
    assert again.returncode == 0, output(again)
    assert "temporary files of an interrupted restore removed: 1" in again.stdout
    assert digest(big) == wanted
    assert leftovers(box.source) == [".nasbox-restore.0123456789abcdef"], "a user's file is never removed"


def test_a_sparse_file_stays_sparse(box):
    sparse = box.source / "disk.img"
    with open(sparse, "wb") as f:
        f.write(b"head")
        f.seek(512 << 20)
        f.write(b"middle")
        f.truncate(1 << 30)
    # rsync (without --sparse) writes holes out as zeros: a destination seeded with a sparse
    # copy, which rsync then leaves as it is, gives a version with holes.
    box.destination.mkdir()
    subprocess.run(["cp", "--sparse=always", "-p", str(sparse), str(box.destination)], check=True)
    box.sync(V1)
    assert (box.version(V1) / "disk.img").stat().st_blocks * 512 < 1 << 20
    sparse.unlink()
    result = box.restore("disk.img", "--at", "2026-11-21")
    assert result.returncode == 0, output(result)
    assert sparse.stat().st_size == 1 << 30 and sparse.stat().st_blocks * 512 < 1 << 20
    with open(sparse, "rb") as f:
        assert f.read(4) == b"head"
        f.seek(512 << 20)
        assert f.read(7) == b"middle\0"


def test_versions_lists_where_a_path_changed_and_the_history_keeps_each_restore(box):
    tree(box.source, {"f.txt": "one", "same.txt": "s"})
    os.utime(box.source / "f.txt", (1_600_000_000,) * 2)
    box.sync(V1)
    (box.source / "f.txt").write_text("two")
    os.utime(box.source / "f.txt", (1_600_000_500,) * 2)
    box.sync(V2)
    (box.source / "g.txt").write_text("new")
    box.sync(V3)

    every = box.nasbox("versions", "docs")
    assert every.returncode == 0, output(every)
    assert every.stdout.splitlines()[2:] == ["@GMT-2026.11.21-09.00.00  2026-11-21 10:00:00 CET",
                                             "@GMT-2026.11.20-12.00.00  2026-11-20 13:00:00 CET",
                                             "@GMT-2026.11.20-08.00.00  2026-11-20 09:00:00 CET"]
    listed = box.nasbox("versions", "docs", "f.txt", "--json")
    assert listed.returncode == 0, output(listed)
    data = json.loads(listed.stdout)
    assert [(v["name"], v["change"], v["size"]) for v in data["versions"]] == [
        ("@GMT-2026.11.21-09.00.00", "same", 3), ("@GMT-2026.11.20-12.00.00", "changed", 3),
        ("@GMT-2026.11.20-08.00.00", None, 3)]
    assert data["versions"][2]["modified"] == "2020-09-13T14:26:40+02:00"
    text = box.nasbox("versions", "docs", str(box.source / "g.txt"))
    assert "g.txt is in 1 of the 3 versions" in text.stdout and text.stdout.rstrip().endswith("added")
    assert "is in none of the 3 versions" in box.nasbox("versions", "docs", "absent.txt").stdout
    unknown = box.nasbox("versions", "nosuch")
    assert unknown.returncode == 2 and "no sync job named nosuch; sync jobs that keep versions: docs" in output(unknown)
    plain = box.nasbox("versions", "plain")
    assert plain.returncode == 2 and "sync job plain keeps no versions" in output(plain)

    (box.source / "f.txt").write_text("three")
    assert box.restore("f.txt", "--at", "2026-11-20T12:00Z").returncode == 75
    assert box.restore("f.txt", "--at", "2026-11-20T12:00Z", "--force").returncode == 0
    history = History()
    try:
        last = history.last("restore", "docs")
        assert history.count("restore", "docs") == 2
    finally:
        history.close()
    assert last is not None and last.status == "good"
    assert last.summary.startswith("restored f.txt as of @GMT-2026.11.20-12.00.00 (2026-11-20 13:00:00 CET)")
    assert "1 file" in last.summary
    log = Path(os.environ["NASBOX_HOME"]) / "logs" / "restore-docs.log"
    assert "restored f.txt as of @GMT-2026.11.20-12.00.00" in log.read_text()


def test_a_restore_waits_for_the_running_sync_or_exits_75(box):
    tree(box.source, {"a.txt": "a"})
    box.sync(V1)
    (box.source / "a.txt").unlink()
    with job_lock("sync", "docs", wait=True):  # as a running sync holds it
        busy = box.restore("a.txt", "--at", "2026-11-21", "--no-wait")
    assert busy.returncode == 75 and "sync docs is running already" in output(busy)
    assert not (box.source / "a.txt").exists()


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=False)


def test_a_full_disk_stops_a_restore_and_leaves_no_part_of_a_file(box, small_tmpfs):
    tree(box.source, {"small.txt": "small " * 10_000})
    write_random(box.source / "large.bin", 4 << 20)
    box.sync(V1)
    small = box.restore("small.txt", "--at", "2026-11-21", "--to", str(small_tmpfs))  # onto another filesystem
    assert small.returncode == 0, output(small)
    assert (small_tmpfs / "small.txt").read_text() == "small " * 10_000
    full = box.restore("large.bin", "--at", "2026-11-21", "--to", str(small_tmpfs))
    assert full.returncode == 1, output(full)
    assert "stopped: No space left on device" in full.stdout
    assert sorted(os.listdir(small_tmpfs)) == ["small.txt"], "no part of the large file is left"
    history = History()
    try:
        last = history.last("restore", "docs")
    finally:
        history.close()
    assert last is not None and last.status == "error" and "No space left on device" in (last.summary or "")


@pytest.fixture
def btrfs(tmp_path: Path):
    image, mountpoint = tmp_path / "btrfs.img", tmp_path / "btrfs"
    subprocess.run(["truncate", "-s", "256M", str(image)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", "-f", str(image)], check=True)
    mountpoint.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=False)


def test_a_restore_from_a_btrfs_snapshot_is_a_file_of_its_own(btrfs):
    box = Box(btrfs)
    subprocess.run(["btrfs", "-q", "subvolume", "create", str(box.destination)], check=True)
    write_random(box.source / "data.bin", 8 << 20)
    wanted = digest(box.source / "data.bin")
    box.sync(V1)
    snapshot_file = box.version(V1) / "data.bin"
    assert snapshot_file.stat().st_dev != (box.destination / "data.bin").stat().st_dev, "a snapshot, not a linked tree"
    (box.source / "data.bin").unlink()
    result = box.restore("data.bin", "--at", "2026-11-21")
    assert result.returncode == 0, output(result)
    assert digest(box.source / "data.bin") == wanted
    with open(box.source / "data.bin", "r+b") as f:  # the restored file is the user's to change
        f.write(b"changed")
    assert digest(snapshot_file) == wanted
