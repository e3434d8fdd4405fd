"""What `nasbox versions` and `nasbox restore` are asked about: a sync job that keeps
versions, a path in it, and the version taken at or before a moment.

A path is named relative to the job's SOURCE (DESTINATION and its versions mirror it), or
as an absolute path inside SOURCE or DESTINATION. It is taken as written: no symlink in it
is resolved, since both trees hold what users made.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import PurePosixPath
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from nasbox import paths
from nasbox.config import Config
from nasbox.offsite.kind import OffsiteJob
from nasbox.offsite.restic import Snapshot
from nasbox.sync.kind import SyncJob
from nasbox.versions.store import VERSIONS_DIR, Version, version_time

EXPECTED_TIME = (
    "expected a time in ISO 8601 (2026-11-20T14:00, with an offset such as +01:00 or Z or "
    "without one for the server's time zone, or a date alone for the start of that day), "
    "or a version's name as `nasbox versions` prints it (@GMT-YYYY.MM.DD-HH.MM.SS)"
)


class UsageError(Exception):
    """The command asks for a job, path, time or version that is not there (exit 2)."""


def versioned_job(config: Config, name: str) -> SyncJob:
    job = config.sync.get(name)
    if job is None or not job.versions:
        keeping = sorted(n for n, j in config.sync.items() if j.versions)
        why = f"no sync job named {name}" if job is None else f"sync job {name} keeps no versions"
        raise UsageError(f"{why}; sync jobs that keep versions: {', '.join(keeping) or 'none'}")
    return job


def relative_path(job: SyncJob | OffsiteJob, text: str) -> str:
    """PATH as a path relative to SOURCE (and so to DESTINATION and each version, or to each
    offsite snapshot)."""
    written = PurePosixPath(text)
    if not text or ".." in written.parts:
        raise UsageError(f"PATH {text!r}: expected a path in the source without '..'")
    relative = written
    if written.is_absolute():
        trees = [job.source] + ([job.destination] if isinstance(job, SyncJob) else [])
        roots = [root for tree in trees for root in (tree, paths.real(tree))]
        holding = [root for root in map(PurePosixPath, roots) if written.is_relative_to(root)]
        if not holding:
            named = f"the source {job.source}"
            if isinstance(job, SyncJob):
                named += f" and the destination {job.destination}"
            raise UsageError(f"{text} lies outside {named}")
        relative = written.relative_to(holding[0])
    if not relative.parts:
        raise UsageError(f"PATH {text!r} names the whole tree; name a file or directory in it")
    if relative.parts[0] == VERSIONS_DIR:
        raise UsageError(f"{text} lies in the versions themselves; name the path in the source and choose with --at")
    return str(relative)


def offsite_job(config: Config, name: str) -> OffsiteJob:
    job = config.jobs.get("offsite", {}).get(name)
    if job is None:
        jobs = sorted(config.jobs.get("offsite", {}))
        raise UsageError(f"no offsite job named {name}; offsite jobs: {', '.join(jobs) or 'none'}")
    return job


def chosen_snapshot(snapshots: list[Snapshot], at: str, tz: ZoneInfo) -> Snapshot:
    """The snapshot whose ID starts with `at`, or the newest made at or before the time `at`
    (snapshots: oldest first)."""
    if not snapshots:
        raise UsageError("the repository holds no snapshot of this job yet")
    oldest = f"the oldest is {snapshots[0].short_id} ({shown_time(snapshots[0].time, tz)})"
    if re.fullmatch(r"[0-9a-f]{8,64}", at):
        named = [s for s in snapshots if s.id.startswith(at)]
        if len(named) != 1:
            raise UsageError(f"--at {at}: {'no' if not named else 'more than one'} snapshot has that ID; {oldest}")
        return named[0]
    return newest_by(snapshots, moment(at, tz), tz, "no snapshot was made", oldest)


class Timed(Protocol):
    @property
    def time(self) -> datetime: ...


T = TypeVar("T", bound=Timed)


def newest_by(items: list[T], wanted: datetime, tz: ZoneInfo, none: str, oldest: str) -> T:
    """The newest of items (oldest first) made at or before wanted; else the error `none at
    or before WANTED; oldest`."""
    before = [item for item in items if item.time <= wanted]
    if not before:
        raise UsageError(f"{none} at or before {shown_time(wanted, tz)}; {oldest}")
    return before[-1]


def shown_time(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def moment(text: str, tz: ZoneInfo) -> datetime:
    """An ISO 8601 time; without an offset, in tz."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r}: {EXPECTED_TIME}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def chosen_version(versions: list[Version], at: str, tz: ZoneInfo) -> Version:
    """The version named `at`, or the newest taken at or before the time `at` (versions:
    oldest first, as Versions.all gives them)."""
    if not versions:
        raise UsageError("no version has been taken yet")
    oldest = f"the oldest is {versions[0].name} ({shown_time(versions[0].time, tz)})"
    if at.startswith("@"):
        if version_time(at) is None:
            raise UsageError(f"--at {at!r}: {EXPECTED_TIME}")
        named = [v for v in versions if v.name == at]
        if not named:
            raise UsageError(f"there is no version {at} (pruned?); {oldest}, the newest {versions[-1].name}")
        return named[0]
    return newest_by(versions, moment(at, tz), tz, "no version was taken", oldest)


def directory_given(text: str) -> str:
    """The directory of `--to DIR` as an absolute path (the caller's working directory for a
    relative one), without '..', which a walk that follows no link cannot take as meant."""
    if not text or ".." in PurePosixPath(text).parts:
        raise UsageError(f"--to {text!r}: expected a directory's path without '..'")
    return os.path.abspath(text)
