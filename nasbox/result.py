"""What a job run reports: its status (good, info, warning or error), a one-line summary,
details and stats.
The CLI turns it into an exit code; notifications and the run history send and keep it."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasbox import exits


@dataclass
class JobResult:
    job: str
    kind: str  # "scrub" or "sync"
    status: str  # good, info, warning or error
    summary: str
    started: float
    finished: float
    details: list[str] = field(default_factory=list)
    stats: dict[str, int | float] = field(default_factory=dict)
    skipped: bool = False  # not run: busy, a mount down, held by a safety check

    @property
    def duration_s(self) -> float:
        return round(self.finished - self.started, 3)

    @property
    def exit_code(self) -> int:
        if self.skipped:
            return exits.SKIPPED
        return exits.ERROR if self.status == "error" else exits.DONE


def combined_exit_code(results: list[JobResult]) -> int:
    """An error wins over a skip, a skip over success."""
    codes = {r.exit_code for r in results}
    return exits.ERROR if exits.ERROR in codes else exits.SKIPPED if exits.SKIPPED in codes else exits.DONE
