"""Notifications: one module per type of target, found through TYPES. Each module owns
everything about its type, through the same interface (TargetType):

    NEEDS_SMTP: bool                  whether it needs the smtp settings
    EVERY_EVENT: bool                 True: it hears every start and outcome, whatever `on` says
    check(target) -> str | None       what is wrong with a target string, for `config check`
    redact(target) -> str             the target fit to print in logs and `config show`
    secrets(target) -> list[str]      parts that must never appear in an error message
    send(target, event, config)       deliver, or raise with a reason

deliver() picks the targets, retries, logs failures and never raises: a failed delivery
never fails or blocks a job beyond its bounded retries.
"""

from __future__ import annotations

from typing import Protocol

from nasbox.config.model import Config, NotifyTarget
from nasbox.notify import apprise_urls, healthchecks, mailbox, webhook
from nasbox.notify.event import Event


class TargetType(Protocol):
    NEEDS_SMTP: bool
    EVERY_EVENT: bool

    def check(self, target: str) -> str | None: ...

    def redact(self, target: str) -> str: ...

    def secrets(self, target: str) -> list[str]: ...

    def send(self, target: NotifyTarget, event: Event, config: Config) -> None: ...


TYPES: dict[str, TargetType] = {
    "webhook": webhook,
    "mailbox": mailbox,
    "apprise": apprise_urls,
    "healthchecks": healthchecks,
}
