"""healthchecks: pings URL/start when a job starts, URL when it finishes well, URL/fail when
it fails or was skipped, the summary as body, so healthchecks.io can also alert on a job
that never ran or never finished. As a dead man's switch it hears every event."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from nasbox.config.model import Config, NotifyTarget
from nasbox.notify.event import Event
from nasbox.notify.urls import http_url_problem as check
from nasbox.notify.urls import redact_url as redact
from nasbox.notify.urls import url_secrets as secrets
from nasbox.notify.webhook import post

__all__ = ["EVERY_EVENT", "NEEDS_SMTP", "check", "redact", "secrets", "send"]

NEEDS_SMTP = False
EVERY_EVENT = True

MAX_BODY_BYTES = 100_000  # healthchecks.io keeps no more of a ping's body


def send(target: NotifyTarget, event: Event, config: Config) -> None:
    result = event.result
    body = event.body_text()
    if event.phase == "start":
        url = ping_url(target.target, "start")
    elif result.skipped:
        # The job did not run (a mount down, held, stopped): a dead man's switch must hear of it.
        url, body = ping_url(target.target, "fail"), "Skipped: the job did not run.\n" + body
    else:
        url = ping_url(target.target, "fail") if result.status == "error" else target.target
    data = body.encode()[:MAX_BODY_BYTES].decode(errors="ignore").encode()  # no split character
    post(url, data=data, headers={"Content-Type": "text/plain; charset=utf-8"})


def ping_url(url: str, signal: str) -> str:
    """URL/signal, kept before a query such as ?create=1."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + signal))
