"""Sync jobs whose paths meet through `..`, symlinks and bind mounts, against real rsync and
real directories: checked when the configuration is read and again when the job runs (a link
can change in between); the fence the preview sets for the copy; what a summary counts."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox import jobs
from nasbox.config import ConfigError, load_config
from nasbox.scrub.engine import Scrub
from nasbox.sync.engine import Sync
from tests.support.parity import parity_of, set_of
from tests.support.files import snapshot, tree
from tests.support.unprivileged import rsync_as_nobody

pytestmark = pytest.mark.host


def depth(root: Path) -> int:
    return max((len(p.relative_to(root).parts) for p in root.rglob("*")), default=0)


def env_config(**items: str):
    return load_config({"NASBOX_CONFIG": "/dev/null", **items})


def sync(config, state: Path, **options):
    return Sync(config.sync["docs"], config, state_dir=state, **options).run()


@pytest.fixture
def bind_mounts() -> Iterator[list[Path]]:
    """Directories bind-mounted by the test, unmounted afterwards even when it fails."""
    mounted: list[Path] = []
    yield mounted
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], check=True)


def bind(source: Path, target: Path, mounted: list[Path]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    mounted.append(target)


# ---- the configuration check --------------------------------------------------------------

def test_destination_inside_the_source_through_dotdot_or_a_link_is_refused(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (tmp_path / "elsewhere").symlink_to(source)
    for destination in (f"{source}/../src/backup", f"{tmp_path}/elsewhere/backup", f"{tmp_path}/elsewhere"):
        with pytest.raises(ConfigError) as caught:
            env_config(SYNC_DOCS=f"{source} {destination} daily")
        problem, = caught.value.problems
        assert problem.startswith("env SYNC_DOCS: destination: expected a path outside the source"), problem
        assert f"{destination} is " in problem  # what it resolves to


def test_source_inside_the_destination_through_dotdot_or_a_link_is_refused(tmp_path):
    destination = tmp_path / "backup"
    (destination / "data").mkdir(parents=True)
    (tmp_path / "data-link").symlink_to(destination / "data")
    for source in (f"{tmp_path}/other/../backup/data", f"{tmp_path}/data-link"):
        with pytest.raises(ConfigError) as caught:
            env_config(SYNC_DOCS=f"{source} {destination} daily")
        assert "destination: expected a path outside the source" in caught.value.problems[0]


def test_destination_not_yet_created_below_a_link_into_the_source_is_refused(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (tmp_path / "disk").symlink_to(source)
    with pytest.raises(ConfigError):
        env_config(SYNC_DOCS=f"{source} {tmp_path}/disk/not/yet/there daily")


def test_destination_bind_mounted_inside_the_source_is_refused(tmp_path, bind_mounts):
    source = tmp_path / "data"
    (source / "backup").mkdir(parents=True)
    bind(source / "backup", tmp_path / "backup", bind_mounts)  # one directory, two places
    with pytest.raises(ConfigError):
        env_config(SYNC_DOCS=f"{source} {tmp_path}/backup/docs daily")
    bind(source, tmp_path / "data-again", bind_mounts)
    with pytest.raises(ConfigError):
        env_config(SYNC_DOCS=f"{tmp_path}/data-again/photos {source}/photos/copy daily")


def test_separate_directories_beside_links_pass(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "backup").mkdir()
    (tmp_path / "src-link").symlink_to(tmp_path / "src")
    config = env_config(SYNC_DOCS=f"{tmp_path}/src-link {tmp_path}/backup/docs daily")
    assert config.sync["docs"].destination == f"{tmp_path}/backup/docs"


# ---- again when the job runs ---------------------------------------------------------------

def test_a_link_turned_into_the_source_after_the_check_copies_nothing(tmp_path):
    """Each run would nest the backup one level deeper inside the source."""
    source, other = tmp_path / "src", tmp_path / "disk"
    tree(source, {"a.txt": "a", "sub/b.txt": "b"})
    other.mkdir()
    (tmp_path / "backup").symlink_to(other)
    config = env_config(SYNC_DOCS=f"{source} {tmp_path}/backup/docs daily")
    (tmp_path / "backup").unlink()
    (tmp_path / "backup").symlink_to(source)  # now the destination is src/docs
    before = snapshot(source)
    for attempt in range(2):
        result = sync(config, tmp_path / "state", force=True)
        assert (result.status, result.exit_code) == ("error", 1), result.summary
        assert str(source) in result.summary and f"{tmp_path}/backup/docs" in result.summary
        assert "nothing was copied" in result.summary
    assert snapshot(source) == before and depth(source) == 2


def test_source_inside_the_destination_is_never_wiped_even_forced(tmp_path):
    """A source that resolves into its destination: --delete would remove it."""
    backup, disk = tmp_path / "backup", tmp_path / "disk"
    tree(backup, {"old.txt": "old backup"})
    tree(disk / "photos", {"cat.jpg": "meow"})
    (tmp_path / "photos").symlink_to(disk / "photos")
    config = env_config(SYNC_DOCS=f"{tmp_path}/photos {backup} daily")
    shutil.move(disk / "photos", backup / "photos")  # the user moved the folder into the backup
    (tmp_path / "photos").unlink()
    (tmp_path / "photos").symlink_to(backup / "photos")
    for force in (False, True):
        result = sync(config, tmp_path / "state", force=force)
        assert result.status == "error" and "same place or one holds the other" in result.summary
    assert snapshot(backup) == {"old.txt": b"old backup", "photos/cat.jpg": b"meow"}


def test_destination_inside_a_parity_database_copies_nothing(tmp_path):
    source, data = tmp_path / "src", tmp_path / "data"
    tree(source, {"a.txt": "a"})
    tree(data, {"b.txt": "b"})
    config = env_config(SYNC_DOCS=f"{source} {tmp_path}/parity-link/docs daily",
                        SCRUB_DATA=f"{data} {tmp_path}/parity 5% weekly")
    assert Scrub(config.scrub["data"]).run().status in ("good", "info")
    (tmp_path / "parity-link").symlink_to(tmp_path / "parity")
    parity = snapshot(tmp_path / "parity")
    result = sync(config, tmp_path / "state", force=True)
    assert result.status == "error" and "parity database" in result.summary and "scrub data" in result.summary
    assert snapshot(tmp_path / "parity") == parity


# ---- parity databases reached another way stay protected -----------------------------------

def test_parity_of_a_scrub_reached_through_a_link_survives_a_forced_sync(tmp_path):
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {"report.odt": "q3" * 5000, "cat.jpg": "meow" * 3000})
    backup.mkdir()
    (tmp_path / "scrubbed").symlink_to(backup)  # the scrub job names the backup another way
    config = env_config(SYNC_DOCS=f"{source} {backup} daily",
                        SCRUB_BACKUP=f"{tmp_path}/scrubbed .pardatabase 5% weekly")
    first = sync(config, tmp_path / "state")
    assert first.status == "good", first.summary
    # The parity update found the scrub job whose directory the sync wrote into.
    assert any(line.startswith("parity update of scrub backup:") for line in first.details), first.details
    job = config.scrub["backup"]
    assert parity_of(job, "report.odt") and all(p.is_file() for p in parity_of(job, "report.odt"))
    (source / "cat.jpg").unlink()
    forced = sync(config, tmp_path / "state", force=True)
    assert forced.status == "good" and forced.stats["deleted"] == 1, forced.summary
    # The sync deleted cat.jpg and nothing of the parity: the parity update alone took its row
    # away and made report.odt's set again.
    assert set_of(job, "cat.jpg") is None
    assert parity_of(job, "report.odt") and all(p.is_file() for p in parity_of(job, "report.odt"))
    assert Scrub(job).run().status == "good"


def test_parity_of_a_scrub_reached_through_a_bind_mount_survives_a_forced_sync(tmp_path, bind_mounts):
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {"a.txt": "a" * 5000})
    tree(backup, {"a.txt": "a" * 5000})
    bind(backup, tmp_path / "scrubbed", bind_mounts)
    config = env_config(SYNC_DOCS=f"{source} {backup} daily",
                        SCRUB_BACKUP=f"{tmp_path}/scrubbed .pardatabase 5% weekly")
    assert Scrub(config.scrub["backup"]).run().status in ("good", "info")
    parity = snapshot(backup / ".pardatabase")
    assert parity
    result = sync(config, tmp_path / "state", force=True)
    assert result.status == "good", result.summary
    assert snapshot(backup / ".pardatabase") == parity


# ---- locks ---------------------------------------------------------------------------------

def test_jobs_meeting_through_a_link_or_dotdot_lock_each_other(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "backup").mkdir()
    (tmp_path / "scrubbed").symlink_to(tmp_path / "backup")
    config = env_config(SYNC_DOCS=f"{tmp_path}/src {tmp_path}/backup/docs daily",
                        SYNC_DOTTED=f"{tmp_path}/src/../backup/docs/sub {tmp_path}/copy daily",
                        SCRUB_LINKED=f"{tmp_path}/scrubbed/docs .par 5% weekly",
                        SCRUB_APART=f"{tmp_path}/elsewhere .par 5% weekly")
    assert jobs.conflicting(config, "sync", "docs") == [("sync", "docs"), ("sync", "dotted"), ("scrub", "linked")]
    assert ("sync", "docs") in jobs.conflicting(config, "scrub", "linked")
    assert jobs.conflicting(config, "scrub", "apart") == [("scrub", "apart")]


# ---- the second fence ----------------------------------------------------------------------

class Shrinking(Sync):
    """The source loses files between the preview and the copy."""

    def __init__(self, *args, vanish: list[Path], **kwargs):
        super().__init__(*args, **kwargs)
        self.vanish = vanish

    def _rsync(self, protected, dry_run, max_delete=None):
        completed = super()._rsync(protected, dry_run, max_delete)
        if dry_run:
            for path in self.vanish:
                path.unlink()
        return completed


@pytest.mark.parametrize("planned", [0, 1, 3])
def test_the_copy_deletes_no_more_than_the_preview_planned(tmp_path, planned):
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {f"f{i:02}": str(i) for i in range(40)})
    config = env_config(SYNC_DOCS=f"{source} {backup} daily")
    assert sync(config, tmp_path / "state").status == "good"
    (source / "new").write_text("a change, so that the preview is not the whole run")
    for i in range(planned):
        (source / f"f{i:02}").unlink()
    vanish = [source / f"f{i:02}" for i in range(20, 40)]  # half the backup, after the preview
    result = Shrinking(config.sync["docs"], config, state_dir=tmp_path / "state", vanish=vanish).run()
    assert (result.exit_code, result.status) == (75, "warning"), result.summary
    assert "held: rsync's --max-delete stopped deletions" in result.summary
    kept = [n for n in snapshot(backup) if n.startswith("f")]
    assert len(kept) >= 40 - planned, f"{40 - len(kept)} deleted, {planned} planned"
    assert sync(config, tmp_path / "state").summary.startswith("skipped: held since")


def test_planned_deletions_of_a_directory_count_as_rsync_counts_them(tmp_path):
    """A planned deletion of a directory and its files is not stopped by the fence."""
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {f"f{i}": str(i) for i in range(10)} | {"old/a": "a", "old/b": "b"})
    config = env_config(SYNC_DOCS=f"{source} {backup} daily")
    sync(config, tmp_path / "state")
    shutil.rmtree(source / "old")
    (source / "new").write_text("n")
    result = sync(config, tmp_path / "state")
    assert (result.status, result.stats["deleted"]) == ("good", 2), result.summary
    assert not (backup / "old").exists()


# ---- a dry run of a held job, and what summaries count ------------------------------------

def test_a_dry_run_of_a_held_job_shows_what_would_change(tmp_path):
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {f"f{i}": str(i) for i in range(10)})
    config = env_config(SYNC_DOCS=f"{source} {backup} daily")
    sync(config, tmp_path / "state")
    for i in range(6):
        (source / f"f{i}").unlink()
    (source / "added").write_text("new")
    assert sync(config, tmp_path / "state").summary.startswith("held: it would delete 6 of 10 files")
    before = snapshot(backup)
    preview = sync(config, tmp_path / "state", dry_run=True)
    assert (preview.exit_code, preview.status) == (75, "warning")
    assert preview.summary.startswith("held since") and "dry run: 1 files would transfer" in preview.summary
    assert "6 deleted" in preview.summary, preview.summary
    assert sorted(line.split()[-1] for line in preview.details if line.startswith("*deleting")) == [
        f"f{i}" for i in range(6)]
    assert any(line.endswith(" added") and line.startswith(">f") for line in preview.details), preview.details
    assert snapshot(backup) == before


def test_a_dry_run_over_the_limit_shows_what_would_change(tmp_path):
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {f"f{i}": str(i) for i in range(4)})
    config = env_config(SYNC_DOCS=f"{source} {backup} daily")
    sync(config, tmp_path / "state")
    for i in range(3):
        (source / f"f{i}").unlink()
    preview = sync(config, tmp_path / "state", dry_run=True)
    assert preview.exit_code == 75 and preview.summary.startswith("held: it would delete 3 of 4 files")
    assert "dry run: 0 files would transfer" in preview.summary
    assert len([line for line in preview.details if line.startswith("*deleting")]) == 3
    assert not (tmp_path / "state" / "sync-holds.json").exists()


def test_vanished_files_are_not_counted_as_transferred(tmp_path):
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {f"f{i:03}": "x" * 20_000 for i in range(100)})
    config = env_config(SYNC_DOCS=f"{source} {backup} daily")
    job = dataclasses.replace(config.sync["docs"], bwlimit="200K")  # slow enough to pull files away

    def vanish() -> None:
        time.sleep(1.0)
        for i in range(60, 100):
            (source / f"f{i:03}").unlink()

    thief = threading.Thread(target=vanish)
    thief.start()
    result = Sync(job, config, state_dir=tmp_path / "state", force=True).run()
    thief.join()
    assert "vanished" in result.summary, result.summary
    copied = len(snapshot(backup))
    assert copied < 100
    assert result.stats["transferred"] == copied, (result.stats, copied)
    assert result.summary.startswith(f"{copied} files transferred")
    assert any(line.startswith("file has vanished") for line in result.details), result.details


def test_unreadable_files_are_not_counted_as_transferred(tmp_path, monkeypatch):
    """Files of mode 000 that rsync, run as an unprivileged user, cannot read (exit 23)."""
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {"ok.txt": "fine", "secret.txt": "no", "sub/private.txt": "no"})
    (source / "secret.txt").chmod(0)
    (source / "sub" / "private.txt").chmod(0)
    backup.mkdir()
    rsync_as_nobody(tmp_path, monkeypatch)
    config = env_config(SYNC_DOCS=f"{source} {backup} daily")
    result = sync(config, tmp_path / "state")
    assert (result.status, result.exit_code) == ("warning", 0), result.summary
    assert result.stats["transferred"] == 1 and result.summary.startswith("1 files transferred"), result.summary
    assert snapshot(backup) == {"ok.txt": b"fine"}


@pytest.mark.parametrize("database", [".par[1]", ".par*", ".par?", "back\\slash[x]"])
def test_a_parity_database_named_like_a_pattern_is_protected_as_named(tmp_path, database):
    """rsync reads * ? [ in an exclude as wildcards: the protection must match the name only."""
    source, backup = tmp_path / "src", tmp_path / "backup"
    tree(source, {"a.txt": "a" * 5000})
    tree(backup, {"a.txt": "a" * 5000, ".par1/stale": "x", ".parX/stale": "x"})  # what a wildcard would match
    # The name alone matters here, not par2; the private folder makes it nasbox's database.
    tree(backup / database, {"a.txt.par2": "parity", ".nasbox-scrub/catalog.sqlite": ""})
    # The parity of another directory, kept in the backup: no parity update rewrites it.
    config = load_config({"NASBOX_CONFIG": "/dev/null", "SYNC_DOCS": f"{source} {backup} daily",
                          "SCRUB_OTHER": f"{tmp_path}/other '{backup}/{database}' 5% weekly"})
    result = sync(config, tmp_path / "state", force=True)
    assert result.status == "good", result.summary
    assert snapshot(backup / database)["a.txt.par2"] == b"parity"
    assert not (backup / ".par1").exists() and not (backup / ".parX").exists()  # not protected: deleted


def test_destination_in_nasbox_state_copies_nothing_even_forced(tmp_path, monkeypatch):
    """A sync into /config/state was only held by the deletion limit: forced, rsync --delete
    wiped the run history and the users' UIDs. Refused by config check, and by the run when
    a link leads there after the check."""
    monkeypatch.setenv("NASBOX_HOME", str(tmp_path / "config"))
    source, own = tmp_path / "src", tmp_path / "config" / "state"
    tree(source, {"a.txt": "a"})
    tree(own, {"history.sqlite": "runs", "uids.json": "{}"})
    config = env_config(SYNC_DOCS=f"{source} {tmp_path}/state-link daily")
    (tmp_path / "state-link").symlink_to(own)  # after the check: the run checks again
    kept = snapshot(own)
    result = sync(config, own, force=True)
    assert result.status == "error" and "lies in nasbox's own" in result.summary, result.summary
    assert snapshot(own) == kept
    with pytest.raises(ConfigError, match="env SYNC_DOCS: destination: .* lies in nasbox.s own"):
        env_config(SYNC_DOCS=f"{source} {own}/backup daily")
