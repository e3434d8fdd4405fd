"""Offsite snapshots listed, and a path fetched from one: what `nasbox versions --from
offsite` and `nasbox restore --from offsite` call.

restic restores the path into a private directory under nasbox's state (0700, root's), never
into a tree share users write to: it writes by path, and a user could swap a directory of
theirs for a link while it runs. From there the path is put in place as a version's is
(nasbox.versions.restore), through descriptors, never over a newer file unless forced. The
private directory is removed however the restore ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from nasbox import paths, state
from nasbox.config import Config
from nasbox.offsite.engine import cache_dir
from nasbox.offsite.kind import OffsiteJob
from nasbox.offsite.record import Record
from nasbox.offsite.restic import Restic, Snapshot

FETCHED = "offsite-restore"  # in the state directory: restic's restores before they are put in place


class RestoreError(Exception):
    """The snapshots could not be listed, or the path could not be restored; nothing was changed."""


def _restic(config: Config, job: OffsiteJob, state_dir: Path | None) -> Restic:
    return Restic(job, config, cache_dir(state_dir or state.state_dir()))


def snapshots(config: Config, job: OffsiteJob, state_dir: Path | None = None) -> list[Snapshot]:
    """The job's snapshots (this server's, of its source), oldest first."""
    restic = _restic(config, job, state_dir)
    listed = restic.run(restic.commands.snapshots(paths.real(job.source)))
    if not listed.ok:
        raise RestoreError(f"cannot list the snapshots: {listed.message}")
    return sorted((Snapshot.of(data) for data in listed.json() or []), key=lambda s: s.time)


@contextmanager
def fetched(
    config: Config, job: OffsiteJob, snapshot: Snapshot, relative: str, state_dir: Path | None = None
) -> Iterator[str]:
    """The snapshot's copy of the source, holding relative (a path in the source), in a
    private directory while the context lasts: where a version would hold it."""
    if not snapshot.paths:
        raise RestoreError(f"snapshot {snapshot.short_id} names no path")
    base = snapshot.paths[0]  # the source as it was backed up
    home = state_dir or state.state_dir()
    private = home / FETCHED
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(private, 0o700)
    restic = _restic(config, job, state_dir)
    record = Record(home, job.name)
    this_run = record.start_run()  # a restic killed mid-restore leaves a lock: the next run removes it
    temporary = tempfile.mkdtemp(dir=private)
    try:
        wanted = str(PurePosixPath(base) / relative)
        ran = restic.run(restic.commands.restore(snapshot.id, wanted, temporary))
        if not ran.ok:
            raise RestoreError(f"restic could not restore {relative} from snapshot {snapshot.short_id}: {ran.message}")
        yield os.path.join(temporary, base.lstrip("/"))
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        if not restic.killed:
            record.end_runs(this_run)
