"""The mass-change hold against real rsync: ransomware that encrypts the source in place is
held before the backup takes it; ordinary edits, a small share's edits and changes of
attributes only are not."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nasbox import exits
from nasbox.sync.engine import Holds, Sync
from tests.host.test_notify import Recorder, http  # noqa: F401 (a fixture)
from tests.host.test_sync import config_for, paths, run  # noqa: F401 (a fixture)
from tests.support.files import snapshot

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
HOUR_AGO = time.time() - 3600  # the first copy's mtimes: a rewrite now is seen as newer


def hashes(root: Path) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in snapshot(root).items()}


def share(root: Path, count: int, size: int = 3000) -> list[Path]:
    """count files of documents, in a few folders, written an hour ago."""
    files = []
    for i in range(count):
        path = root / f"folder{i % 7}" / f"doc{i:03}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"document {i}\n".encode() * (size // 12))
        os.utime(path, (HOUR_AGO, HOUR_AGO))
        files.append(path)
    return files


def encrypt(files: list[Path]) -> None:
    """What ransomware does in place: random bytes over each file, half of them keeping the
    size, half of them growing (a header, padding)."""
    for i, path in enumerate(files):
        size = path.stat().st_size
        path.write_bytes(os.urandom(size if i % 2 else size + 512))


def nasbox_sync(paths: dict[str, Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`nasbox sync docs --now ...` as a person runs it, a new process each time."""
    config = paths["state"].parent / "nasbox.yaml"
    config.write_text(yaml.safe_dump({"sync": {"docs": {
        "source": str(paths["source"]), "destination": str(paths["destination"]), "schedule": "daily"}}}))
    return subprocess.run([sys.executable, "-m", "nasbox", "sync", "docs", "--now", *args], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "NASBOX_CONFIG": str(config), "PYTHONPATH": str(REPO), **env})


def test_encrypt_in_place_is_held_notified_and_forced(paths, http: Recorder) -> None:
    files = share(paths["source"], 200)
    hook = {"NOTIFY_HOOK": f"webhook {http.url('/hook')}"}
    first = nasbox_sync(paths, **hook)
    assert first.returncode == 0, first.stdout + first.stderr
    backup = hashes(paths["destination"])
    encrypt(files[:180])
    held = nasbox_sync(paths, **hook)
    assert held.returncode == exits.SKIPPED, held.stdout + held.stderr
    assert "it would rewrite 180 of 200 files" in held.stdout and "max_change: limit 50" in held.stdout, held.stdout
    assert hashes(paths["destination"]) == backup
    [warning] = [r.json() for r in http.requests if r.json()["status"] == "warning"]
    assert (warning["job"], warning["status"]) == ("sync docs", "warning")
    assert "held: it would rewrite 180 of 200 files" in warning["message"] and "--force" in warning["message"]
    again = nasbox_sync(paths)  # a later scheduled run, a restart: still held
    assert again.returncode == exits.SKIPPED and "held since" in again.stdout
    assert hashes(paths["destination"]) == backup
    forced = nasbox_sync(paths, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert hashes(paths["destination"]) == hashes(paths["source"])
    assert Holds(Path(os.environ["NASBOX_HOME"]) / "state").get("docs") is None


def test_encrypted_and_renamed_is_held_by_max_delete(paths) -> None:
    """The variant that adds an extension: every file deleted and a new one written, which
    the deletion guard holds; new files are no rewrites."""
    files = share(paths["source"], 200)
    config = config_for(paths)
    assert run(config, paths).status == "good"
    backup = hashes(paths["destination"])
    encrypt(files)
    for path in files:
        path.rename(path.with_name(path.name + ".locked"))
    held = run(config, paths)
    assert (held.exit_code, held.status) == (75, "warning")
    assert "held: it would delete 200 of 200 files" in held.summary and "rewrite" not in held.summary
    assert hashes(paths["destination"]) == backup


def test_ordinary_edits_are_not_held(paths) -> None:
    files = share(paths["source"], 200)
    config = config_for(paths)
    run(config, paths)
    for path in files[:8]:  # a day's work: some documents edited, some written, one thrown away
        with path.open("a") as f:
            f.write("another paragraph\n")
    for path in files[8:12]:
        path.write_bytes(os.urandom(path.stat().st_size))  # re-saved, same size
    for i in range(10):
        (paths["source"] / f"new{i}.txt").write_text("new")
    files[-1].unlink()
    result = run(config, paths)
    assert (result.status, result.skipped) == ("good", False), result.summary
    assert hashes(paths["destination"]) == hashes(paths["source"])


@pytest.mark.parametrize("present, rewritten, max_change, held", [
    (3, 2, None, False),  # a small share: two of its three documents edited
    (10, 10, None, False),  # a percentage never allows fewer than 10
    (12, 11, None, True),
    (12, 11, 11, False),
    (12, 1, 0, True),  # a count is exact: 0 holds every rewrite
    (40, 20, "50%", False),
    (40, 21, "50%", True),
])
def test_small_shares_and_the_limit(paths, present, rewritten, max_change, held) -> None:
    files = share(paths["source"], present)
    config = config_for(paths, **({} if max_change is None else {"max_change": max_change}))
    run(config, paths)
    backup = hashes(paths["destination"])
    encrypt(files[:rewritten])
    result = run(config, paths)
    assert result.skipped is held, result.summary
    assert hashes(paths["destination"]) == (backup if held else hashes(paths["source"]))


def test_changes_of_attributes_only_are_no_rewrites(paths) -> None:
    """A new mtime over the same bytes (touch, a folder copied back without its times) or a
    new mode: rsync lists the first for copying, and the bytes are compared before a hold."""
    files = share(paths["source"], 200)
    config = config_for(paths)
    run(config, paths)
    now = time.time()
    for path in files:
        os.utime(path, (now, now))
    for path in files[:100]:
        path.chmod(0o600)
    result = run(config, paths)
    assert (result.status, result.skipped) == ("good", False), result.summary
    assert all((paths["destination"] / f.relative_to(paths["source"])).stat().st_mtime == f.stat().st_mtime
               for f in files)
    for path in files:  # touched again, and 60 of them (over the limit of 50) rewritten in place
        os.utime(path, (now + 10, now + 10))
    for path in files[:60]:
        path.write_bytes(os.urandom(path.stat().st_size))
        os.utime(path, (now + 10, now + 10))
    held = run(config, paths)
    assert held.skipped and "it would rewrite 60 of 200 files" in held.summary, held.summary


def test_names_rsync_escapes_are_compared_as_they_are(paths) -> None:
    """The bytes are compared for the names the preview printed, which rsync escapes."""
    names = [f"line\nbreak{i}" for i in range(6)] + [f"back\\#012slash{i}" for i in range(6)]
    names += [f"caf\u00e9{i}" for i in range(6)]
    files = [paths["source"] / name for name in names]
    files.append(Path(os.fsdecode(bytes(paths["source"]) + b"/latin1-\xe9")))
    for path in files:
        path.write_text("same bytes")
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    config = config_for(paths)
    run(config, paths)
    for path in files:
        path.touch()
    result = run(config, paths)
    assert (result.status, result.skipped) == ("good", False), result.summary
    for path in files[:15]:  # now rewritten: 15 of 19 files, over the floor of 10
        path.write_text("other bytes")
    held = run(config, paths)
    assert held.skipped and "it would rewrite 15 of 19 files" in held.summary, held.summary


def test_dry_run_shows_the_preview_and_the_hold_survives_a_restart(paths) -> None:
    files = share(paths["source"], 100)
    config = config_for(paths)
    run(config, paths)
    backup = hashes(paths["destination"])
    encrypt(files[:90])
    preview = run(config, paths, dry_run=True)
    assert preview.skipped and preview.summary.startswith("held: it would rewrite 90 of 100 files")
    assert any(line.startswith(">f") for line in preview.details), preview.details
    assert Holds(paths["state"]).get("docs") is None  # a dry run holds nothing
    held = run(config, paths)
    assert held.skipped and Holds(paths["state"]).get("docs")["rewrites"] == 90
    restarted = Sync(config_for(paths).sync["docs"], config_for(paths), state_dir=paths["state"])
    assert restarted.run().summary.startswith("skipped: held since")
    held_preview = run(config, paths, dry_run=True)
    assert held_preview.skipped and "held since" in held_preview.summary
    assert "it would rewrite 90 of 100 files" in held_preview.summary
    assert hashes(paths["destination"]) == backup


def test_force_approves_the_rewrites_the_hold_counted(paths) -> None:
    """Held for 80 rewrites; the source rewrites more before --force: the job is held anew
    with the new count, which the next --force approves. Fewer than counted pass."""
    files = share(paths["source"], 100)
    config = config_for(paths)
    run(config, paths)
    backup = hashes(paths["destination"])
    encrypt(files[:80])
    assert "it would rewrite 80 of 100 files" in run(config, paths).summary
    encrypt(files[80:95])
    forced = run(config, paths, force=True)
    assert (forced.exit_code, forced.status) == (75, "warning"), forced.summary
    assert "it would rewrite 95 of 100 files" in forced.summary and "counted 0 deletions and 80 rewrites" in forced.summary
    assert hashes(paths["destination"]) == backup
    copy = paths["destination"] / files[0].relative_to(paths["source"])
    files[0].write_bytes(copy.read_bytes())  # the admin restored one: 94 now
    os.utime(files[0], (HOUR_AGO, HOUR_AGO))
    again = run(config, paths, force=True)
    assert again.status == "good" and "the hold was released (--force)" in again.details
    assert hashes(paths["destination"]) == hashes(paths["source"])
    assert json.loads((paths["state"] / "sync-holds.json").read_text()) == {}
