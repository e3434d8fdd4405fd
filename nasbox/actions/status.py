"""`nasbox status [--json]`: shares, mounts, and every job with its next and last run."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from nasbox import mounts
from nasbox.config import Config, load_config
from nasbox.history import History
from nasbox.jobs import all_jobs
from nasbox.scheduler import next_runs
from nasbox.sync.engine import Holds
from nasbox import state


def when(timestamp: float | None, tz: ZoneInfo) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz).isoformat(timespec="seconds")


def collect(config: Config, history: History) -> dict[str, Any]:
    tz = ZoneInfo(config.server.timezone)
    upcoming = next_runs(config, datetime.now(tz))
    holds = Holds(state.state_dir())
    jobs = []
    for kind, name in all_jobs(config):
        job = config.sync[name] if kind == "sync" else config.scrub[name]
        last = history.last(kind, name)
        nexts = upcoming[(kind, name)]
        hold = holds.get(name) if kind == "sync" else None
        jobs.append({
            "kind": kind, "name": name, "schedule": job.schedule,
            "next_run": nexts["run"].isoformat(timespec="minutes"),
            "next_parity_update": nexts["update"].isoformat(timespec="minutes") if "update" in nexts else None,
            "held": hold["reason"] if hold else None,
            "last_run": None if last is None else {
                "trigger": last.trigger, "started": when(last.started, tz), "duration_s": last.duration_s,
                "status": last.status or "running", "summary": last.summary,
            },
        })
    return {
        "shares": [{"name": s.name, "path": s.path, "read_users": list(s.read_users),
                    "write_users": list(s.write_users)} for s in config.shares.values()],
        "mounts": [{"name": m.name, "source": mounts.unc(m), "mountpoint": m.mountpoint,
                    "mounted": mounts.mounted_source(m.mountpoint) == mounts.unc(m)} for m in config.mounts.values()],
        "jobs": jobs,
    }


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def render(data: dict[str, Any]) -> str:
    parts = []
    if data["shares"]:
        parts.append(table([["SHARE", "PATH", "WRITE", "READ"]] + [
            [s["name"], s["path"], ",".join(s["write_users"]) or "-", ",".join(s["read_users"]) or "-"]
            for s in data["shares"]]))
    if data["mounts"]:
        parts.append(table([["MOUNT", "SOURCE", "MOUNTPOINT", "STATE"]] + [
            [m["name"], m["source"], m["mountpoint"], "mounted" if m["mounted"] else "NOT MOUNTED"]
            for m in data["mounts"]]))
    if data["jobs"]:
        rows = [["JOB", "SCHEDULE", "NEXT RUN", "LAST RUN", "TOOK", "STATUS", "SUMMARY"]]
        for j in data["jobs"]:
            last = j["last_run"] or {}
            status = "HELD" if j["held"] else last.get("status", "never run")
            rows.append([f"{j['kind']} {j['name']}", j["schedule"], j["next_run"].replace("T", " "),
                         (last.get("started") or "-").replace("T", " ")[:16],
                         f"{last['duration_s']} s" if last.get("duration_s") is not None else "-",
                         status, (j["held"] or last.get("summary") or "")[:70]])
        parts.append(table(rows))
    return "\n\n".join(parts) or "nothing configured"


def status(as_json: bool) -> int:
    config = load_config()
    history = History()
    try:
        data = collect(config, history)
    finally:
        history.close()
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print(render(data))
    return 0
