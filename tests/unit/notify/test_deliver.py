"""Which targets hear of which event: `on`, `jobs`, the quiet hourly parity update, and the
dead man's switch that hears everything."""
from __future__ import annotations

import pytest

from nasbox.config.model import NotifyTarget
from nasbox.notify.deliver import wanted
from nasbox.notify.event import Event
from nasbox.result import JobResult


def event(status: str, phase: str = "finish", trigger: str = "scheduled", job: str = "photos") -> Event:
    return Event(phase, JobResult(job, "sync", status, "summary", 1.0, 2.0), trigger, "nas")


WEBHOOK = NotifyTarget("ops", "webhook", "https://x/hook", on=("warning", "error"))
PING = NotifyTarget("ping", "healthchecks", "https://x/ping", on=("error",))


@pytest.mark.parametrize("target, happening, heard", [
    (WEBHOOK, event("good"), False),
    (WEBHOOK, event("warning"), True),
    (WEBHOOK, event("error", phase="start"), False),  # starts are for dead man's switches
    (PING, event("good"), True),  # hears every outcome whatever `on` says
    (PING, event("info", phase="start"), True),
    (WEBHOOK, event("error", trigger="update"), True),
    (PING, event("good", trigger="update"), False),  # the hourly parity update stays quiet when well
    (PING, event("info", phase="start", trigger="update"), False),
    (NotifyTarget("big", "webhook", "https://x", jobs=("big",)), event("error"), False),
    (NotifyTarget("big", "webhook", "https://x", jobs=("big",)), event("error", job="big"), True),
])
def test_who_hears_what(target: NotifyTarget, happening: Event, heard: bool) -> None:
    assert wanted(target, happening) is heard
