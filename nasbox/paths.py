"""When two paths are the same place: the one rule behind every overlap check in nasbox
(sync source and destination, job locks, what rsync must leave alone).

Paths are compared as the kernel reaches them, never as text: symlinks and `..` are
resolved (a part that does not exist yet is taken as written, after its longest existing
prefix has been resolved), and a directory mounted at a second place (a bind mount, such as
a container volume) is the same place at both. Links and mounts can change after a check:
callers resolve again right before they act.
"""
from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

MOUNTINFO = "/proc/self/mountinfo"
ESCAPED = re.compile(r"\\([0-7]{3})")  # mountinfo writes space, tab, newline and \ as \ooo

# One mounted filesystem tree: (where it is mounted, its device, the directory of that
# device shown there).
Mounted = tuple[PurePosixPath, str, PurePosixPath]


def real(path: str) -> str:
    """path with every symlink and `..` resolved (os.path.realpath resolves the longest
    existing prefix and keeps the rest as written)."""
    return os.path.realpath(path)


def mount_table() -> list[Mounted]:
    """The mounts of this process, in mount order (a later mount hides an earlier one at the
    same place); empty where /proc is not readable."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    table = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            root, mountpoint = (ESCAPED.sub(lambda m: chr(int(m.group(1), 8)), f) for f in fields[3:5])
            table.append((PurePosixPath(mountpoint), fields[2], PurePosixPath(root)))
    return table


def on_device(resolved: PurePosixPath, table: list[Mounted]) -> tuple[str, PurePosixPath] | None:
    """A resolved path as (device, path inside that device's filesystem): the same for one
    directory wherever it is mounted."""
    best: Mounted | None = None
    for mounted in table:  # the deepest mountpoint holding the path; the last mounted wins a tie
        if resolved.is_relative_to(mounted[0]) and (best is None or len(mounted[0].parts) >= len(best[0].parts)):
            best = mounted
    if best is None:
        return None
    mountpoint, device, root = best
    return device, root / resolved.relative_to(mountpoint)


def names(path: str, table: list[Mounted]) -> list[tuple[str, PurePosixPath]]:
    """The ways to name where path is: ("", its resolved path) and, where its mount is known,
    (device, its path inside that device's filesystem)."""
    resolved = PurePosixPath(real(path))
    on = on_device(resolved, table)
    return [("", resolved)] + ([on] if on else [])


def below(path: str, root: str, table: list[Mounted] | None = None) -> str | None:
    """path relative to root ("." for root itself) when path lies inside root, else None.
    A path reached through root's own tree (its resolved path) is preferred: that is the
    relative path a walk of root (rsync's) finds it at."""
    table = mount_table() if table is None else table
    for kind, place in names(path, table):
        for root_kind, root_place in names(root, table):
            if kind == root_kind and place.is_relative_to(root_place):
                return str(place.relative_to(root_place))
    return None


def inside(path: str, root: str, table: list[Mounted] | None = None) -> bool:
    """Whether path is root or lies below it, wherever either is reached from."""
    return below(path, root, table) is not None


def overlap(a: str, b: str) -> bool:
    """Whether a and b are the same place or one lies inside the other."""
    table = mount_table()
    return inside(a, b, table) or inside(b, a, table)


def resolved_note(*written: str) -> str:
    """For a message about an overlap: what the paths resolve to, where that differs from
    how they were written (empty when they were written as they are)."""
    shown = [f"{path} is {real(path)}" for path in written if real(path) != str(PurePosixPath(path))]
    return f" ({', '.join(shown)})" if shown else ""
