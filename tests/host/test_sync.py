"""Sync jobs against real rsync: every guard is attacked with the situation it exists for,
and the test checks that the backup survived."""
from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nasbox.config import load_config
from nasbox.scrub.engine import Scrub
from nasbox.sync import rsync_cmds
from nasbox.sync.engine import Sync
from tests.support.parity import parity_of
from tests.support.files import snapshot, tree
from tests.support.unprivileged import rsync_as_nobody

pytestmark = pytest.mark.host


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    found = {"source": tmp_path / "data" / "docs", "backup": tmp_path / "backup", "state": tmp_path / "state"}
    found["source"].mkdir(parents=True)
    found["backup"].mkdir()
    found["destination"] = found["backup"] / "docs"
    return found


def config_for(paths: dict[str, Path], extra: dict[str, str] | None = None, **yaml_sync) -> object:
    env = {"NASBOX_CONFIG": "/dev/null", "SYNC_DOCS": f"{paths['source']} {paths['destination']} daily", **(extra or {})}
    if yaml_sync:
        import yaml
        path = paths["state"].parent / "nasbox.yaml"
        path.write_text(yaml.safe_dump({"sync": {"docs": {"source": str(paths["source"]),
                                                          "destination": str(paths["destination"]),
                                                          "schedule": "daily", **yaml_sync}}}))
        env["NASBOX_CONFIG"] = str(path)
        del env["SYNC_DOCS"]
    return load_config(env)


def run(config, paths, **options):
    return Sync(config.sync["docs"], config, state_dir=paths["state"], **options).run()


def test_copies_the_contents_of_source_into_destination(paths):
    tree(paths["source"], {"a.txt": "a", "sub/b.txt": "b" * 1000})
    result = run(config_for(paths), paths)
    assert (result.status, result.exit_code) == ("good", 0)
    assert snapshot(paths["destination"]) == snapshot(paths["source"])
    assert (result.stats["transferred"], result.stats["bytes_transferred"]) == (2, 1001)
    assert result.summary.startswith("2 files transferred")
    again = run(config_for(paths), paths)  # nothing changed: the preview is the whole run
    assert again.stats["transferred"] == 0 and again.status == "good"
    assert again.summary.startswith("0 files transferred")
    (paths["source"] / "a.txt").chmod(0o600)  # only metadata changed: still a real run
    assert run(config_for(paths), paths).status == "good"
    assert (paths["destination"] / "a.txt").stat().st_mode & 0o777 == 0o600


def test_missing_source_or_destination_parent_is_skipped(paths, tmp_path):
    config = load_config({"NASBOX_CONFIG": "/dev/null",
                          "SYNC_DOCS": f"{tmp_path}/nope {paths['destination']} daily"})
    result = run(config, paths)
    assert (result.skipped, result.exit_code, result.status) == (True, 75, "warning")
    assert "source" in result.summary and not paths["destination"].exists()
    config = load_config({"NASBOX_CONFIG": "/dev/null",
                          "SYNC_DOCS": f"{paths['source']} {tmp_path}/missing-disk/docs daily"})
    result = run(config, paths)
    assert result.exit_code == 75 and "parent directory" in result.summary
    assert not (tmp_path / "missing-disk").exists()


def test_destination_itself_is_created(paths):
    tree(paths["source"], {"a": "1"})
    assert run(config_for(paths), paths).status == "good"
    assert (paths["destination"] / "a").read_text() == "1"


def test_source_on_a_mount_that_is_down_is_skipped(paths, tmp_path):
    mountpoint = tmp_path / "data"  # the source lies below it; nothing is mounted there
    config = config_for(paths, {"MOUNT_NAS": f"{mountpoint} 127.0.0.1 u:p share /"})
    tree(paths["source"], {"a": "1"})
    tree(paths["destination"], {"keep": "backup"})
    result = run(config, paths)
    assert result.exit_code == 75 and "mount nas" in result.summary and "not mounted" in result.summary
    assert snapshot(paths["destination"]) == {"keep": b"backup"}


def test_empty_source_never_wipes_the_backup(paths):
    tree(paths["destination"], {"precious.txt": "years of work", "sub/more.txt": "x"})
    before = snapshot(paths["destination"])
    result = run(config_for(paths), paths)
    assert result.exit_code == 75 and "is empty" in result.summary
    assert snapshot(paths["destination"]) == before
    forced = run(config_for(paths), paths, force=True)  # still refused: --force passes holds only
    assert forced.exit_code == 75 and snapshot(paths["destination"]) == before


def test_missing_marker_skips(paths):
    tree(paths["source"], {"a": "new"})
    tree(paths["destination"], {"old": "kept"})
    config = config_for(paths, require_marker=".nasbox-disk")
    result = run(config, paths)
    assert result.exit_code == 75 and ".nasbox-disk is missing" in result.summary
    assert snapshot(paths["destination"]) == {"old": b"kept"}
    (paths["source"] / ".nasbox-disk").touch()
    (paths["source"] / "old").write_text("kept")
    assert run(config, paths).status == "good"
    assert snapshot(paths["destination"]) == snapshot(paths["source"])


def test_mass_deletion_is_held_across_restarts_until_forced(paths):
    tree(paths["source"], {f"f{i}": str(i) for i in range(10)})
    config = config_for(paths)
    run(config, paths)
    for i in range(6):  # 6 of 10 vanish from the source: more than the default half
        (paths["source"] / f"f{i}").unlink()
    backup = snapshot(paths["destination"])
    held = run(config, paths)
    assert (held.exit_code, held.status) == (75, "warning")
    assert "held: it would delete 6 of 10 files" in held.summary and "--force" in held.summary
    assert snapshot(paths["destination"]) == backup
    (paths["source"] / "f0").write_text("restored")  # fewer deletions now, but the hold stays
    for attempt in range(2):  # a new Sync is what a restart gives: the hold is on disk
        still = run(config_for(paths), paths)
        assert still.exit_code == 75 and "held since" in still.summary
        assert snapshot(paths["destination"]) == backup
    forced = run(config, paths, force=True)
    assert forced.status == "good" and "the hold was released (--force)" in forced.details
    assert snapshot(paths["destination"]) == snapshot(paths["source"])
    assert run(config, paths).status == "good"


@pytest.mark.parametrize("max_delete, deletions, held", [(2, 2, False), (2, 3, True), ("30%", 3, False),
                                                         ("30%", 4, True), (0, 1, True)])
def test_max_delete_count_or_percent(paths, max_delete, deletions, held):
    tree(paths["source"], {f"f{i}": str(i) for i in range(10)})
    config = config_for(paths, max_delete=max_delete)
    run(config, paths)
    for i in range(deletions):
        (paths["source"] / f"f{i}").unlink()
    result = run(config, paths)
    assert result.skipped is held
    assert len(snapshot(paths["destination"])) == (10 if held else 10 - deletions)


def test_dry_run_changes_nothing(paths):
    tree(paths["source"], {"new": "n", "same1": "s", "same2": "s"})
    tree(paths["destination"], {"old": "o", "same1": "s", "same2": "s"})
    before = snapshot(paths["destination"])
    result = run(config_for(paths), paths, dry_run=True)
    assert result.summary.startswith("dry run: 1 files would transfer") and result.stats["deleted"] == 1
    assert snapshot(paths["destination"]) == before
    for i in range(3):
        tree(paths["destination"], {f"x{i}": "x"})
    held = run(config_for(paths), paths, dry_run=True)  # 4 of 6 would go
    assert held.skipped and not (paths["state"] / "sync-holds.json").exists()  # a dry run holds nothing


def test_parity_inside_the_destination_survives_every_sync(paths):
    """A .pardatabase inside an rsync --delete destination would be wiped by every sync. Here: sync, scrub, sync, scrub, and the parity survives."""
    tree(paths["source"], {"report.odt": "q3" * 5000, "photos/cat.jpg": "meow" * 3000})
    config = config_for(paths, {"SCRUB_DOCS": f"{paths['destination']} .pardatabase 5% weekly"})
    first = run(config, paths)
    assert any(line.startswith("parity update of scrub docs: info") for line in first.details), first.details
    job = config.scrub["docs"]
    protected = ("report.odt", "photos/cat.jpg")
    assert all(parity_of(job, n) and all(p.is_file() for p in parity_of(job, n)) for n in protected)
    assert Scrub(job).run().status == "good"
    tree(paths["source"], {"new.txt": "n" * 100})
    second = run(config, paths)
    assert second.status == "good" and second.stats["deleted"] == 0
    protected = ("report.odt", "new.txt")
    assert all(parity_of(job, n) and all(p.is_file() for p in parity_of(job, n)) for n in protected)
    final = Scrub(config.scrub["docs"]).run()
    assert (final.status, final.stats["verified"]) == ("good", 3)


def test_nasbox_state_inside_destination_is_protected(paths, tmp_path):
    tree(paths["source"], {"a": "1"})
    state_dir = paths["destination"] / "nasbox-state"
    tree(state_dir, {"uids.json": "{}"})
    config = config_for(paths)
    result = Sync(config.sync["docs"], config, state_dir=state_dir, force=True).run()
    assert result.status == "good"
    assert (state_dir / "uids.json").read_text() == "{}"


def test_vanished_files_are_a_warning(paths):
    tree(paths["source"], {f"f{i:03}": "x" * 20_000 for i in range(100)})
    config = config_for(paths, bwlimit="200K")  # slow enough to pull files away mid-run

    def vanish() -> None:
        time.sleep(1.0)
        for i in range(60, 100):
            (paths["source"] / f"f{i:03}").unlink()

    thief = threading.Thread(target=vanish)
    thief.start()
    result = Sync(config.sync["docs"], config, state_dir=paths["state"], force=True).run()
    thief.join()
    assert (result.status, result.exit_code) == ("warning", 0), result.summary
    assert "vanished" in result.summary
    assert any("vanished" in line for line in result.details)


@pytest.mark.parametrize("partial_is_error, status, code", [(False, "warning", 0), (True, "error", 1)])
def test_unreadable_files_are_listed(paths, tmp_path, monkeypatch, partial_is_error, status, code):
    """A file of mode 000 that rsync, run as an unprivileged user (root reads everything),
    cannot read: exit 23."""
    tree(paths["source"], {"ok.txt": "fine", "secret.txt": "no"})
    (paths["source"] / "secret.txt").chmod(0)
    paths["destination"].mkdir()
    rsync_as_nobody(tmp_path, monkeypatch)
    config = config_for(paths, partial_is_error=partial_is_error)
    result = Sync(config.sync["docs"], config, state_dir=paths["state"]).run()
    assert (result.status, result.exit_code) == (status, code), result.summary
    assert any("secret.txt" in line and "Permission denied" in line for line in result.details), result.details
    assert (paths["destination"] / "ok.txt").read_text() == "fine"


def test_destination_that_is_a_file_is_an_error_not_a_crash(paths):
    tree(paths["source"], {"a": "1"})
    paths["destination"].write_text("a file where the backup should be")
    result = run(config_for(paths), paths)
    assert result.status == "error" and result.exit_code == 1
    assert paths["destination"].read_text() == "a file where the backup should be"


def test_parity_of_a_scrubbed_source_is_not_copied(paths):
    tree(paths["source"], {"a.txt": "data"})
    config = config_for(paths, {"SCRUB_SRC": f"{paths['source']} .parity-src 5% weekly"})
    Scrub(config.scrub["src"]).run()
    assert parity_of(config.scrub["src"], "a.txt") and all(p.exists() for p in parity_of(config.scrub["src"], "a.txt"))
    assert run(config, paths).status == "good"
    assert snapshot(paths["destination"]) == {"a.txt": b"data"}


def test_a_source_holding_only_its_parity_counts_as_empty(paths):
    tree(paths["destination"], {"precious.txt": "keep"})
    config = config_for(paths, {"SCRUB_SRC": f"{paths['source']} .parity-src 5% weekly"})
    (paths["source"] / ".parity-src" / ".nasbox-scrub").mkdir(parents=True)
    result = run(config, paths)
    assert result.exit_code == 75 and "is empty" in result.summary
    assert snapshot(paths["destination"]) == {"precious.txt": b"keep"}


def test_preview_lists_changes_from_real_rsync(paths):
    """changes_listed reads real rsync --itemize-changes output, both ways."""
    tree(paths["source"], {"a": "1", "sub/b": "2"})
    paths["destination"].mkdir()
    job = config_for(paths).sync["docs"]
    preview = subprocess.run(rsync_cmds.sync(job, [], dry_run=True), capture_output=True, text=True)
    assert rsync_cmds.changes_listed(preview.stdout)
    subprocess.run(rsync_cmds.sync(job, []), check=True, capture_output=True)
    unchanged = subprocess.run(rsync_cmds.sync(job, [], dry_run=True), capture_output=True, text=True)
    assert not rsync_cmds.changes_listed(unchanged.stdout), unchanged.stdout
    (paths["destination"] / "extra").write_text("x")
    deleting = subprocess.run(rsync_cmds.sync(job, [], dry_run=True), capture_output=True, text=True)
    assert rsync_cmds.changes_listed(deleting.stdout) and rsync_cmds.parse_stats(deleting.stdout).deleted == 1


def test_xattrs_acls_and_hard_links_when_asked(paths):
    tree(paths["source"], {"a": "1"})
    os.setxattr(paths["source"] / "a", "user.tag", b"blue")
    os.link(paths["source"] / "a", paths["source"] / "a-link")
    config = config_for(paths, xattrs=True, hard_links=True, acls=True)
    assert run(config, paths).status == "good"
    copy = paths["destination"]
    assert os.getxattr(copy / "a", "user.tag") == b"blue"
    assert (copy / "a").stat().st_ino == (copy / "a-link").stat().st_ino


def test_deletions_that_appear_after_the_preview_are_stopped_by_rsync(paths):
    """The second fence: files vanish from the source between the preview and the copy;
    rsync's --max-delete stops the deletions (exit 25) and the job is held."""
    tree(paths["source"], {f"f{i}": str(i) for i in range(10)})
    config = config_for(paths)
    run(config, paths)
    (paths["source"] / "new").write_text("a change, so that the preview is not the whole run")

    class Racing(Sync):
        def _rsync(self, protected, dry_run, max_delete=None):
            completed = super()._rsync(protected, dry_run, max_delete)
            if dry_run:
                for i in range(8):
                    (paths["source"] / f"f{i}").unlink()
            return completed

    result = Racing(config.sync["docs"], config, state_dir=paths["state"]).run()
    assert (result.exit_code, result.status) == (75, "warning")
    assert "held: rsync's --max-delete stopped deletions" in result.summary
    assert len([n for n in snapshot(paths["destination"]) if n.startswith("f")]) >= 10 - 5  # at most the limit went
    assert run(config, paths).summary.startswith("skipped: held since")


def test_a_sync_on_a_terminal_shows_its_progress(tmp_path):
    """Run as a person runs it: `nasbox sync JOB --now` on a terminal draws rsync's overall
    progress (percentage, rate, time left) in place."""
    source = tmp_path / "src"
    source.mkdir()
    for i in range(4):
        (source / f"f{i}").write_bytes(os.urandom(500_000))
    (tmp_path / "nasbox.yaml").write_text(json.dumps({"sync": {"docs": {
        "source": str(source), "destination": str(tmp_path / "backup"), "schedule": "daily", "bwlimit": "500K"}}}))
    env = {**os.environ, "NASBOX_CONFIG": str(tmp_path / "nasbox.yaml")}
    main, child = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "nasbox", "sync", "docs", "--now"], stdout=child,
                               stderr=child, env=env)
    os.close(child)
    screen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        try:
            chunk = os.read(main, 4096) if ready else b""
        except OSError:  # the terminal closed with the process
            chunk = b""
        if not chunk:
            break
        screen += chunk
    assert process.wait(30) == 0, screen
    drawn = [line for line in screen.decode(errors="replace").split("\r") if line.startswith("sync docs [")]
    assert drawn, screen
    assert any("%" in line and "/s" in line and "ETA 0:" in line for line in drawn), drawn


def test_force_releases_only_the_deletions_the_hold_counted(paths):
    """Held for 6 deletions; before the admin, having checked the source, runs --force, the
    source loses more (its disk half unmounted, a user's mistake): --force approves the 6 it
    was shown, not whatever the source holds now. The job is held anew, with the new count,
    which the next --force approves."""
    tree(paths["source"], {f"f{i}": str(i) for i in range(10)})
    config = config_for(paths)
    run(config, paths)
    for i in range(6):
        (paths["source"] / f"f{i}").unlink()
    assert "held: it would delete 6 of 10 files" in run(config, paths).summary
    backup = snapshot(paths["destination"])
    for i in range(6, 9):  # after the hold, before --force
        (paths["source"] / f"f{i}").unlink()
    forced = run(config, paths, force=True)
    assert (forced.exit_code, forced.status) == (75, "warning"), forced.summary
    assert "it would delete 9 of 10 files" in forced.summary and "counted 6" in forced.summary
    assert snapshot(paths["destination"]) == backup
    again = run(config, paths, force=True)  # the admin checked again: the 9 are meant
    assert again.status == "good" and "the hold was released (--force)" in again.details
    assert snapshot(paths["destination"]) == snapshot(paths["source"])


def test_a_sparse_file_stays_sparse_in_the_backup(paths):
    """A disk image of 256 MiB holding 8 KiB of data takes 8 KiB in the backup too, not 256 MiB."""
    with open(paths["source"] / "disk.img", "wb") as image:
        image.truncate(256 << 20)
        image.write(b"boot" * 1024)
        image.seek(128 << 20)
        image.write(b"data" * 1024)
    result = run(config_for(paths), paths)
    assert result.status == "good", result.summary
    copied = paths["destination"] / "disk.img"
    assert copied.stat().st_size == 256 << 20
    assert copied.stat().st_blocks * 512 < 1 << 20
    assert copied.read_bytes() == (paths["source"] / "disk.img").read_bytes()
