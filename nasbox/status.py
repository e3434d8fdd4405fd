"""The status document: the login ban, shares, mounts, every job with its schedule, next
and last run and any hold, and the space of the filesystems holding them. `nasbox status
--json` prints it as it is; the table, and any page or metrics, render it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from nasbox import filesystems, mounts
from nasbox.config import Config
from nasbox.history import History
from nasbox.kinds import KINDS
from nasbox.samba import login_ban
from nasbox.scheduler import next_runs


def when(timestamp: float | None, tz: ZoneInfo) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz).isoformat(timespec="seconds")


def document(config: Config, history: History) -> dict[str, Any]:
    tz = ZoneInfo(config.server.timezone)
    upcoming = next_runs(config, datetime.now(tz))
    jobs = []
    for kind in KINDS.values():
        for name, job in sorted(kind.jobs(config).items()):
            last = history.last(kind.name, name)
            nexts = upcoming[(kind.name, name)]
            jobs.append(
                {
                    "kind": kind.name,
                    "name": name,
                    "schedule": job.schedule,
                    "next_run": nexts["run"].isoformat(timespec="minutes"),
                    "next_parity_update": nexts["update"].isoformat(timespec="minutes") if "update" in nexts else None,
                    **kind.status(config, job),
                    "last_run": None
                    if last is None
                    else {
                        "trigger": last.trigger,
                        "started": when(last.started, tz),
                        "duration_s": last.duration_s,
                        "status": last.status or "running",
                        "summary": last.summary,
                    },
                }
            )
    return {
        "login_ban": login_ban.status(),
        "shares": [
            {"name": s.name, "path": s.path, "read_users": list(s.read_users), "write_users": list(s.write_users)}
            for s in config.shares.values()
        ],
        "mounts": [
            {"name": m.name, "source": mounts.unc(m), "mountpoint": m.mountpoint, "mounted": mounts.is_mounted(m)}
            for m in config.mounts.values()
        ],
        "jobs": jobs,
        "filesystems": filesystems.document(config),
    }
