"""The sync job kind: its model, its validation, and how nasbox runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from nasbox import paths, state
from nasbox.jobkind import JobKind
from nasbox.space import min_free_problem
from nasbox.versions import retention
from nasbox.versions.retention import Keep

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
    # None: the default, a quarter of the files in the destination, at least 10.
    max_change: int | str | None = None
    hard_links: bool = False
    acls: bool = False
    xattrs: bool = False
    require_marker: str | None = None
    versions: Keep | None = None  # None: no versions are taken
    partial_is_error: bool = False
    min_free: int | str | None = None  # left free on DESTINATION's filesystem; None: nasbox.space's default


class SyncKind(JobKind):
    name = "sync"
    summary = "copy sources to backups with rsync, behind safety guards"
    env_words = ("SOURCE", "DESTINATION", "SCHEDULE")
    env_options: ClassVar[dict[str, Callable[[str], dict[str, Any]]]] = {
        "VERSIONS": lambda text: {"versions": {"keep": retention.parse(text)}}
    }

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
            versions = Keep(**item["versions"]["keep"]) if "versions" in item else None
            if versions is not None and not versions:
                c.problem(
                    where + ("versions", "keep"),
                    f"expected a count above 0 for at least one of {', '.join(retention.WORDS)}",
                )
            jobs[name] = SyncJob(
                name=name,
                source=item["source"],
                destination=item["destination"],
                schedule=item["schedule"],
                exclude=tuple(item.get("exclude", ())),
                bwlimit=item.get("bwlimit"),
                max_delete=item.get("max_delete"),
                max_change=item.get("max_change"),
                hard_links=item.get("hard_links", False),
                acls=item.get("acls", False),
                xattrs=item.get("xattrs", False),
                require_marker=marker,
                versions=versions,
                partial_is_error=item.get("partial_is_error", False),
                min_free=item.get("min_free"),
            )
        return jobs

    def paths(self, job: SyncJob) -> list[str]:
        return [job.source, job.destination]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
        parser.add_argument(
            "--force",
            action="store_true",
            help="pass a safety hold (deletions over max_delete, rewrites over max_change)",
        )

    def runner(self, config: Config, job: SyncJob, args: argparse.Namespace) -> Callable[[], JobResult]:
        from nasbox.sync.engine import Sync  # the engine only when a run needs it

        return Sync(job, config, dry_run=args.dry_run, force=args.force).run

    def status(self, config: Config, job: SyncJob) -> dict[str, Any]:
        from nasbox.holds import Holds

        hold = Holds(state.state_dir()).get(job.name)
        return {"held": hold["reason"] if hold else None, "versions": versions_status(job)}


def versions_status(job: SyncJob) -> dict[str, Any] | None:
    """How many versions the job keeps now, its oldest and newest (names as `versions` prints them)."""
    if job.versions is None:
        return None
    from nasbox.versions.store import Versions, VersionsError  # it runs programs: loaded when asked

    try:
        every = Versions(paths.real(job.destination)).all()
    except (OSError, VersionsError):
        every = []
    return {
        "count": len(every),
        "oldest": every[0].name if every else None,
        "newest": every[-1].name if every else None,
        "keep": job.versions.text(),
    }


KIND = SyncKind()
