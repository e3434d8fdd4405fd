"""What is mounted where, read from /proc/self/mountinfo: the one parser of the mount table,
for the overlap rule (nasbox.paths), CIFS mount state and the tmpfs check (nasbox.mounts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

MOUNTINFO = "/proc/self/mountinfo"
ESCAPED = re.compile(r"\\([0-7]{3})")  # mountinfo writes space, tab, newline and \ as \ooo


@dataclass(frozen=True)
class Mounted:
    """One mounted filesystem tree."""

    mountpoint: PurePosixPath
    device: str  # major:minor
    root: PurePosixPath  # the directory of the device's filesystem shown at mountpoint
    fstype: str
    source: str  # e.g. //host/share for CIFS


def unescape(field: str) -> str:
    return ESCAPED.sub(lambda m: chr(int(m.group(1), 8)), field)


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
        fields, _, tail = line.partition(" - ")
        head, rest = fields.split(" "), tail.split(" ")
        if len(head) > 4 and len(rest) > 1:
            table.append(
                Mounted(
                    PurePosixPath(unescape(head[4])),
                    head[2],
                    PurePosixPath(unescape(head[3])),
                    rest[0],
                    unescape(rest[1]),
                )
            )
    return table


def holding(path: PurePosixPath, table: list[Mounted]) -> Mounted | None:
    """The mount a (resolved) path lies on: the deepest mountpoint holding it, the last mounted
    where two are at one place."""
    best: Mounted | None = None
    inside = str(path)
    for mounted in table:
        if lies_in(inside, str(mounted.mountpoint)) and (
            best is None or len(mounted.mountpoint.parts) >= len(best.mountpoint.parts)
        ):
            best = mounted
    return best


def lies_in(path: str, directory: str) -> bool:
    """Whether the normalised absolute path is directory or below it, as PurePath.is_relative_to
    says, compared as text (a job's run asks it of every mount for each of its paths)."""
    return path == directory or path.startswith(directory if directory.endswith("/") else directory + "/")
