"""The sync job kind: its model, its validation, and how nasbox runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from nasbox import paths, state
from nasbox.jobkind import JobKind
from nasbox.space import min_free_problem

if TYPE_CHECKING:
    from nasbox.config.checker import Checker
    from nasbox.config.model import Config
    from nasbox.result import JobResult


@dataclass(frozen=True)
class SyncJob:
    name: str
    source: str
    destination: str
    schedule: str
    exclude: tuple[str, ...] = ()
    bwlimit: str | None = None
    # None: the default, half the files in the destination.
    max_delete: int | str | None = None
    hard_links: bool = False
    acls: bool = False
    xattrs: bool = False
    require_marker: str | None = None
    partial_is_error: bool = False
    min_free: int | str | None = None  # left free on DESTINATION's filesystem; None: nasbox.space's default


class SyncKind(JobKind):
    name = "sync"
    summary = "copy sources to backups with rsync, behind safety guards"
    env_words = ("SOURCE", "DESTINATION", "SCHEDULE")

    def build(self, c: Checker) -> dict[str, SyncJob]:
        jobs: dict[str, SyncJob] = {}
        for name, item in c.clean("sync").items():
            where = ("sync", name)
            if paths.overlap(item["source"], item["destination"]):
                c.problem(
                    where + ("destination",),
                    "expected a path outside the source (and the source outside "
                    "it)" + paths.resolved_note(item["source"], item["destination"]),
                )
            if problem := min_free_problem(item.get("min_free")):
                c.problem(where + ("min_free",), problem)
            marker = item.get("require_marker")
            if marker is not None and ".." in PurePosixPath(marker).parts:
                c.problem(where + ("require_marker",), "expected a file name inside the source, without '..'")
            jobs[name] = SyncJob(
                name=name,
                source=item["source"],
                destination=item["destination"],
                schedule=item["schedule"],
                exclude=tuple(item.get("exclude", ())),
                bwlimit=item.get("bwlimit"),
                max_delete=item.get("max_delete"),
                hard_links=item.get("hard_links", False),
                acls=item.get("acls", False),
                xattrs=item.get("xattrs", False),
                require_marker=marker,
                partial_is_error=item.get("partial_is_error", False),
                min_free=item.get("min_free"),
            )
        return jobs

    def paths(self, job: SyncJob) -> list[str]:
        return [job.source, job.destination]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
        parser.add_argument("--force", action="store_true", help="pass a safety hold (deletions over max_delete)")

    def runner(self, config: Config, job: SyncJob, args: argparse.Namespace) -> Callable[[], JobResult]:
        from nasbox.sync.engine import Sync  # the engine only when a run needs it

        return Sync(job, config, dry_run=args.dry_run, force=args.force).run

    def status(self, config: Config, job: SyncJob) -> dict[str, Any]:
        from nasbox.sync.engine import Holds

        hold = Holds(state.state_dir()).get(job.name)
        return {"held": hold["reason"] if hold else None}


KIND = SyncKind()
