"""`nasbox health`: the image's HEALTHCHECK: smbd answers and the scheduler is alive."""

from __future__ import annotations

import time

from nasbox import state
from nasbox.health import smb_answers
from nasbox.scheduler import HEARTBEAT_FILE, HEARTBEAT_S

STALE_AFTER_S = 4 * HEARTBEAT_S


def scheduler_alive() -> tuple[bool, str]:
    try:
        age = time.time() - (state.run_dir() / HEARTBEAT_FILE).stat().st_mtime
    except FileNotFoundError:
        return False, "no heartbeat yet"
    return age < STALE_AFTER_S, f"heartbeat {age:.0f} s ago"


def health(port: int) -> int:
    checks = {"smbd": smb_answers(port=port), "scheduler": scheduler_alive()}
    for name, (ok, detail) in checks.items():
        print(f"{name}: {'ok' if ok else 'FAILING'} ({detail})")
    return 0 if all(ok for ok, _ in checks.values()) else 1
