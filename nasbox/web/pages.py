"""What the job page shows beside the status document: history charts, the table's rows
and the tail of the job's log."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from nasbox import state
from nasbox.history import Run
from nasbox.progress import human_bytes
from nasbox.web import chart

LOG_TAIL_BYTES = 16 * 1024
LOG_TAIL_LINES = 60

# The charts of each kind: (title, the stat charted; None charts the duration).
CHARTS: dict[str, list[tuple[str, str | None]]] = {
    "sync": [("duration (s)", None), ("bytes copied", "bytes_transferred"), ("files changed", "transferred")],
    "scrub": [("duration (s)", None), ("bytes verified", "bytes_verified"), ("files repaired", "repaired")],
}


def charts(kind: str, runs: list[Run]) -> list[Markup]:
    drawn = []
    for title, stat in CHARTS.get(kind, CHARTS["sync"][:1]):
        points = [
            chart.Point(
                run.started,
                float(run.duration_s or 0) if stat is None else float(run.stats.get(stat, 0)),
                run.status or "running",
                run.summary or "",
            )
            for run in runs
        ]
        drawn.append(chart.svg(title, points))
    return drawn


def rows(runs: list[Run], tz: ZoneInfo) -> list[dict[str, Any]]:
    return [
        {
            "started": datetime.fromtimestamp(run.started, tz).strftime("%Y-%m-%d %H:%M"),
            "trigger": run.trigger,
            "status": run.status or "running",
            "duration_s": run.duration_s,
            "summary": run.summary or "",
        }
        for run in runs
    ]


def coverage(kind: str, runs: list[Run], tz: ZoneInfo) -> dict[str, Any] | None:
    """A scrub job's parity coverage as its newest run that measured it left it: files
    protected, parity on disk, and the oldest verification; None before such a run."""
    if kind != "scrub":
        return None
    for run in sorted(runs, key=lambda r: r.started, reverse=True):
        if "protected" in run.stats:
            oldest = float(run.stats.get("oldest_verified_at", 0))
            return {
                "protected": int(run.stats["protected"]),
                "parity": human_bytes(int(run.stats.get("parity_bytes", 0))),
                "oldest": datetime.fromtimestamp(oldest, tz).strftime("%Y-%m-%d %H:%M") if oldest else "never",
                "as_of": datetime.fromtimestamp(run.started, tz).strftime("%Y-%m-%d %H:%M"),
            }
    return None


def log_tail(kind: str, name: str) -> str:
    """The last lines of /config/logs/<kind>-<name>.log ("" without one)."""
    path = state.log_dir() / f"{kind}-{name}.log"
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - LOG_TAIL_BYTES))
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    lines = text.splitlines()
    if len(text.encode()) >= LOG_TAIL_BYTES:
        lines = lines[1:]  # the first is cut
    return "\n".join(lines[-LOG_TAIL_LINES:])


def history_json(runs: list[Run]) -> list[dict[str, Any]]:
    return [
        {
            "trigger": run.trigger,
            "started": run.started,
            "finished": run.finished,
            "duration_s": run.duration_s,
            "status": run.status or "running",
            "summary": run.summary,
            "stats": run.stats,
        }
        for run in runs
    ]
