"""Offsite snapshots listed, and a path restored from one: what `nasbox versions` and
`nasbox restore --from offsite` call.

A restore never writes over newer data unless forced: restic restores the path into a
temporary directory inside the target directory (the same file system, so that putting a
file in place is a rename), then each file is moved into place only where the target has no
file of that name or an older one (by modification time); a newer one is left alone and
listed, unless `force`. A directory missing from the target is moved in whole; one that
exists is merged into, file by file. Nothing replaces a directory with a file or a file
with a directory, nor writes through a symlink in the target: those are listed as refused,
`force` or not. The temporary directory is removed however the restore ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from nasbox import paths, state
from nasbox.config import Config
from nasbox.offsite.engine import cache_dir
from nasbox.offsite.kind import OffsiteJob
from nasbox.offsite.record import Record
from nasbox.offsite.restic import Restic, Snapshot

TEMPORARY_PREFIX = ".nasbox-restore-"


class RestoreError(Exception):
    """The snapshots could not be listed, or the path could not be restored; nothing was changed."""


@dataclass
class Restored:
    """What a restore did, by path relative to the target directory."""

    placed: list[str] = field(default_factory=list)  # files and directories put in place
    kept_newer: list[str] = field(default_factory=list)  # newer in the target: left alone
    refused: list[str] = field(default_factory=list)  # a file over a directory (or back), a link in the way


def _restic(config: Config, job: OffsiteJob, state_dir: Path | None) -> Restic:
    return Restic(job, config, cache_dir(state_dir or state.state_dir()))


def snapshots(config: Config, job: OffsiteJob, state_dir: Path | None = None) -> list[Snapshot]:
    """The job's snapshots (this server's, of its source), oldest first."""
    restic = _restic(config, job, state_dir)
    listed = restic.run(restic.commands.snapshots(paths.real(job.source)))
    if not listed.ok:
        raise RestoreError(f"cannot list the snapshots: {listed.message}")
    return sorted((Snapshot.of(data) for data in listed.json() or []), key=lambda s: s.time)


def snapshot_at(found: list[Snapshot], when: datetime) -> Snapshot | None:
    """The newest snapshot made at or before `when` (an aware datetime)."""
    earlier = [s for s in found if s.time <= when]
    return max(earlier, key=lambda s: s.time) if earlier else None


def relative_path(path: str) -> PurePosixPath:
    """A path inside the source as given ('' or '.' for all of it); no '..', not absolute."""
    relative = PurePosixPath(path.strip() or ".")
    if relative.is_absolute() or ".." in relative.parts:
        raise RestoreError(f"expected a path inside the job's source, without '..', got {path!r}")
    return relative


def restore(
    config: Config,
    job: OffsiteJob,
    snapshot: Snapshot,
    path: str,
    target: str,
    force: bool = False,
    state_dir: Path | None = None,
) -> Restored:
    """PATH (relative to the source) as it was in the snapshot, into the target directory at
    the same relative path (the source itself restores in place)."""
    relative = relative_path(path)
    if not snapshot.paths:
        raise RestoreError(f"snapshot {snapshot.short_id} names no path")
    base = snapshot.paths[0]  # the source as it was backed up
    into = paths.real(target)
    if not os.path.isdir(into):
        raise RestoreError(f"the target {target} is not a directory")
    restic = _restic(config, job, state_dir)
    record = Record(state_dir or state.state_dir(), job.name)
    this_run = record.start_run()  # a restic killed mid-restore leaves a lock: the next run removes it
    temporary = tempfile.mkdtemp(prefix=TEMPORARY_PREFIX, dir=into)
    try:
        wanted = str(PurePosixPath(base) / relative)
        ran = restic.run(restic.commands.restore(snapshot.id, wanted, temporary))
        if not ran.ok:
            raise RestoreError(f"restic could not restore {relative} from snapshot {snapshot.short_id}: {ran.message}")
        restored = Path(temporary, wanted.lstrip("/"))
        if not os.path.lexists(restored):
            raise RestoreError(f"{relative} is not in snapshot {snapshot.short_id}")
        done = Restored()
        if relative == PurePosixPath("."):  # the whole source: merged into the target
            for name in sorted(os.listdir(restored)):
                _place(restored / name, Path(into), PurePosixPath(name), force, done)
        else:
            _place(restored, Path(into), relative, force, done)
        return done
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        if not restic.killed:
            record.end_runs(this_run)


def _place(restored: Path, into: Path, relative: PurePosixPath, force: bool, done: Restored) -> None:
    """Move restored (a file, link or directory) to into/relative, as the rules say."""
    destination = into / relative
    parent = destination.parent
    if paths.real(str(parent)) != os.path.normpath(parent) or not paths.inside(str(parent), str(into)):
        done.refused.append(f"{relative} (a link or a file is in the way)")
        return
    shown = str(relative)
    if not os.path.lexists(destination):
        parent.mkdir(parents=True, exist_ok=True)
        os.replace(restored, destination)
        done.placed.append(shown)
        return
    restored_is_dir = restored.is_dir() and not restored.is_symlink()
    existing_is_dir = destination.is_dir() and not destination.is_symlink()
    if restored_is_dir and existing_is_dir:
        for name in sorted(os.listdir(restored)):
            _place(restored / name, into, relative / name, force, done)
        return
    if restored_is_dir or existing_is_dir:
        done.refused.append(f"{shown} (a {'directory' if existing_is_dir else 'file'} of that name is there)")
        return
    if destination.lstat().st_mtime > restored.lstat().st_mtime and not force:
        done.kept_newer.append(shown)
        return
    os.replace(restored, destination)
    done.placed.append(shown)
