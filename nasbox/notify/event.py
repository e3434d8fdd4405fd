"""What a notification is about: a job run that starts or finishes, or a test."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nasbox.result import JobResult

MAX_DETAIL_CHARS = 10_000  # a log tail, not the whole log


@dataclass(frozen=True)
class Event:
    phase: str  # "start" (healthchecks only) or "finish"
    result: JobResult  # for "start": status "info", summary "started"
    trigger: str = "now"  # scheduled, now, catch-up, update (the automatic hourly parity update), test
    host: str = field(default_factory=socket.gethostname)  # the sender passes the server's name

    @property
    def label(self) -> str:
        return f"{self.result.kind} {self.result.job}"

    @property
    def subject(self) -> str:
        return f"[nasbox {self.host}] {self.label}: {self.result.status}"

    @property
    def details_text(self) -> str:
        text = "\n".join(self.result.details)
        return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "\n[...]"

    def payload(self) -> dict[str, Any]:
        """The webhook body: subject, job, status, message and details, and the run's times and stats."""
        r = self.result
        return {
            "subject": self.subject,
            "job": self.label,
            "status": r.status,
            "message": r.summary,
            "details": self.details_text,
            "text": f"{self.subject}\n{r.summary}",
            "host": self.host,
            "started": iso(r.started),
            "finished": iso(r.finished),
            "duration_s": r.duration_s,
            "stats": r.stats,
        }

    def body_text(self) -> str:
        """Plain text for mail, Apprise and healthchecks: job, status, message, details."""
        r = self.result
        lines = [
            f"Job: {self.label}",
            f"Status: {r.status}",
            f"Message: {r.summary}",
            f"Started: {iso(r.started)}",
            f"Duration: {r.duration_s} s",
        ]
        if r.details:
            lines += ["", "Details:", self.details_text]
        return "\n".join(lines) + "\n"


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
