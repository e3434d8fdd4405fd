"""What a scrub run tells: its counters, the detail lines of each file's problem and of
warnings, the status and summary they make, and the JobResult the scheduler records."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields

from nasbox.progress import human_bytes
from nasbox.result import JobResult
from nasbox.scrub.catalog import show

log = logging.getLogger(__name__)


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0
    new: int = 0
    updated: int = 0
    verified: int = 0
    bytes_verified: int = 0
    repaired: int = 0
    unrepairable: int = 0
    parity_rebuilt: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0
    # Coverage once the run is over: the files with parity, the parity's allocated bytes, and
    # when the least recently verified of them was last verified (0: one never was).
    protected: int = 0
    parity_bytes: int = 0
    oldest_verified_at: float = 0.0

    def count(self, counter: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)


@dataclass
class Report:
    """The run's counters and detail lines, each line logged as it comes."""

    job: str
    full: bool  # a full scrub (verifies), not a parity update
    stats: Stats = field(default_factory=Stats)
    details: list[str] = field(default_factory=list)
    warned: bool = False  # a warning outside the counted ones
    errors: list[str] = field(default_factory=list)  # errors of the run, not of one file: they lead the summary

    def warn(self, line: str) -> None:
        """A warning that no counter carries."""
        self._detail(line)
        self.warned = True

    def error(self, line: str) -> None:
        """An error of the run as a whole: the status is error, and the line leads the summary."""
        self._detail(line)
        self.errors.append(line)

    def problem(self, relative: bytes, detail: str, counter: str | None) -> None:
        """A line about one file (or directory), counted in the Stats field counter if any."""
        self._detail(f"{show(relative)}: {detail}")
        if counter:
            self.stats.count(counter)

    def _detail(self, line: str) -> None:
        self.details.append(line)
        log.warning("scrub %s: %s", self.job, line)

    def status(self) -> tuple[str, str]:
        s = self.stats
        if s.unrepairable or s.failed or self.errors:
            status = "error"
        elif s.repaired or s.parity_rebuilt or s.skipped or self.warned:
            status = "warning"
        elif s.new or s.updated or s.removed:
            status = "info"
        else:
            status = "good"
        parts = [f"{s.files} files ({human_bytes(s.bytes)})", f"{s.new} new", f"{s.updated} updated"]
        if self.full:
            parts.append(f"{s.verified} verified")
        parts += [f"{s.repaired} repaired", f"{s.unrepairable} beyond repair", f"{s.removed} removed"]
        for name in ("parity_rebuilt", "skipped", "failed"):
            if getattr(s, name):
                parts.append(f"{getattr(s, name)} {name.replace('_', ' ')}")
        return status, "; ".join([*self.errors, ", ".join(parts)])

    def result(self, started: float, status: str, summary: str, skipped: bool = False) -> JobResult:
        finished = time.time()
        stats: dict[str, int | float] = {f.name: getattr(self.stats, f.name) for f in fields(Stats)}
        stats["duration_s"] = round(finished - started, 3)
        stats["verify_bytes_per_s"] = round(self.stats.bytes_verified / max(finished - started, 1e-6))
        return JobResult(
            job=self.job,
            kind="scrub",
            status=status,
            summary=summary,
            started=started,
            finished=finished,
            details=self.details,
            stats=stats,
            skipped=skipped,
        )
