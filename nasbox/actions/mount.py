"""`nasbox mount [--status]`, and the supervised keeper that retries and unmounts on stop."""

from __future__ import annotations

import logging
import signal
import time

from nasbox import exits, mounts, state
from nasbox.config import load_config

log = logging.getLogger(__name__)

RETRY_FIRST_S = 30
RETRY_MAX_S = 600


def mount(show_status: bool) -> int:
    config = load_config()
    if show_status:
        last = {s["name"]: s for s in state.read_json(mounts.status_file(), [])}
        for m in config.mounts.values():
            up = mounts.is_mounted(m)
            error = "" if up else f"  ({last.get(m.name, {}).get('error') or 'not tried yet'})"
            print(f"{m.name}: {mounts.unc(m)} on {m.mountpoint}: {'mounted' if up else 'NOT MOUNTED'}{error}")
        return exits.DONE
    states = mounts.mount_all(config)
    return exits.DONE if all(s.mounted for s in states) else exits.SKIPPED


def keep() -> int:
    """Retry mounts that are down, with backoff; unmount everything on SIGTERM."""
    config = load_config()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    delay = RETRY_FIRST_S
    while not stopping:
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.5)
        if stopping:
            break
        down = [m for m in config.mounts.values() if not mounts.is_mounted(m)]
        if down:
            states = mounts.mount_all(config)
            delay = RETRY_FIRST_S if all(s.mounted for s in states) else min(delay * 2, RETRY_MAX_S)
    mounts.unmount_all(config)
    log.info("mounts undone")
    return exits.DONE
