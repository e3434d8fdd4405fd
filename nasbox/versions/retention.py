"""Which versions a retention keeps: the `keep` counts users know from restic and borg.

`last: N` keeps the N newest versions; `hourly: N` keeps the newest version of each of the N
newest hours that have one, and so on for days, weeks (Monday to Sunday), months and years,
all in the server's time zone. A version is kept when any count keeps it, so the newest is
always kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Keep:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def text(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name))


WORDS = tuple(f.name for f in fields(Keep))

# The period a version falls in, for each count but `last` (each version its own period).
PERIODS: dict[str, Callable[[datetime], tuple[int, ...]]] = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: (t.year,),
}


def parse(text: str) -> dict[str, int]:
    """`daily=14,weekly=8` (the environment's form) as a mapping; ValueError says what is wrong."""
    keep: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        word, equals, count = part.partition("=")
        word = word.strip()
        if not equals or word not in WORDS or not count.strip().isdigit():
            raise ValueError(
                f"expected WORD=COUNT pairs separated by ',' with WORD one of {', '.join(WORDS)}, got {part!r}"
            )
        keep[word] = int(count)
    return keep


def kept(times: Iterable[datetime], keep: Keep, tz: ZoneInfo) -> set[datetime]:
    """The times (aware datetimes) of the versions the retention keeps."""
    newest_first = sorted(set(times), reverse=True)
    chosen = set(newest_first[: keep.last])
    for word, period in PERIODS.items():
        wanted = getattr(keep, word)
        seen: set[tuple[int, ...]] = set()
        for t in newest_first:
            if len(seen) == wanted:
                break
            key = period(t.astimezone(tz))
            if key not in seen:
                seen.add(key)
                chosen.add(t)
    return chosen
