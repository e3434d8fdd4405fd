"""apprise: any Apprise URL (100+ services) when a job finishes (CONTRACT 5)."""
from __future__ import annotations

import logging

from nasbox.config.model import Config, NotifyTarget
from nasbox.notify.event import Event

NOTIFY_TYPES = {"good": "success", "info": "info", "warning": "warning", "error": "failure"}  # apprise.NotifyType


def send(target: NotifyTarget, event: Event, config: Config) -> None:
    if event.phase != "finish":
        return
    import apprise  # here: importing it takes longer than nasbox's start, and few configure it

    notifier = apprise.Apprise()
    if not notifier.add(target.target):
        raise RuntimeError("Apprise does not accept this URL")
    # notify() returns only success or failure; Apprise's log warnings say why.
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        sent = notifier.notify(title=event.subject, body=event.body_text(),
                               notify_type=NOTIFY_TYPES[event.result.status])
    if not sent:
        why = captured.getvalue().strip().splitlines()
        raise RuntimeError(why[-1] if why else "Apprise reported a failed delivery")
