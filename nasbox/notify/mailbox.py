"""mailbox: an email through the SMTP_* settings when a job finishes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nasbox.config.model import Config, NotifyTarget, Smtp
from nasbox.notify.event import Event

if TYPE_CHECKING:
    import smtplib

NEEDS_SMTP = True
EVERY_EVENT = False
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TIMEOUT_S = 10  # per connection and per SMTP command: a dead server must not stall a job


def check(target: str) -> str | None:
    return None if EMAIL.match(target) else "expected an email address"


def redact(target: str) -> str:
    return target  # an address is no secret, and says where the mail went


def secrets(target: str) -> list[str]:
    return []


def send(target: NotifyTarget, event: Event, config: Config) -> None:
    if event.phase != "finish":
        return
    smtp = config.smtp
    if smtp is None:  # validation requires SMTP settings for a mailbox target
        raise RuntimeError("no SMTP settings: expected SMTP_HOST or smtp.host")
    # Loaded to send only: every job run imports the target types, most never mail.
    import ssl
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = event.subject
    message["From"] = smtp.sender or f"nasbox@{config.server.name}"
    message["To"] = target.target
    message.set_content(event.body_text())
    with connect(smtp) as client:
        if smtp.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(message)


def connect(smtp: Smtp) -> smtplib.SMTP:
    import smtplib
    import ssl

    # An explicit default context: without one smtplib encrypts but checks no certificate.
    if smtp.security == "tls":
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT_S, context=ssl.create_default_context())
    return smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_S)
