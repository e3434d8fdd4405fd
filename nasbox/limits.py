"""How many deletions a run may make at once: the rule sync's and scrub's `max_delete` share."""

from __future__ import annotations

DEFAULT_PERCENT = 50


def deletion_limit(max_delete: int | str | None, total: int) -> int:
    """max_delete as a count of files: a count as given, a percentage ('30%') of total, and
    DEFAULT_PERCENT of total when not set."""
    if isinstance(max_delete, int):
        return max_delete
    percent = DEFAULT_PERCENT if max_delete is None else int(max_delete.rstrip("%"))
    return total * percent // 100
