"""The space warning: a notification when a filesystem holding shares or job paths reaches
`space_warning` percent used, once, and one when it is back under, once. It counts as back
under HYSTERESIS points below the threshold, so a disk hovering at the line does not send a
pair of messages at every check. Which filesystems are over is kept in
/config/state/space-warnings.json, so a restart neither repeats nor forgets a warning. The
scheduler checks every CHECK_S."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from nasbox import state
from nasbox.config import Config
from nasbox.filesystems import Filesystem, filesystems
from nasbox.notify.deliver import deliver
from nasbox.notify.event import Event
from nasbox.progress import human_bytes
from nasbox.result import JobResult

log = logging.getLogger(__name__)

STATE_FILE = "space-warnings.json"
CHECK_S = 60.0
HYSTERESIS = 1.0  # percentage points
KIND = "space"  # what notifications name it by: "space /backup"


def check(config: Config, state_dir: Path | None = None) -> list[JobResult]:
    """Notify each filesystem that crossed the threshold since the last check, either way;
    what was notified. Never raises: a check that fails is logged and tried again."""
    try:
        return _check(config, (state_dir or state.state_dir()) / STATE_FILE)
    except OSError as e:
        log.warning("space check failed: %s; again in %d s", e, CHECK_S)
        return []


def _check(config: Config, path: Path) -> list[JobResult]:
    limit = config.server.space_warning
    before: dict[str, dict] = state.read_json(path, {})
    over: dict[str, dict] = {}
    changes: list[JobResult] = []
    for fs in filesystems(config):
        percent = fs.usage.used_percent
        if fs.mountpoint in before and percent >= limit - HYSTERESIS:
            over[fs.mountpoint] = before[fs.mountpoint]
        elif percent >= limit:
            over[fs.mountpoint] = {"since": time.time()}
            changes.append(_result(fs, "warning", f"{_full(fs)}, at or above space_warning {limit}%"))
        elif fs.mountpoint in before:
            changes.append(_result(fs, "info", f"{_full(fs)}: back under space_warning {limit}%"))
    if over != before:
        state.write_json(path, over)
    for result in changes:
        log.log(logging.WARNING if result.status == "warning" else logging.INFO, "space: %s", result.summary)
        deliver(config, Event("finish", result, "scheduled", config.server.name))
    return changes


def _full(fs: Filesystem) -> str:
    u = fs.usage
    return f"{fs.mountpoint} is {u.used_percent:.0f}% full ({human_bytes(u.used)} used, {human_bytes(u.free)} free)"


def _result(fs: Filesystem, status: str, summary: str) -> JobResult:
    now = time.time()
    details = [f"it holds {what}" for what in fs.holds]
    return JobResult(fs.mountpoint, KIND, status, summary, now, now, details=details)
