"""What each version holds at one path, and in which version it changed: what
`nasbox versions JOB PATH` shows, so that a user sees when a file was last as they want it."""

from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime

from nasbox.descriptors import open_below
from nasbox.versions.descend import lstat_below, opened
from nasbox.versions.store import Version

ADDED, CHANGED, SAME = "added", "changed", "same"


@dataclass(frozen=True)
class Held:
    """The path in one version."""

    version: Version
    type: str  # file, directory, symlink or other
    size: int  # bytes; for a directory, its entries; for a symlink, the length of its target
    mtime_ns: int
    target: str | None  # a symlink's target
    # Against the version just before: ADDED (not in it), CHANGED or SAME; None for the oldest.
    change: str | None = None

    @property
    def modified(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_ns // 1000 / 1e6, UTC)

    def content(self) -> tuple[str, int, int, str | None]:
        """What tells one state of the path from another."""
        return self.type, self.size, self.mtime_ns, self.target


def type_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def held(version: Version, relative: str) -> Held | None:
    """The path as version holds it, or None."""
    *parents, name = relative.split("/")
    try:
        st = lstat_below(version.path, relative)
        if st is None:
            return None
        kind, size, target = type_of(st.st_mode), st.st_size, None
        if kind == "symlink":
            with opened(open_below(version.path, parents)) as parent:
                target = os.readlink(name, dir_fd=parent)
        elif kind == "directory":
            with opened(open_below(version.path, [*parents, name])) as directory:
                size = len(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):  # pruned, or replaced, while being read
        return None
    return Held(version, kind, size, st.st_mtime_ns, target)


def history(versions: list[Version], relative: str) -> list[Held]:
    """The versions (oldest first) that hold the path, each marked against the one before."""
    found = []
    before: Held | None = None  # the path in the version just before, if it held it
    for index, version in enumerate(versions):
        here = held(version, relative)
        if here is not None:
            if index > 0:
                change = ADDED if before is None else SAME if here.content() == before.content() else CHANGED
                here = dataclasses.replace(here, change=change)
            found.append(here)
        before = here
    return found
