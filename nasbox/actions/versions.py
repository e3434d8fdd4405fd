"""`nasbox versions JOB [PATH] [--json]`: the versions a sync job keeps, newest first, or the
versions holding one path, with what it was in each and where it changed; with --from
offsite, an offsite job's restic snapshots, newest first."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any
from zoneinfo import ZoneInfo

from nasbox import exits, paths
from nasbox.actions.status import table
from nasbox.config import load_config
from nasbox.config.model import Config
from nasbox.offsite import restore as offsite
from nasbox.text import escaped
from nasbox.versions.file_history import Held, history
from nasbox.versions.lookup import UsageError, offsite_job, relative_path, shown_time, versioned_job
from nasbox.versions.store import Version, Versions, VersionsError

log = logging.getLogger(__name__)


def versions(job_name: str, path: str | None, as_json: bool, origin: str = "versions") -> int:
    config = load_config()
    tz = ZoneInfo(config.server.timezone)
    if origin == "offsite":
        return snapshots(config, job_name, path, as_json, tz)
    try:
        job = versioned_job(config, job_name)
        relative = relative_path(job, path) if path is not None else None
    except UsageError as e:
        log.error("%s", e)
        return exits.USAGE
    try:
        newest_first = Versions(paths.real(job.destination)).all()[::-1]
    except VersionsError as e:
        log.error("%s", e)
        return exits.ERROR
    data: dict[str, Any] = {"job": job.name, "destination": job.destination, "timezone": tz.key}
    if relative is None:
        data["versions"] = [{"name": v.name, "taken": taken(v, tz)} for v in newest_first]
        rows = [[v.name, shown_time(v.time, tz)] for v in newest_first]
        heading = f"sync {job.name}: {len(rows)} versions of {job.destination}"
        header = ["VERSION", "TAKEN"]
    else:
        held = history(newest_first[::-1], relative)[::-1]
        data["path"] = relative
        data["versions"] = [as_dict(h, tz) for h in held]
        rows = [as_row(h, tz) for h in held]
        holding = f"{len(rows)} of the {len(newest_first)}" if rows else f"none of the {len(newest_first)}"
        heading = f"sync {job.name}: {escaped(relative)} is in {holding} versions"
        header = ["VERSION", "TAKEN", "TYPE", "SIZE", "MODIFIED", "CHANGE"]
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
    elif not newest_first:
        print(f"sync {job.name}: no version of {job.destination} has been taken yet")
    else:
        print(f"{heading} (newest first, times in {tz.key})")
        if rows:
            print(table([header, *rows]))
    return exits.DONE


def taken(version: Version, tz: ZoneInfo) -> str:
    return version.time.astimezone(tz).isoformat()


def as_dict(held: Held, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "name": held.version.name,
        "taken": taken(held.version, tz),
        "type": held.type,
        "size": held.size,
        "modified": held.modified.astimezone(tz).isoformat(),
        "target": held.target,
        "change": held.change,
    }


def as_row(held: Held, tz: ZoneInfo) -> list[str]:
    size = f"{held.size} entries" if held.type == "directory" else str(held.size)
    if held.target is not None:
        size += f" -> {escaped(held.target)}"
    change = "oldest" if held.change is None else "" if held.change == "same" else held.change
    modified = shown_time(held.modified, tz)
    return [held.version.name, shown_time(held.version.time, tz), held.type, size, modified, change]


def snapshots(config: Config, job_name: str, path: str | None, as_json: bool, tz: ZoneInfo) -> int:
    """An offsite job's snapshots: ID (what `restore --at` takes), time, files."""
    try:
        job = offsite_job(config, job_name)
        if path is not None:
            raise UsageError("PATH: offsite snapshots are listed whole; `nasbox restore --from offsite` takes PATH")
    except UsageError as e:
        log.error("%s", e)
        return exits.USAGE
    try:
        newest_first = offsite.snapshots(config, job)[::-1]
    except offsite.RestoreError as e:
        log.error("offsite %s: %s", job.name, e)
        return exits.ERROR
    if as_json:
        listed = [{"id": s.id, "short_id": s.short_id, "time": s.time.astimezone(tz).isoformat()} for s in newest_first]
        json.dump(
            {"job": job.name, "source": job.source, "timezone": tz.key, "snapshots": listed}, sys.stdout, indent=2
        )
        print()
    elif not newest_first:
        print(f"offsite {job.name}: the repository holds no snapshot of {job.source} yet")
    else:
        print(f"offsite {job.name}: {len(newest_first)} snapshots of {job.source} (newest first, times in {tz.key})")
        print(table([["SNAPSHOT", "TAKEN"], *[[s.short_id, shown_time(s.time, tz)] for s in newest_first]]))
    return exits.DONE
