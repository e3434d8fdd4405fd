"""Schedules: the one definition of named schedules, of when a schedule fires, and of the
entries the scheduler keeps (a job's own runs, and extra ones a kind asks for, such as a
scrub job's hourly parity update).

Named schedules have fixed times: hourly at minute 0, daily at 02:30, weekly on Sunday at
04:00, monthly on the 1st at 05:00. On the day clocks go back, a schedule with a fixed hour
runs once, not twice.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from croniter import croniter as Croniter

NAMED_SCHEDULES = {"hourly": "0 * * * *", "daily": "30 2 * * *", "weekly": "0 4 * * 0", "monthly": "0 5 1 * *"}


def cron_of(schedule: str) -> str:
    return NAMED_SCHEDULES.get(schedule, schedule)


def cron_times(cron: str, start: datetime) -> Croniter:
    # croniter is loaded when a time is asked for or an expression checked, not by every
    # command that imports this module: its import costs a subprocess (`file`, through
    # platform.architecture) besides its own modules.
    from croniter import croniter

    return croniter(cron, start)


def is_valid(schedule: str) -> bool:
    """A named schedule or a 5-field cron expression."""
    if schedule in NAMED_SCHEDULES:
        return True
    from croniter import croniter  # see cron_times

    return len(schedule.split()) == 5 and croniter.is_valid(schedule)


def next_fire(cron: str, after: datetime) -> datetime:
    """The first fire time after `after` (aware, in TZ). When clocks go back, a fixed-hour
    schedule would fire twice at the same wall-clock time: the repeat is skipped."""
    times = cron_times(cron, after)
    fire: datetime = times.get_next(datetime)
    fixed_hour = cron.split()[1] != "*"
    while fixed_hour and fire.replace(tzinfo=None) == after.replace(tzinfo=None):
        fire = times.get_next(datetime)
    return fire


def more_often_than_hourly(cron: str, tz: ZoneInfo) -> bool:
    """Whether a schedule fires at least every hour."""
    times = cron_times(cron, datetime(2025, 1, 1, tzinfo=tz))
    fires = [times.get_next(datetime) for _ in range(25)]
    return all(b - a <= timedelta(hours=1) for a, b in pairwise(fires))


@dataclass(frozen=True)
class ScheduleEntry:
    """One schedule entry: `nasbox KIND NAME --now` at the fire times of cron.

    purpose "run" is the job's own schedule; any other purpose (e.g. "update") names an
    extra entry, which runs with extra_args and is its own trigger (history, notifications)."""

    kind: str
    name: str
    cron: str
    purpose: str = "run"
    extra_args: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}:{self.purpose}"

    def trigger(self, catching_up: bool) -> str:
        if self.purpose != "run":
            return self.purpose
        return "catch-up" if catching_up else "scheduled"

    def arguments(self, trigger: str) -> list[str]:
        """`nasbox`'s arguments for a run."""
        return job_arguments(self.kind, self.name, "--trigger", trigger, *self.extra_args)

    def argv(self, trigger: str) -> list[str]:
        return job_argv(self.kind, self.name, "--trigger", trigger, *self.extra_args)


def job_arguments(kind: str, name: str, *options: str) -> list[str]:
    return [kind, name, "--now", *options]


def job_argv(kind: str, name: str, *options: str) -> list[str]:
    """`nasbox KIND NAME --now OPTIONS` run by this Python. -P: the working directory does not
    go on sys.path, so a `nasbox` package planted there is never imported (jobs run as root)."""
    return [sys.executable, "-P", "-m", "nasbox", *job_arguments(kind, name, *options)]
