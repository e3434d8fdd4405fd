"""apprise: any Apprise URL (100+ services) when a job finishes."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from nasbox.config.model import Config, NotifyTarget
from nasbox.notify.event import Event
from nasbox.notify.urls import MASK
from nasbox.notify.urls import url_secrets as secrets

__all__ = ["EVERY_EVENT", "NEEDS_SMTP", "check", "redact", "secrets", "send"]

NEEDS_SMTP = False
EVERY_EVENT = False
URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)
NOTIFY_TYPES = {"good": "success", "info": "info", "warning": "warning", "error": "failure"}  # apprise.NotifyType


def check(target: str) -> str | None:
    return None if URL.match(target) else "expected an Apprise URL such as tgram://TOKEN/CHAT"


def redact(target: str) -> str:
    return f"{urlsplit(target).scheme}://{MASK}"  # services keep tokens in the host part too


def send(target: NotifyTarget, event: Event, config: Config) -> None:
    if event.phase != "finish":
        return
    import apprise  # here: importing it takes longer than nasbox's start, and few configure it

    notifier = apprise.Apprise()
    if not notifier.add(target.target):
        raise RuntimeError("Apprise does not accept this URL")
    # notify() returns only success or failure; Apprise's log warnings say why.
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        sent = notifier.notify(
            title=event.subject, body=event.body_text(), notify_type=NOTIFY_TYPES[event.result.status]
        )
    if not sent:
        why = captured.getvalue().strip().splitlines()
        raise RuntimeError(why[-1] if why else "Apprise reported a failed delivery")
