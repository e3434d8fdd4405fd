"""How many files a run may delete or rewrite at once: the one rule behind sync's and scrub's
`max_delete` and sync's `max_change`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShareOfFiles:
    """A limit set as a count of files, or as a percentage ('30%') of the files there are.
    floor: a percentage never allows fewer files than this (on a few files, a day's ordinary
    work is a large share of them); a count is taken as given."""

    default_percent: int
    floor: int = 0

    def limit(self, setting: int | str | None, total: int) -> int:
        """setting as a count of files; default_percent of total when not set."""
        if isinstance(setting, int):
            return setting
        percent = self.default_percent if setting is None else int(setting.rstrip("%"))
        return max(self.floor, total * percent // 100)


# Deletions are what a mirror cannot undo, and ordinary use seldom deletes half of even a
# small tree: no floor.
DELETIONS = ShareOfFiles(default_percent=50)
# Ransomware rewrites nearly every file; a day's work edits a few percent of a share, or a
# handful of files of a small one.
REWRITES = ShareOfFiles(default_percent=25, floor=10)


def deletion_limit(max_delete: int | str | None, total: int) -> int:
    return DELETIONS.limit(max_delete, total)
