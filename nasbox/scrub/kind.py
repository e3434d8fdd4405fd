"""The scrub job kind: its model, its validation, and how nasbox runs it. A scrub scheduled
less often than hourly also gets a parity update (`--update-only`) every hour at minute 15,
so that new files are protected within the hour."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from nasbox.durations import seconds
from nasbox.jobkind import JobKind
from nasbox.schedules import ScheduleEntry, cron_of, more_often_than_hourly
from nasbox.scrub.guards import database_problem
from nasbox.space import min_free_problem

if TYPE_CHECKING:
    from nasbox.config.checker import Checker
    from nasbox.config.model import Config
    from nasbox.result import JobResult

HOURLY_UPDATE = "15 * * * *"


@dataclass(frozen=True)
class ScrubJob:
    name: str
    directory: str
    database: str  # absolute: a relative DATABASE is resolved under directory
    redundancy: int  # percent
    schedule: str
    exclude: tuple[str, ...] = ()
    verify_percent: int = 100
    verify_older_than_s: int = 0
    nice: int = 10
    ionice: str = "idle"
    max_delete: int | str | None = None  # files whose parity one run may remove; None: 50%
    min_free: int | str | None = None  # left free on DATABASE's filesystem; None: nasbox.space's default


class ScrubKind(JobKind):
    name = "scrub"
    summary = "verify and repair with par2 parity, and update it"
    env_words = ("DIRECTORY", "DATABASE", "REDUNDANCY", "SCHEDULE")

    def build(self, c: Checker) -> dict[str, ScrubJob]:
        jobs: dict[str, ScrubJob] = {}
        databases: dict[str, str] = {}
        for name, item in c.clean("scrub").items():
            where = ("scrub", name)
            directory = PurePosixPath(item["directory"])
            database = directory / item["database"]  # an absolute DATABASE replaces directory
            if ".." in database.parts or directory.is_relative_to(database):
                c.problem(where + ("database",), "expected a directory of its own (not DIRECTORY or above it, no '..')")
            elif str(database) in databases:
                c.problem(
                    where + ("database",),
                    f"already the database of scrub {databases[str(database)]}; expected one database per job",
                )
            elif refused := database_problem(str(directory), str(database)):
                c.problem(where + ("database",), refused)
            databases[str(database)] = name
            if problem := min_free_problem(item.get("min_free")):
                c.problem(where + ("min_free",), problem)
            older = item.get("verify_older_than", "0s")
            jobs[name] = ScrubJob(
                name=name,
                directory=str(directory),
                database=str(database),
                redundancy=int(item["redundancy"].rstrip("%")),
                schedule=item["schedule"],
                exclude=tuple(item.get("exclude", ())),
                verify_percent=item.get("verify_percent", 100),
                verify_older_than_s=seconds(older),
                nice=item.get("nice", 10),
                ionice=item.get("ionice", "idle"),
                max_delete=item.get("max_delete"),
                min_free=item.get("min_free"),
            )
        return jobs

    def paths(self, job: ScrubJob) -> list[str]:
        return [job.directory, job.database]

    def schedule(self, job: ScrubJob, tz: ZoneInfo) -> list[ScheduleEntry]:
        entries = super().schedule(job, tz)
        if not more_often_than_hourly(cron_of(job.schedule), tz):
            entries.append(ScheduleEntry(self.name, job.name, HOURLY_UPDATE, "update", ("--update-only",)))
        return entries

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--update-only",
            action="store_true",
            help="parity for new and changed files, remove orphans; no verification",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="pass a safety skip: a mount point no longer mounted, DATABASE missing, removals over max_delete",
        )

    def runner(self, config: Config, job: ScrubJob, args: argparse.Namespace) -> Callable[[], JobResult]:
        # The engine only when a run needs it: loading the configuration stays light.
        from nasbox.scrub.engine import Scrub, scrub_databases
        from nasbox.versions.mend import mend_versions

        scrub = Scrub(job, update_only=args.update_only, databases=scrub_databases(config), force=args.force)

        def run() -> JobResult:
            result = scrub.run()
            mended = mend_versions(config, job.directory, scrub.repaired)
            result.details += mended.lines
            if mended.failed:
                result.status = "error"
            return result

        return run


KIND = ScrubKind()
