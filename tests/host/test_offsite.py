"""Offsite jobs against real restic and real servers on loopback (tests/support/offsite.py):
a local repository, a REST server (rclone serve restic), S3 (moto's server), SFTP (OpenSSH in
a container, its host key pinned) and rclone (restic's rclone back end to a WebDAV server).
Each back end gets the same life: backups, changes and deletions, a restore as of an earlier
snapshot, pruning, a check that reads the data back, the server going away mid-run, a wrong
password."""
from __future__ import annotations

import argparse

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox import state
from nasbox.actions.restore import restore_with
from nasbox.config import load_config
from nasbox.config.model import Config
from nasbox.jobs import run_job
from nasbox.offsite import restic_cmds, restore
from nasbox.offsite.restore import FETCHED
from nasbox.offsite.engine import Offsite
from nasbox.offsite.kind import OffsiteJob
from nasbox.result import JobResult
from tests.host.test_notify import Recorder, http  # noqa: F401 (a fixture)
from tests.support.files import tree
from tests.support.rawdisk import loop_mount, mount_again, unmount
from tests.support.offsite import (
    Backend,
    RcloneBackend,
    RestBackend,
    S3Backend,
    SftpBackend,
    build_sftp_image,
    restic_of_image,
)

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "repo-Pa55-word-7yQ"
BACKENDS = ["local", "rest", "s3", "sftp", "rclone"]


@pytest.fixture(scope="session")
def image_restic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the image's restic (0.18), to put first on PATH."""
    if shutil.which("docker") is None:
        pytest.fail("the image's restic is taken from the image: the docker CLI is missing (run .ci/setup)")
    directory = tmp_path_factory.mktemp("image-restic")
    restic_of_image(os.environ.get("NASBOX_TEST_IMAGE", "nasbox:latest"), directory)
    return directory


@pytest.fixture(params=["debian12", "image"])
def restic_version(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the host's restic (Debian 12: 0.14, exit 1 for most failures) and with the
    image's (Debian 13: 0.18, exit codes 10, 11, 12), whose outputs nasbox reads apart."""
    if request.param == "image":
        monkeypatch.setenv("PATH", f"{request.getfixturevalue('image_restic')}:{os.environ['PATH']}")
    version = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True).stdout
    assert ("0.14." in version) == (request.param == "debian12"), version
    return request.param


@pytest.fixture(scope="session")
def sftp_image() -> None:
    if shutil.which("docker") is None:
        pytest.fail("the SFTP server runs in a container: the docker CLI is missing (run .ci/setup)")
    build_sftp_image()


def start_backend(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    if name == "local":
        return Backend("local", str(tmp_path / "repo"))
    if name == "rest":
        return RestBackend(tmp_path / "rest")
    if name == "s3":
        return S3Backend()
    if name == "rclone":
        return RcloneBackend(tmp_path / "webdav")
    request.getfixturevalue("sftp_image")
    return SftpBackend(tmp_path / "sftp")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    started = start_backend(request.param, tmp_path, request)
    try:
        yield started
    finally:
        stop = getattr(started, "stop", None)
        if stop:
            stop()


def source_of(tmp_path: Path) -> Path:
    source = tmp_path / "data"
    source.mkdir(exist_ok=True)
    return source


def config_for(backend: Backend, tmp_path: Path, password: str = PASSWORD, **options: str) -> Config:
    return load_config({"NASBOX_CONFIG": "/dev/null",
                        **backend.environ("DOCS", source_of(tmp_path), password, **options)})


def job_of(config: Config) -> OffsiteJob:
    return config.jobs["offsite"]["docs"]


def run(config: Config, **options: bool) -> JobResult:
    return Offsite(job_of(config), config, **options).run()


def restore_from(config: Config, path: str, at: str, to: str | None = None, force: bool = False) -> int:
    """`nasbox restore docs PATH --from offsite --at AT`, as the command runs it."""
    args = argparse.Namespace(job="docs", path=path, at=at, to=to, force=force, dry_run=False, no_wait=False,
                              origin="offsite")
    return restore_with(config, args)


def ids(config: Config) -> list[str]:
    return [s.id for s in restore.snapshots(config, job_of(config))]


def set_mtime(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


# --- the life of a backup, on every back end ---------------------------------------------

def test_backup_change_restore_prune_and_check(backend: Backend, tmp_path: Path) -> None:
    source = source_of(tmp_path)
    tree(source, {"keep.txt": "kept", "edit.txt": "version 1", "gone.txt": "bye", "sub/deep.txt": "deep"})
    for name in ("keep.txt", "edit.txt", "gone.txt", "sub/deep.txt"):
        set_mtime(source / name, 3600)
    config = config_for(backend, tmp_path, KEEP="last=2", CHECK="daily 100%")

    first = run(config)
    assert (first.status, first.exit_code) == ("good", 0), first.summary
    assert first.stats["files_new"] == 4 and "created the repository" in " ".join(first.details)

    (source / "edit.txt").write_text("version 2, longer")
    (source / "gone.txt").unlink()
    (source / "new.txt").write_text("new")
    second = run(config)
    assert second.status == "good", second.summary
    assert (second.stats["files_new"], second.stats["files_changed"], second.stats["files_dropped"]) == (1, 1, 1)
    assert "1 files new, 1 changed, 1 dropped" in second.summary

    snapshots = restore.snapshots(config, job_of(config))
    assert len(snapshots) == 2 and snapshots[0].time <= snapshots[1].time
    first_snapshot = snapshots[0]
    # A deleted file comes back as it was in the first snapshot, in place.
    assert restore_from(config, "gone.txt", first_snapshot.id) == 0
    assert (source / "gone.txt").read_text() == "bye"
    # The file edited since is newer than the first snapshot's: refused, unless forced.
    assert restore_from(config, "edit.txt", first_snapshot.short_id) == 75
    assert (source / "edit.txt").read_text() == "version 2, longer"
    assert restore_from(config, "edit.txt", first_snapshot.id, force=True) == 0
    assert (source / "edit.txt").read_text() == "version 1"
    # A directory into a directory of the user's choice, chosen by time.
    elsewhere = tmp_path / "restored"
    elsewhere.mkdir()
    assert restore_from(config, "sub", first_snapshot.time.isoformat(), to=str(elsewhere)) == 0
    assert (elsewhere / "sub" / "deep.txt").read_text() == "deep"
    assert [p.name for p in elsewhere.iterdir()] == ["sub"]
    assert not any((state.state_dir() / FETCHED).iterdir())  # restic's copy is gone

    third = run(config)  # the restores changed the source: a third snapshot, the first falls out (last=2)
    assert third.status == "good", third.summary
    assert "forgot 1 snapshot(s) (last=2)" in third.details and "pruned the data no snapshot uses" in third.details
    remaining = ids(config)
    assert len(remaining) == 2 and first_snapshot.id not in remaining

    checked = run(config, check=True)
    assert checked.status == "good", checked.summary
    assert "read back 100% of the data" in checked.summary


def test_check_reads_the_data_back_and_finds_damage(restic_version: str, tmp_path: Path) -> None:
    backend = Backend("local", str(tmp_path / "repo"))
    tree(source_of(tmp_path), {f"f{i}.bin": os.urandom(4096).hex() for i in range(20)})
    config = config_for(backend, tmp_path, CHECK="weekly 100%")
    assert run(config).status == "good"
    assert run(config, check=True).status == "good"
    pack = max((p for p in (tmp_path / "repo" / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit in the middle of the data
    pack.write_bytes(bytes(data))
    damaged = run(config, check=True)
    assert (damaged.status, damaged.exit_code) == ("error", 1), damaged.summary
    assert "check found problems, read back 100% of the data" in damaged.summary


# --- the server goes away -----------------------------------------------------------------

@pytest.mark.parametrize("backend", ["rest", "s3", "sftp", "rclone"], indirect=True)
def test_server_down_mid_run_is_an_error_notified_and_the_next_run_completes(
        backend: Backend, tmp_path: Path, http: Recorder) -> None:  # noqa: F811 (the fixture)
    source = source_of(tmp_path)
    tree(source, {"early.txt": "from the first run"})
    hook = {"NOTIFY_HOOK": f"webhook {http.url('/hook')}"}
    env = {"NASBOX_CONFIG": "/dev/null", **hook, **backend.environ("DOCS", source, PASSWORD)}
    config = load_config(env)
    first = run_job(config, "offsite", "docs", "now", True, lambda: run(config))
    assert first.status == "good", first.summary
    before = ids(config)

    for i in range(16):  # 32 MiB uploaded at 1 MiB/s: still sending when the server goes
        (source / f"big{i}.bin").write_bytes(os.urandom(2 << 20))
    slow = load_config({**env, "OFFSITE_DOCS_BWLIMIT": "1M", "OFFSITE_DOCS_TIMEOUT": "15s"})
    results: list[JobResult] = []
    running = threading.Thread(target=lambda: results.append(
        run_job(slow, "offsite", "docs", "now", True, lambda: run(slow))))
    running.start()
    time.sleep(3)
    with backend.down():
        running.join(timeout=120)
    assert not running.is_alive()
    failed = results[0]
    assert (failed.status, failed.exit_code) == ("error", 1), failed.summary
    sent = [r.json() for r in http.requests if r.path == "/hook"]
    assert sent[-1]["status"] == "error" and sent[-1]["message"] == failed.summary
    assert not any(secret in json.dumps(sent) for secret in (PASSWORD, *backend.secrets))

    again = run_job(config, "offsite", "docs", "now", True, lambda: run(config))
    assert again.status == "good", (again.summary, again.details)
    assert again.stats["files_new"] + again.stats["files_unmodified"] == 17
    after = ids(config)
    assert set(before) <= set(after)  # nothing of the repository was lost
    checked = run(load_config({**env, "OFFSITE_DOCS_CHECK": "daily 100%"}), check=True)
    assert checked.status == "good", checked.summary
    elsewhere = tmp_path / "restored"
    elsewhere.mkdir()
    first_snapshot = next(s for s in restore.snapshots(config, job_of(config)) if s.id == before[0])
    assert restore_from(config, "early.txt", first_snapshot.id, to=str(elsewhere)) == 0
    assert (elsewhere / "early.txt").read_text() == "from the first run"


# --- passwords -----------------------------------------------------------------------------

def test_wrong_password_is_a_clear_error_and_creates_nothing(backend: Backend, tmp_path: Path) -> None:
    tree(source_of(tmp_path), {"a.txt": "a"})
    right = config_for(backend, tmp_path)
    assert run(right).status == "good"
    before = ids(right)
    wrong = config_for(backend, tmp_path, password="not-the-Pa55word")
    result = run(wrong)
    assert (result.status, result.exit_code) == ("error", 1)
    assert "wrong password" in result.summary and "nothing was sent" in result.summary
    assert "not-the-Pa55word" not in result.summary + " ".join(result.details)
    assert ids(right) == before  # the repository is the one it was: no new one, no snapshot


def test_a_first_run_with_a_wrong_password_never_creates_over_an_existing_repository(restic_version: str, tmp_path: Path) -> None:
    """The state of the first run is lost (a new /config): the repository is there, made
    with another password. Not missing: an error, and the repository is untouched."""
    backend = Backend("local", str(tmp_path / "repo"))
    tree(source_of(tmp_path), {"a.txt": "a"})
    assert run(config_for(backend, tmp_path)).status == "good"
    config_file = tmp_path / "repo" / "config"
    made = (config_file.read_bytes(), sorted(p.name for p in (tmp_path / "repo" / "keys").iterdir()))
    shutil.rmtree(os.environ["NASBOX_HOME"])
    result = run(config_for(backend, tmp_path, password="another-pass-99"))
    assert result.status == "error" and "wrong password" in result.summary
    assert (config_file.read_bytes(), sorted(p.name for p in (tmp_path / "repo" / "keys").iterdir())) == made


# --- SFTP host keys ------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sftp"], indirect=True)
def test_sftp_host_key_is_pinned_and_a_changed_key_refused(backend: SftpBackend, tmp_path: Path) -> None:
    tree(source_of(tmp_path), {"a.txt": "a"})
    config = config_for(backend, tmp_path)
    assert run(config).status == "good"
    before = ids(config)
    (source_of(tmp_path) / "b.txt").write_text("b")
    new_key = backend.start_with_new_host_key()  # the same address, another machine (or an attacker)
    refused = run(config)
    # ssh's own words come through restic when it relays them before it exits: not always.
    assert refused.status == "error" and "unable to start the sftp session" in refused.summary
    backend.known_hosts.write_text("")  # a host not pinned at all: refused too, never trusted on first use
    unknown = run(config)
    assert unknown.status == "error" and "unable to start the sftp session" in unknown.summary
    assert backend.known_hosts.read_text() == ""  # nothing was learned
    backend.pin(new_key)  # the user checked the new key and pins it
    assert ids(config) == before  # nothing reached the server meanwhile
    assert run(config).status == "good"


# --- guards ----------------------------------------------------------------------------------

def test_missing_or_empty_source_or_a_mount_down_is_skipped_and_sends_nothing(tmp_path: Path) -> None:
    backend = Backend("local", str(tmp_path / "disk" / "repo"))
    (tmp_path / "disk").mkdir()
    missing = run(load_config({"NASBOX_CONFIG": "/dev/null",
                               "OFFSITE_DOCS": f"{tmp_path}/nope {backend.repository} daily",
                               "OFFSITE_DOCS_PASSWORD": PASSWORD}))
    assert (missing.skipped, missing.exit_code) == (True, 75) and "source" in missing.summary
    empty = run(config_for(backend, tmp_path))
    assert empty.exit_code == 75 and "is empty" in empty.summary
    assert not (tmp_path / "disk" / "repo").exists()

    tree(source_of(tmp_path), {"a.txt": "a"})
    unplugged = Backend("local", str(tmp_path / "unplugged" / "repo"))  # its disk did not mount
    result = run(config_for(unplugged, tmp_path))
    assert result.exit_code == 75 and "parent directory of the repository" in result.summary
    mountpoint = tmp_path / "nas"
    mountpoint.mkdir()
    on_mount = Backend("local", str(mountpoint / "repo"))
    result = run(load_config({"NASBOX_CONFIG": "/dev/null", "MOUNT_NAS": f"{mountpoint} 127.0.0.1 u:p share /",
                              **on_mount.environ("DOCS", source_of(tmp_path), PASSWORD)}))
    assert result.exit_code == 75 and "mount nas" in result.summary and "not mounted" in result.summary
    assert list(mountpoint.iterdir()) == []  # no repository created in the empty mountpoint


def test_a_backup_that_drops_too_many_files_is_held_until_forced(restic_version: str, tmp_path: Path) -> None:
    backend = Backend("local", str(tmp_path / "repo"))
    source = source_of(tmp_path)
    tree(source, {f"doc{i:02}.txt": f"document {i}" for i in range(20)})
    config = config_for(backend, tmp_path, KEEP="last=1")
    assert run(config).status == "good"
    kept = ids(config)
    for i in range(15):  # a disk half gone, a folder deleted by mistake: 15 of 20 files
        (source / f"doc{i:02}.txt").unlink()
    held = run(config)
    assert (held.status, held.exit_code, held.skipped) == ("warning", 75, True)
    assert "would drop 15 of the 20 files" in held.summary and "--force" in held.summary
    assert ids(config) == kept  # the held snapshot is forgotten; keep=last 1 forgot nothing
    again = run(config)
    assert again.exit_code == 75 and "held since" in again.summary
    (source / "doc00.txt").write_text("back")  # the user looked, and goes on
    forced = run(config, force=True)
    assert forced.status == "good" and "the hold was released (--force)" in forced.details
    assert forced.stats["files_dropped"] == 14
    assert run(config).status == "good"  # released for good


def test_a_held_job_approves_no_more_than_the_hold_counted(tmp_path: Path) -> None:
    backend = Backend("local", str(tmp_path / "repo"))
    source = source_of(tmp_path)
    tree(source, {f"doc{i:02}.txt": "x" for i in range(20)})
    config = config_for(backend, tmp_path)
    assert run(config).status == "good"
    for i in range(12):
        (source / f"doc{i:02}.txt").unlink()
    assert run(config).exit_code == 75
    for i in range(12, 20):  # the source lost even more since the hold
        (source / f"doc{i:02}.txt").unlink()
    (source / "other.txt").write_text("y")
    forced = run(config, force=True)
    assert forced.exit_code == 75 and "would drop 20 of the 20 files" in forced.summary
    assert "counted 12" in forced.summary


# --- locks left by killed runs ---------------------------------------------------------------

def restic_locks(repository: Path) -> list[str]:
    return sorted(p.name for p in (repository / "locks").iterdir())


def test_the_lock_of_a_killed_run_is_removed_and_only_that_one(restic_version: str, tmp_path: Path, monkeypatch) -> None:
    backend = Backend("local", str(tmp_path / "repo"))
    source = source_of(tmp_path)
    tree(source, {"a.txt": "a"})
    config = config_for(backend, tmp_path, KEEP="last=1")
    assert run(config).status == "good"
    for i in range(8):
        (source / f"big{i}.bin").write_bytes(os.urandom(8 << 20))
    cut = run(load_config({"NASBOX_CONFIG": "/dev/null", **backend.environ(
        "DOCS", source, PASSWORD, KEEP="last=1", BWLIMIT="1M", TIMEOUT="3s")}))
    assert cut.status == "error" and "did not finish within 3 s" in cut.summary
    assert len(restic_locks(tmp_path / "repo")) == 1  # restic was killed: its lock stays

    again = run(config)
    assert again.status == "good", (again.summary, again.details)
    assert any(d.startswith("removed the stale lock of a killed run of nasbox") for d in again.details)
    assert "forgot 1 snapshot(s) (last=1)" in again.details  # forget and prune ran: not locked
    assert restic_locks(tmp_path / "repo") == []


def test_a_stale_lock_that_is_not_nasbox_s_is_left_alone(restic_version: str, tmp_path: Path, monkeypatch) -> None:
    from nasbox.offsite import stale
    monkeypatch.setattr(stale, "CLOCK_SKEW_S", 0)
    backend = Backend("local", str(tmp_path / "repo"))
    source = source_of(tmp_path)
    tree(source, {"a.txt": "a"})
    config = config_for(backend, tmp_path, KEEP="last=1")
    assert run(config).status == "good"
    # Someone ran restic on this machine by hand, and it was killed: a stale lock, not nasbox's.
    env = {**os.environ, "RESTIC_REPOSITORY": str(tmp_path / "repo"), "RESTIC_PASSWORD": PASSWORD}
    (source / "big.bin").write_bytes(os.urandom(64 << 20))
    by_hand = subprocess.Popen(["restic", "backup", "--limit-upload", "1024", "--host", "by-hand", str(source)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not restic_locks(tmp_path / "repo") and time.monotonic() < deadline:
        time.sleep(0.05)
    by_hand.kill()
    by_hand.wait()
    foreign = restic_locks(tmp_path / "repo")
    assert len(foreign) == 1
    time.sleep(1.1)  # nasbox's run starts after it
    cut = run(load_config({"NASBOX_CONFIG": "/dev/null", **backend.environ(
        "DOCS", source, PASSWORD, KEEP="last=1", BWLIMIT="1M", TIMEOUT="3s")}))
    assert cut.status == "error"
    assert len(restic_locks(tmp_path / "repo")) == 2

    again = run(config)
    assert any("`restic unlock` would also remove stale locks of other processes" in d for d in again.details)
    assert set(foreign) <= set(restic_locks(tmp_path / "repo"))  # neither lock was removed
    assert again.status == "warning" and "the retention failed" in again.summary  # forget met the locks


# --- secrets ---------------------------------------------------------------------------------

def watch_restic(seen: list[tuple[str, str]], stop: threading.Event,
                 programs: tuple[bytes, ...] = (b"restic",)) -> None:
    """Every restic process's command line and environment (and those of the other programs
    named), as `ps` and /proc show them."""
    while not stop.is_set():
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if os.path.basename(argv[0]) in programs:
                    seen.append((b" ".join(argv).decode(errors="replace"),
                                 Path(f"/proc/{entry}/environ").read_bytes().decode(errors="replace")))
            except OSError:
                continue
        time.sleep(0.005)


def test_secrets_never_in_argv_logs_config_show_history_or_notifications(
        tmp_path: Path, http: Recorder) -> None:  # noqa: F811 (the fixture)
    rest_password = "rest-Basic-Auth-pw-31"
    rest = RestBackend(tmp_path / "rest", auth=("nasbox", rest_password))
    s3 = S3Backend()
    try:
        source = source_of(tmp_path)
        tree(source, {f"f{i}.txt": str(i) * 1000 for i in range(200)})
        secrets = (PASSWORD, rest_password, *s3.secrets)
        env = {**os.environ, "NASBOX_CONFIG": "/dev/null", "PYTHONPATH": str(REPO), "LOG_LEVEL": "debug",
               "NOTIFY_HOOK": f"webhook {http.url('/hook')}",
               **rest.environ("REST", source, PASSWORD), **s3.environ("S3", source, PASSWORD)}
        seen: list[tuple[str, str]] = []
        stop = threading.Event()
        watcher = threading.Thread(target=watch_restic, args=(seen, stop))
        watcher.start()
        try:
            outputs = [subprocess.run([sys.executable, "-m", "nasbox", "offsite", "--now"], env=env,
                                      capture_output=True, text=True, timeout=300)]
            wrong = {**env, "OFFSITE_REST_PASSWORD": "wrong-" + PASSWORD, "OFFSITE_S3_PASSWORD": "wrong-" + PASSWORD}
            outputs.append(subprocess.run([sys.executable, "-m", "nasbox", "offsite", "--now"], env=wrong,
                                          capture_output=True, text=True, timeout=300))
        finally:
            stop.set()
            watcher.join()
        assert outputs[0].returncode == 0, outputs[0].stdout + outputs[0].stderr
        assert outputs[1].returncode == 1 and "wrong password" in outputs[1].stdout
        assert "running restic" in outputs[0].stdout  # the debug log shows restic's command lines
        shown = subprocess.run([sys.executable, "-m", "nasbox", "config", "show", "--json"], env=env,
                               capture_output=True, text=True, timeout=60)
        home = Path(os.environ["NASBOX_HOME"])
        texts = {
            "output": "".join(o.stdout + o.stderr for o in outputs),
            "config show": shown.stdout,
            "logs": "".join(p.read_text(errors="replace") for p in (home / "logs").iterdir()),
            "history": "".join(map(str, sqlite3.connect(home / "state" / "history.sqlite").execute(
                "SELECT summary, details, stats FROM runs").fetchall())),
            "state": "".join(p.read_text(errors="replace") for p in (home / "state").glob("*.json")),
            "notifications": json.dumps([r.json() for r in http.requests]),
            "argv": " ".join(argv for argv, _ in seen),
        }
        assert seen, "no restic process was seen running"
        for where, text in texts.items():
            for secret in secrets:
                assert secret not in text, f"{secret!r} in {where}"
        assert json.loads(shown.stdout)["jobs"]["offsite"]["rest"]["repository"].startswith("rest:http://nasbox:***@")
        for _, environ in seen:  # the password reaches restic through a pipe only, nasbox's variables never
            assert "RESTIC_PASSWORD_FILE=/dev/fd/" in environ and "OFFSITE_" not in environ
    finally:
        rest.stop()
        s3.stop()


# --- files restic cannot read ----------------------------------------------------------------

def test_a_file_that_cannot_be_read_makes_a_warning_naming_it(restic_version: str, tmp_path: Path) -> None:
    """A damaged inode on a real ext4 (lstat fails with EUCLEAN): restic makes the snapshot
    without it and exits 3."""
    backend = Backend("local", str(tmp_path / "repo"))
    source = tmp_path / "data"
    with loop_mount(source, size_mb=16) as image:
        (source / "fine.txt").write_text("fine")
        (source / "damaged.bin").write_bytes(os.urandom(100_000))
        unmount(source)
        subprocess.run(["debugfs", "-w", "-R", "sif /damaged.bin block[0] 0", str(image)], check=True,
                       capture_output=True)
        mount_again(image, source)
        result = run(config_for(backend, tmp_path))
    assert (result.status, result.exit_code, result.skipped) == ("warning", 0, False), result.summary
    assert "some files could not be read" in result.summary
    [named] = result.details[1:]  # once, though restic reports it while scanning and while archiving
    assert named.startswith(f"{source}/damaged.bin: lstat") and "structure needs cleaning" in named.lower()
    assert result.stats["files_new"] == 1 and len(ids(config_for(backend, tmp_path))) == 1


def test_the_hold_counts_in_the_repository_when_nasbox_lost_its_record(restic_version: str, tmp_path: Path) -> None:
    backend = Backend("local", str(tmp_path / "repo"))
    source = source_of(tmp_path)
    tree(source, {f"doc{i:02}.txt": f"document {i}" for i in range(20)})
    config = config_for(backend, tmp_path)
    assert run(config).status == "good"
    (Path(os.environ["NASBOX_HOME"]) / "state" / "offsite-docs.json").unlink()  # a new /config
    for i in range(15):
        (source / f"doc{i:02}.txt").unlink()
    held = run(config)
    assert held.exit_code == 75 and "would drop 15 of the 20 files" in held.summary


def test_a_new_source_starts_snapshots_of_its_own(tmp_path: Path) -> None:
    backend = Backend("local", str(tmp_path / "repo"))
    tree(source_of(tmp_path), {f"doc{i:02}.txt": "x" for i in range(20)})
    assert run(config_for(backend, tmp_path)).status == "good"
    other = tmp_path / "photos"
    tree(other, {"a.jpg": "a", "b.jpg": "b"})
    moved = run(load_config({"NASBOX_CONFIG": "/dev/null", **backend.environ("DOCS", other, PASSWORD)}))
    assert moved.status == "good", moved.summary
    assert (moved.stats["files_new"], moved.stats["files_dropped"]) == (2, 0)


def test_a_missing_bucket_is_created_on_the_first_run(restic_version: str, tmp_path: Path, monkeypatch) -> None:
    """restic 0.14 says the bucket does not exist; 0.18 retries for minutes, saying so while
    it does: the probe's time limit ends it, and what restic said decides."""
    from nasbox.offsite import restic_cmds
    monkeypatch.setattr(restic_cmds, "PROBE_S", 8)
    s3 = S3Backend()
    try:
        tree(source_of(tmp_path), {"a.txt": "a"})
        config = config_for(s3, tmp_path)
        first = run(config)
        assert first.status == "good", first.summary
        assert "created the repository s3:http://127.0.0.1:" in " ".join(first.details)
        assert len(ids(config)) == 1
    finally:
        s3.stop()


def test_a_check_of_a_missing_repository_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    backend = Backend("local", str(tmp_path / "repo"))
    tree(source_of(tmp_path), {"a.txt": "a"})
    checked = run(config_for(backend, tmp_path, CHECK="weekly 10%"), check=True)
    assert (checked.status, checked.exit_code) == ("error", 1)
    assert checked.summary == f"cannot check {tmp_path / 'repo'}: there is no repository there"
    assert not (tmp_path / "repo").exists()


def test_restic_variables_set_for_restic_by_hand_do_not_reach_nasbox_s_restic(tmp_path: Path, monkeypatch) -> None:
    """An admin who runs restic in the container by hand may set its variables there."""
    monkeypatch.setenv("RESTIC_PASSWORD_COMMAND", "echo another-password")
    monkeypatch.setenv("RESTIC_REPOSITORY_FILE", str(tmp_path / "elsewhere"))
    tree(source_of(tmp_path), {"a.txt": "a"})
    result = run(config_for(Backend("local", str(tmp_path / "repo")), tmp_path))
    assert result.status == "good", result.summary


def test_the_commands_list_snapshots_and_restore_from_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nasbox versions docs --from offsite` and `nasbox restore ... --from offsite` as a user
    runs them: new processes, the configuration from the environment."""
    source = source_of(tmp_path)
    tree(source, {"report.txt": "first"})
    set_mtime(source / "report.txt", 3600)
    backend = Backend("local", str(tmp_path / "repo"))
    environ = backend.environ("DOCS", source, PASSWORD)
    config = load_config({"NASBOX_CONFIG": "/dev/null", **environ})
    assert run(config).status == "good"
    (source / "report.txt").write_text("second, encrypted by mistake")
    assert run(config).status == "good"
    first = restore.snapshots(config, job_of(config))[0]
    env = {**os.environ, "NASBOX_CONFIG": "/dev/null", **environ}
    listed = subprocess.run([sys.executable, "-m", "nasbox", "versions", "docs", "--from", "offsite", "--json"],
                            env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert [s["id"] for s in json.loads(listed.stdout)["snapshots"]] == ids(config)[::-1]
    command = [sys.executable, "-m", "nasbox", "restore", "docs", "report.txt", "--from", "offsite", "--at", first.short_id]
    refused = subprocess.run(command, env=env, capture_output=True, text=True)
    assert refused.returncode == 75 and (source / "report.txt").read_text() == "second, encrypted by mistake"
    forced = subprocess.run([*command, "--force"], env=env, capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr
    assert (source / "report.txt").read_text() == "first"
    assert PASSWORD not in listed.stdout + listed.stderr + refused.stderr + forced.stderr


# --- rclone ----------------------------------------------------------------------------------

def rclone_serving_restic() -> list[int]:
    """The `rclone serve restic` processes restic started, still running."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"rclone" and argv[1:3] == [b"serve", b"restic"]:
            found.append(int(entry))
    return found


def test_an_rclone_remote_that_does_not_answer_is_an_error_saying_why_and_the_next_run_completes(
        restic_version: str, tmp_path: Path) -> None:
    rclone = RcloneBackend(tmp_path / "webdav")
    try:
        source = source_of(tmp_path)
        tree(source, {"a.txt": "a"})
        config = config_for(rclone, tmp_path)
        with rclone.down():  # unreachable from the first run on
            started = time.monotonic()
            refused = run(config)
            took = time.monotonic() - started
        assert (refused.status, refused.exit_code) == ("error", 1), refused.summary
        assert "connection refused" in refused.summary  # rclone's own reason, which restic passes on
        assert took < restic_cmds.PROBE_S  # the time limit of the repository's probe
        assert not (tmp_path / "webdav" / "repo").exists()  # nothing was created
        first = run(config)
        assert first.status == "good" and "created the repository rclone:nasboxdav:repo" in first.details

        for i in range(16):  # 32 MiB at 1 MiB/s: still sending when the server stops answering
            (source / f"big{i}.bin").write_bytes(os.urandom(2 << 20))
        slow = config_for(rclone, tmp_path, BWLIMIT="1M", TIMEOUT="8s")
        with rclone.frozen():
            started = time.monotonic()
            cut = run(slow)
            took = time.monotonic() - started
            deadline = time.monotonic() + 10
            while rclone_serving_restic() and time.monotonic() < deadline:  # rclone ends with restic
                time.sleep(0.1)
            assert rclone_serving_restic() == []
        assert (cut.status, cut.exit_code) == ("error", 1), cut.summary
        assert "did not finish within 8 s" in cut.summary and "NOTICE" not in cut.summary
        assert took < 8 + 5
        again = run(config)
        assert again.status == "good", (again.summary, again.details)
        assert again.stats["files_new"] == 16
        assert len(ids(config)) == 2
    finally:
        rclone.stop()


def test_rclone_secrets_never_in_argv_of_restic_or_rclone_logs_history_or_config_show(tmp_path: Path) -> None:
    rclone = RcloneBackend(tmp_path / "webdav")
    try:
        source = source_of(tmp_path)
        tree(source, {f"f{i}.txt": str(i) * 1000 for i in range(200)})
        env = {**os.environ, "NASBOX_CONFIG": "/dev/null", "PYTHONPATH": str(REPO), "LOG_LEVEL": "debug",
               **rclone.environ("DAV", source, PASSWORD)}
        seen: list[tuple[str, str]] = []
        stop = threading.Event()
        watcher = threading.Thread(target=watch_restic, args=(seen, stop, (b"restic", b"rclone")))
        watcher.start()
        try:
            ran = subprocess.run([sys.executable, "-m", "nasbox", "offsite", "dav", "--now"], env=env,
                                 capture_output=True, text=True, timeout=300)
        finally:
            stop.set()
            watcher.join()
        assert ran.returncode == 0, ran.stdout + ran.stderr
        restored = tmp_path / "restored"
        restored.mkdir()
        at = restore.snapshots(load_config(env), load_config(env).jobs["offsite"]["dav"])[0].id
        back = subprocess.run([sys.executable, "-m", "nasbox", "restore", "dav", "f7.txt", "--from", "offsite",
                               "--at", at, "--to", str(restored)], env=env, capture_output=True, text=True, timeout=120)
        assert back.returncode == 0 and (restored / "f7.txt").read_text() == "7" * 1000, back.stderr
        shown = subprocess.run([sys.executable, "-m", "nasbox", "config", "show", "--json"], env=env,
                               capture_output=True, text=True, timeout=60)
        home = Path(os.environ["NASBOX_HOME"])
        # restic and the rclone it runs (not the test's WebDAV server, whose own argv holds its password)
        seen = [(argv, environ) for argv, environ in seen if argv.startswith(("restic ", "rclone serve restic "))]
        children = [(argv, environ) for argv, environ in seen if argv.startswith("rclone ")]
        assert children and len(children) < len(seen)
        texts = {
            "output": ran.stdout + ran.stderr + back.stdout + back.stderr,
            "config show": shown.stdout,
            "logs": "".join(p.read_text(errors="replace") for p in (home / "logs").iterdir()),
            "history": "".join(map(str, sqlite3.connect(home / "state" / "history.sqlite").execute(
                "SELECT summary, details, stats FROM runs").fetchall())),
            "argv": " ".join(argv for argv, _ in seen),
        }
        leaks = [(where, secret) for where, text in texts.items() for secret in (PASSWORD, *rclone.secrets)
                 if secret in text]
        assert leaks == []
        assert json.loads(shown.stdout)["jobs"]["offsite"]["dav"]["env"] == {
            name: "***" for name in ("RCLONE_CONFIG_NASBOXDAV_TYPE", "RCLONE_CONFIG_NASBOXDAV_URL",
                                     "RCLONE_CONFIG_NASBOXDAV_USER", "RCLONE_CONFIG_NASBOXDAV_PASS")}
        for _, environ in children:  # rclone gets its remote, never the repository's password
            assert PASSWORD not in environ and f"RCLONE_CONFIG_NASBOXDAV_PASS={rclone.secrets[1]}" in environ
    finally:
        rclone.stop()
