"""The versions of a sync destination and where they live.

DESTINATION/.nasbox-versions/@GMT-YYYY.MM.DD-HH.MM.SS is the destination as it was at that
moment (UTC): the name Windows clients and Samba's shadow_copy2 know, so a version is a
"Previous Version" as it stands. A version is made under a name beginning `.taking-` and
renamed when complete, and is renamed `.pruning-...` before it is removed: an interrupted
run never leaves a half-made or half-removed tree under a version's name, and the next run
removes what it left.

Where DESTINATION is a btrfs subvolume, a version is a read-only snapshot of it; elsewhere a
tree of hard links (nasbox.versions.linktree) without nasbox's own directories in it.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from nasbox import commands, space
from nasbox.versions import btrfs_cmds
from nasbox.versions.cursor import Cursor, Step, walk
from nasbox.versions.linktree import Counts, count_directories, link_tree
from nasbox.versions.retention import Keep, kept

log = logging.getLogger(__name__)

VERSIONS_DIR = ".nasbox-versions"
NAME_FORMAT = "@GMT-%Y.%m.%d-%H.%M.%S"  # Samba's shadow:format, in UTC
TAKING = ".taking-"
PRUNING = ".pruning-"
OWED = ".owed"  # the destination changed since the newest version
DIRECTORY_BYTES = 4096  # a new directory's first block, what each costs a linked version


class VersionsError(Exception):
    """A version could not be taken or removed; the message says why."""


@dataclass(frozen=True)
class Version:
    name: str
    time: datetime  # aware, UTC
    path: str

    def holds(self, relative: str) -> str:
        """Where the version keeps the file or directory at relative (in the destination)."""
        return os.path.join(self.path, relative) if relative not in ("", ".") else self.path


def version_time(name: str) -> datetime | None:
    try:
        return datetime.strptime(name, NAME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def version_name(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(NAME_FORMAT)


class Versions:
    """The versions of one destination (a resolved path)."""

    def __init__(self, destination: str):
        self.destination = destination
        self.root = os.path.join(destination, VERSIONS_DIR)

    def all(self) -> list[Version]:
        """Every complete version, oldest first; not one renamed to be removed meanwhile (by a
        run that holds the job's lock, which a listing does not wait for)."""
        if not self._root_is_ours():
            return []
        found = []
        for name in os.listdir(self.root):
            moment = version_time(name)
            path = os.path.join(self.root, name)
            if moment is None:
                continue
            try:
                directory = stat.S_ISDIR(os.lstat(path).st_mode)
            except FileNotFoundError:
                continue
            if directory:
                found.append(Version(name, moment, path))
        return sorted(found, key=lambda v: v.time)

    def snapshots(self) -> bool:
        """Whether versions are btrfs snapshots (the destination is a subvolume)."""
        return btrfs_cmds.is_subvolume(self.destination)

    def owe(self) -> None:
        """Note, before a copy that changes the destination, that a version is owed: one that
        cannot be taken after it (a full disk, an interruption) is taken by the next run."""
        self._make_root()
        with open(os.path.join(self.root, OWED), "w"):
            pass

    def owed(self) -> bool:
        return self._root_is_ours() and os.path.lexists(os.path.join(self.root, OWED))

    def take(
        self, moment: datetime, leave_out: set[str], min_free: int | str | None = None
    ) -> tuple[Version | None, Counts | None]:
        """A version of the destination as it is now, named after moment; (None, None) when
        one of that name exists (taken within the same second: the same content).
        leave_out: paths relative to the destination a linked tree leaves out; min_free: what
        a linked tree must leave free on the filesystem (nasbox.space), or it is not taken."""
        self.clean_up()
        name = version_name(moment)
        final = os.path.join(self.root, name)
        if os.path.lexists(final):
            return None, None
        partial = os.path.join(self.root, TAKING + name)
        counts = None
        try:
            self._make_root()
            if self.snapshots():
                commands.run(btrfs_cmds.snapshot(self.destination, partial))
            else:
                directories = count_directories(self.destination, leave_out | {VERSIONS_DIR})
                short = space.shortfall(self.root, directories * DIRECTORY_BYTES, min_free, inodes=directories)
                if short:
                    raise VersionsError(f"the version {name} was not taken: {short}")
                counts = link_tree(self.destination, partial, leave_out | {VERSIONS_DIR})
        except (OSError, commands.CommandError) as e:
            self._remove(partial)
            raise VersionsError(f"the version {name} could not be taken: {_reason(e)}") from e
        try:
            os.rename(partial, final)
            if os.path.lexists(os.path.join(self.root, OWED)):
                os.unlink(os.path.join(self.root, OWED))
        except OSError as e:
            raise VersionsError(f"the version {name} could not be taken: {_reason(e)}") from e
        return Version(name, version_time(name) or moment, final), counts

    def prune(self, keep: Keep, tz: ZoneInfo, taken: Version | None = None) -> list[Version]:
        """Remove the versions the retention does not keep; the ones removed. taken: the
        version this run took, kept whatever the others' names say (a clock set wrong once
        may have named one after a later time). A version that cannot be renamed for removal
        (made immutable) stays, and the others are pruned before the error says so."""
        self.clean_up()
        every = self.all()
        keeping = kept([v.time for v in every], keep, tz) | ({taken.time} if taken else set())
        removed, refused = [], []
        for version in every:
            if version.time not in keeping:
                doomed = os.path.join(self.root, PRUNING + version.name)
                try:
                    os.rename(version.path, doomed)  # no longer a version, whatever happens next
                except OSError as e:
                    refused.append(f"{version.name}: {e.strerror}")
                    continue
                self._remove(doomed)
                removed.append(version)
        if refused:
            raise VersionsError(f"cannot prune the version {'; '.join(refused)}")
        return removed

    def clean_up(self) -> None:
        """Remove what an interrupted run left: a version half taken or half removed; and make
        a snapshot that a killed mending (nasbox.versions.mend) left writable read-only again."""
        if not self._root_is_ours():
            return
        for name in os.listdir(self.root):
            if name.startswith((TAKING, PRUNING)):
                self._remove(os.path.join(self.root, name))
        if self.snapshots():
            for version in self.all():
                if not btrfs_cmds.is_read_only(version.path):
                    try:
                        commands.run(btrfs_cmds.set_read_only(version.path, True))
                    except commands.CommandError as e:
                        raise VersionsError(f"cannot make the snapshot {version.path} read-only again: {e}") from e

    def _root_is_ours(self) -> bool:
        """Whether the versions directory exists as a directory: never a link someone left in
        its place, which would lead removal elsewhere."""
        try:
            st = os.lstat(self.root)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            raise VersionsError(f"{self.root} is not a directory; expected nasbox's versions directory")
        return True

    def _make_root(self) -> None:
        if self._root_is_ours():
            return
        # A subvolume of its own on btrfs, so that each snapshot holds it as one empty directory.
        if self.snapshots():
            commands.run(btrfs_cmds.create(self.root))
        else:
            os.mkdir(self.root)
        os.chmod(self.root, 0o755)  # read through Samba by the users of the shares

    def _remove(self, path: str) -> None:
        if not os.path.lexists(path):
            return
        if btrfs_cmds.is_subvolume(path):
            try:
                commands.run(btrfs_cmds.delete(path))
            except commands.CommandError as e:
                raise VersionsError(
                    f"cannot remove the snapshot {path}: {_reason(e)} (removing a btrfs snapshot needs "
                    "CAP_SYS_ADMIN, or the filesystem mounted with user_subvol_rm_allowed)"
                ) from e
            return
        try:
            _remove_tree(path)
        except OSError as e:
            raise VersionsError(f"cannot remove {path}: {_reason(e)}") from e


def _remove_tree(path: str) -> None:
    """The directory path and everything in it removed, to any depth, no link followed."""
    cursor = Cursor.at(os.path.dirname(path))
    try:
        name = os.path.basename(path)
        cursor.down(name)
        for step, entry, _ in walk(cursor):
            if step is Step.ENTRY:
                os.unlink(entry, dir_fd=cursor.fd)
            elif step is Step.UP:
                os.rmdir(entry, dir_fd=cursor.fd)
        cursor.up()
        os.rmdir(name, dir_fd=cursor.fd)
    finally:
        cursor.close()


def _reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"{error.strerror}" + (f": {error.filename}" if error.filename else "")
    return str(error)
