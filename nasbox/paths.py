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
from pathlib import PurePosixPath

from nasbox.mounttable import Mounted, holding, mount_table


def real(path: str) -> str:
    """path with every symlink and `..` resolved (os.path.realpath resolves the longest
    existing prefix and keeps the rest as written)."""
    return os.path.realpath(path)


def on_device(resolved: PurePosixPath, table: list[Mounted]) -> tuple[str, PurePosixPath] | None:
    """A resolved path as (device, path inside that device's filesystem): the same for one
    directory wherever it is mounted."""
    mounted = holding(resolved, table)
    if mounted is None:
        return None
    return mounted.device, mounted.root / resolved.relative_to(mounted.mountpoint)


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
