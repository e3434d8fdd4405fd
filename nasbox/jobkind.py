"""What a job kind is: the one interface through which the scheduler, locks, history, status,
the CLI and configuration loading know a kind of job (sync, scrub, ...).

A kind is one package whose `kind.py` holds its configuration model (a frozen dataclass with
at least `name` and `schedule`), a JobKind subclass, and the instance `KIND`, which
nasbox.kinds lists. See README "Adding a job kind".
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from nasbox.schedules import ScheduleEntry, cron_of

if TYPE_CHECKING:
    from nasbox.config.checker import Checker
    from nasbox.config.model import Config
    from nasbox.result import JobResult


class Job(Protocol):
    """What every kind's model has."""

    @property
    def name(self) -> str: ...

    @property
    def schedule(self) -> str: ...


class JobKind(ABC):
    name: ClassVar[str]  # the verb (`nasbox sync`), the YAML section, SYNC_<ID>, the history's kind
    summary: ClassVar[str]  # one line for `nasbox --help`
    # The words of its environment spec string (SYNC_<ID>="SOURCE DESTINATION SCHEDULE");
    # each, lower-cased, is a key of its YAML items.
    env_words: ClassVar[tuple[str, ...]]
    # Option variables beside its item (SYNC_<ID>_VERSIONS): the option -> its value read
    # into the item's YAML keys (ValueError: why the value is wrong).
    env_options: ClassVar[dict[str, Callable[[str], dict[str, Any]]]] = {}

    @abstractmethod
    def build(self, c: Checker) -> dict[str, Any]:
        """The models of the section's schema-valid items; problems reported through c."""

    @abstractmethod
    def paths(self, job: Any) -> list[str]:
        """The paths a run reads or writes: runs whose paths overlap never run together."""

    @abstractmethod
    def runner(self, config: Config, job: Any, args: argparse.Namespace) -> Callable[[], JobResult]:
        """What `nasbox KIND JOB --now` with these options runs (once its locks are held)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:  # noqa: B027 - optional: none by default
        """The options of `nasbox KIND` beyond the ones every kind takes."""

    def schedule(self, job: Any, tz: ZoneInfo) -> list[ScheduleEntry]:
        """Its schedule entries: its own schedule, and any extra ones it needs."""
        return [ScheduleEntry(self.name, job.name, cron_of(job.schedule))]

    def status(self, config: Config, job: Any) -> dict[str, Any]:
        """Fields of its own for `nasbox status`; "held" is the reason the job is held, or None."""
        return {"held": None}

    def shown(self, job: dict[str, Any]) -> dict[str, Any]:
        """One of its jobs as `config show` prints it (the model as plain data): secrets masked."""
        return job

    def jobs(self, config: Config) -> Mapping[str, Any]:
        return config.jobs.get(self.name, {})
