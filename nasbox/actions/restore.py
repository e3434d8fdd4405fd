"""`nasbox restore JOB PATH --at TIME [--to DIR] [--force] [--dry-run] [--no-wait] [--from
offsite]`: PATH put back as the newest version taken at or before TIME holds it
(nasbox.versions.restore); with --from offsite, as the newest restic snapshot of an offsite
job made at or before TIME (or the snapshot of that ID) holds it, fetched first into a
private directory (nasbox.offsite.restore).

It runs under the job's locks (and those of the jobs sharing its paths), so no sync
or scrub runs meanwhile and no version is pruned under it; it waits for a running one, or
with --no-wait exits 75 at once. It is kept in the history (kind "restore") and logged to
/config/logs/restore-JOB.log."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from nasbox import exits, paths, stop
from nasbox.config import load_config
from nasbox.config.model import Config
from nasbox.history import record_run
from nasbox.jobs import job_locks, job_log
from nasbox.locks import Busy
from nasbox.offsite import restore as offsite
from nasbox.offsite.kind import OffsiteJob
from nasbox.sync.kind import SyncJob
from nasbox.versions.lookup import (
    UsageError,
    chosen_snapshot,
    chosen_version,
    directory_given,
    offsite_job,
    relative_path,
    versioned_job,
)
from nasbox.versions.restore import Restore
from nasbox.versions.store import Version, Versions, VersionsError

log = logging.getLogger(__name__)


def restore(args: argparse.Namespace) -> int:
    return restore_with(load_config(), args)


def restore_with(config: Config, args: argparse.Namespace) -> int:
    try:
        job = offsite_job(config, args.job) if args.origin == "offsite" else versioned_job(config, args.job)
        relative = relative_path(job, args.path)
        into = directory_given(args.to) if args.to is not None else None
    except UsageError as e:
        log.error("%s", e)
        return exits.USAGE
    stop.install_handler()
    try:
        with (
            job_locks(config, "offsite" if isinstance(job, OffsiteJob) else "sync", job.name, wait=not args.no_wait),
            job_log("restore", job.name),
        ):
            try:
                with chosen(config, job, relative, args.at) as version:
                    restoring = Restore(job, config, relative, version, into, force=args.force, dry_run=args.dry_run)
                    restoring.check()
                    result = record_run("restore", job.name, "now", restoring.run)
            except UsageError as e:
                log.error("restore %s: %s", job.name, e)
                return exits.USAGE
            except (VersionsError, offsite.RestoreError) as e:
                log.error("restore %s: %s", job.name, e)
                return exits.ERROR
    except Busy as e:
        log.warning("%s; nothing was restored (--no-wait)", e)
        return exits.SKIPPED
    except stop.Interrupted:
        log.warning("restore %s: stopped before it started", job.name)
        return exits.SKIPPED
    return result.exit_code


@contextmanager
def chosen(config: Config, job: SyncJob | OffsiteJob, relative: str, at: str) -> Iterator[Version]:
    """What --at chooses, where the restore reads it: a sync job's version, or an offsite
    snapshot fetched into a private directory for as long as the restore lasts."""
    tz = ZoneInfo(config.server.timezone)
    if isinstance(job, OffsiteJob):
        snapshot = chosen_snapshot(offsite.snapshots(config, job), at, tz)
        with offsite.fetched(config, job, snapshot, relative) as copy:
            yield Version(f"snapshot {snapshot.short_id}", snapshot.time, copy)
    else:
        yield chosen_version(Versions(paths.real(job.destination)).all(), at, tz)
