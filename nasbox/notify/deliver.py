"""Which targets hear of an event, and delivery with retries that never fails a job."""

from __future__ import annotations

import logging
import time

from nasbox.config.model import Config, NotifyTarget
from nasbox.notify import TYPES
from nasbox.notify.event import Event
from nasbox.notify.urls import MASK
from nasbox.result import JobResult

log = logging.getLogger(__name__)

ATTEMPTS = 3
BACKOFF_S = 1.0  # waits 1 s, then 2 s, between attempts
UPDATE_STATUSES = ("warning", "error")  # the hourly parity update stays quiet when all is well


def deliver(config: Config, event: Event, all_targets: bool = False) -> list[str]:
    """Send event to the targets that want it (every target with all_targets, for a test);
    returns one line per failed delivery, "NAME (TYPE): reason". Never raises."""
    problems = []
    for target in config.notify.values():
        if all_targets or wanted(target, event):
            problem = attempt(target, event, config)
            if problem:
                problems.append(f"{label(target)}: {problem}")
    return problems


def wanted(target: NotifyTarget, event: Event) -> bool:
    status = event.result.status
    if target.jobs and event.result.job not in target.jobs:
        return False
    if event.trigger == "update" and status not in UPDATE_STATUSES:
        return False  # a start ("info") too: healthchecks would wait for a finish never sent
    if TYPES[target.type].EVERY_EVENT:
        return True
    if event.phase == "start":
        return False
    return status in target.on


def attempt(target: NotifyTarget, event: Event, config: Config) -> str | None:
    """None once delivered, else the last failure's reason after ATTEMPTS tries."""
    kind = TYPES[target.type]
    for number in range(1, ATTEMPTS + 1):
        try:
            kind.send(target, event, config)
            return None
        except Exception as e:  # noqa: BLE001 - whatever a target does, the job goes on
            reason = masked_reason(str(e) or type(e).__name__, target)
        where = f"{label(target)} at {kind.redact(target.target)}"
        if number < ATTEMPTS:
            wait = BACKOFF_S * 2 ** (number - 1)
            log.warning(
                "notification to %s failed (attempt %d of %d, retrying in %g s): %s",
                where,
                number,
                ATTEMPTS,
                wait,
                reason,
            )
            time.sleep(wait)
        else:
            log.error("notification to %s failed after %d attempts: %s", where, ATTEMPTS, reason)
    return reason


def label(target: NotifyTarget) -> str:
    return f"{target.name} ({target.type})"


def masked_reason(reason: str, target: NotifyTarget) -> str:
    """The reason a delivery failed, with the target's secret parts masked should it quote them."""
    for secret in TYPES[target.type].secrets(target.target):
        reason = reason.replace(secret, MASK)
    return reason


def test_event(config: Config) -> Event:
    """What `nasbox notify --test` sends."""
    now = time.time()
    result = JobResult(
        job="test", kind="notify", status="info", summary="nasbox test notification", started=now, finished=now
    )
    return Event(phase="finish", result=result, trigger="test", host=config.server.name)
