"""Run-level guards of a scrub: what must hold before a run may change anything.

- DATABASE must be nasbox's: absent (made on the first run), empty, or holding nasbox's
  private folder; never DIRECTORY itself or above it once symlinks and '..' are resolved.
- Every directory that was a mount point at the last complete run (DIRECTORY, DATABASE,
  their parents, and directories inside DIRECTORY) must still be one: a disk that did not
  mount leaves an empty directory, or a stray file, where the data was.
- A DATABASE that earlier runs made and that is now missing is on a disk that did not
  mount: it is not made again on the disk below.
What a run saw is remembered per job in the state directory, not in DATABASE, which may be
what is missing, and so is how many removals held a run: --force approves that many and no
more.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from nasbox import state
from nasbox.scrub.trust import PRIVATE

LOST_AND_FOUND = b"lost+found"  # on the root of a fresh ext4 filesystem


def database_problem(directory: str, database: str) -> str | None:
    """Why DATABASE may not be used for DIRECTORY, or None."""
    real_directory, real_database = os.path.realpath(directory), os.path.realpath(database)
    if PurePosixPath(real_directory).is_relative_to(real_database):
        return f"{database} is {directory} or above it (resolved: {real_database}); expected a directory of its own"
    if os.path.lexists(database) and not os.path.isdir(database):
        return f"{database} exists and is not a directory; expected a directory"
    try:
        foreign = foreign_entries(database)
    except OSError as e:
        return f"cannot read {database}: {e.strerror}"
    if foreign:
        shown = ", ".join(map(os.fsdecode, sorted(foreign)[:3])) + (", ..." if len(foreign) > 3 else "")
        return (
            f"{database} holds files nasbox did not write ({shown}); expected a new or empty "
            f"directory, or the database of this job (with its {os.fsdecode(PRIVATE)} folder)"
        )
    return None


def foreign_entries(database: str) -> list[bytes]:
    """The entries of an existing DATABASE that show it is not a scrub database: any, unless
    it holds nasbox's private folder (an empty lost+found is a fresh filesystem's). Whether
    that folder is nasbox's own is nasbox.scrub.trust's check."""
    if not os.path.isdir(database):
        return []
    names = os.listdir(os.fsencode(database))
    if PRIVATE in names:
        return []
    return [n for n in names if not (n == LOST_AND_FOUND and _empty_directory(os.path.join(os.fsencode(database), n)))]


def _empty_directory(path: bytes) -> bool:
    return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)


def mount_points_above(path: str) -> list[str]:
    """The mount points among path and its parents (resolved; / left out, it is always one)."""
    found = []
    current = os.path.realpath(path)
    while current != "/":
        if os.path.ismount(current):
            found.append(current)
        current = os.path.dirname(current)
    return found


@dataclass(frozen=True)
class Seen:
    """What the last complete run of a job saw."""

    directory: str
    database: str
    mount_points: tuple[str, ...]


class Memory:
    """Per scrub job, what its last complete run saw: one JSON file per job."""

    def __init__(self, state_dir: Path | None = None):
        self.root = (state_dir or state.state_dir()) / "scrub"

    def _path(self, job: str) -> Path:
        return self.root / f"{quote(job, safe='')}.json"

    def get(self, job: str, directory: str, database: str) -> Seen | None:
        """The last run's view, if it was of the same DIRECTORY and DATABASE."""
        data = state.read_json(self._path(job), None)
        if not data or (data.get("directory"), data.get("database")) != (directory, database):
            return None
        return Seen(directory, database, tuple(data.get("mount_points", ())))

    def put(self, job: str, seen: Seen) -> None:
        """A complete run's view; it ends a hold on removals."""
        state.write_json(self._path(job), asdict(seen))

    def held_removals(self, job: str) -> int | None:
        """How many removals of parity held the last run: all that --force approves."""
        count = state.read_json(self._path(job), {}).get("held_removals")
        return count if isinstance(count, int) else None

    def hold_removals(self, job: str, count: int) -> None:
        data = state.read_json(self._path(job), {})
        state.write_json(self._path(job), {**data, "held_removals": count})


def unmounted(seen: Seen) -> list[str]:
    """Directories that were mount points and now are plain directories (or files)."""
    return [p for p in seen.mount_points if os.path.lexists(p) and not os.path.ismount(p)]
