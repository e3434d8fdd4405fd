"""webhook: the event as JSON, POSTed to a URL when a job finishes. Also holds the HTTP POST
that healthchecks shares."""

from __future__ import annotations

from typing import Any

from nasbox.config.model import Config, NotifyTarget
from nasbox.notify.event import Event
from nasbox.notify.urls import http_url_problem as check
from nasbox.notify.urls import redact_url as redact
from nasbox.notify.urls import url_secrets as secrets

__all__ = ["EVERY_EVENT", "NEEDS_SMTP", "check", "post", "redact", "secrets", "send"]

NEEDS_SMTP = False
EVERY_EVENT = False
TIMEOUT_S = 10  # per connection attempt and per read: a dead target must not stall a job


def send(target: NotifyTarget, event: Event, config: Config) -> None:
    if event.phase == "finish":
        post(target.target, json=event.payload())  # json= sets Content-Type: application/json


def post(url: str, **kwargs: Any) -> None:
    """POST, or raise with a reason that does not quote the URL: requests' own messages
    repeat its path and query, where services put their tokens."""
    import requests  # here: only a delivery needs it, and importing it slows every command

    try:
        response = requests.post(url, timeout=TIMEOUT_S, **kwargs)
    except requests.Timeout:
        raise RuntimeError(f"no answer within {TIMEOUT_S} s") from None
    except requests.RequestException as e:
        raise RuntimeError(root_cause(e)) from None
    if not response.ok:
        raise RuntimeError(f"HTTP {response.status_code} {response.reason}")


def root_cause(error: BaseException) -> str:
    """The innermost error, e.g. "[Errno 111] Connection refused", which names no URL."""
    while True:
        inner = error.__cause__ or error.__context__ or getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            return str(error) or type(error).__name__
        error = inner
