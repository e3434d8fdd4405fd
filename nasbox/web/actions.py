"""What the administrator may do from the dashboard: run a job now, release a sync job's
hold, send a test notification."""

from __future__ import annotations

import subprocess
import threading

from nasbox import state
from nasbox.config.model import Config
from nasbox.notify.deliver import deliver, test_event
from nasbox.schedules import job_argv


def run_now(kind: str, name: str) -> None:
    """Start `nasbox KIND NAME --now --no-wait` in the background, as a person would; its
    result goes to the history, the log and notifications as any run's does."""
    argv = job_argv(kind, name, "--no-wait", "--trigger", "web")
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    threading.Thread(target=child.wait, daemon=True).start()  # reaped when it ends


def release_hold(name: str) -> None:
    from nasbox.holds import Holds

    Holds(state.state_dir()).release(name)


def test_notification(config: Config) -> list[str]:
    """The problems of the targets that failed (empty: every target got it)."""
    return deliver(config, test_event(config), all_targets=True)
