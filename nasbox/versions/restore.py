"""A file or directory put back from a version into a tree that share users write to.

The target (the job's SOURCE, or the directory given with --to) belongs to users, who may be
hostile, while nasbox runs as root: any directory on the way may be swapped for a link to
/etc between two looks. So the target is walked as the versions are: from a root opened once,
one name at a time through directory descriptors opened without following a link (no path
is resolved twice), and a link or a non-directory where a directory is needed stops the
restore with an error. Nothing in the target is followed, opened for writing or deleted:
each file or link is made under a temporary name (TEMP_PREFIX and 16 hex digits, owned by
root until complete) in its directory, then renamed over its name, so a killed restore leaves
the old entry or the restored one, never part of one; the next restore that writes into the
directory removes what one left under a temporary name. Files are copies, never links to the
version's inode; directories are made 0700 and given their metadata once filled.

A preflight walks everything first and writes nothing: a file or link in the target newer
(mtime) than the version's refuses the whole restore unless forced, and an entry in the way
(a directory where the version has a file or link, or the reverse: replacing it would delete)
refuses it always. The restore looks again right before each rename. Entries the version
does not hold are left alone; devices, FIFOs and sockets are not restored.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from nasbox import mounts, paths, stop
from nasbox.config import Config
from nasbox.descriptors import DIRECTORY_FLAGS, FILE_FLAGS
from nasbox.offsite.kind import OffsiteJob
from nasbox.result import JobResult
from nasbox.sync.kind import SyncJob
from nasbox.versions.cursor import Cursor
from nasbox.versions.descend import lstat_below, opened
from nasbox.versions.filecopy import copy_data
from nasbox.versions.linktree import NEW_FILE_FLAGS, copy_metadata
from nasbox.versions.lookup import UsageError, shown_time
from nasbox.versions.store import Version

TEMP_PREFIX = ".nasbox-restore."
TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + "[0-9a-f]{16}")
COMPARE_CHUNK = 1 << 20
MAX_LISTED = 100  # entries of each kind named in the details


class TargetError(Exception):
    """A name on the way to the target is a symlink or not a directory."""


@dataclass
class Tally:
    files: int = 0
    directories: int = 0
    links: int = 0
    unchanged: int = 0  # already as in the version
    leftovers: int = 0  # temporary files of an interrupted restore removed
    newer: list[str] = field(default_factory=list)  # newer in the target: left alone
    overwritten: list[str] = field(default_factory=list)  # newer in the target: replaced (force)
    in_the_way: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)  # devices, FIFOs, sockets

    def counts(self) -> str:
        text = (
            f"{plural(self.files, 'file', 'files')}, {plural(self.directories, 'directory', 'directories')}, "
            f"{plural(self.links, 'link', 'links')}"
        )
        return text + (f", {self.unchanged} already as in the version" if self.unchanged else "")

    def stats(self) -> dict[str, int | float]:
        return {
            "files": self.files,
            "directories": self.directories,
            "links": self.links,
            "unchanged": self.unchanged,
            "newer": len(self.newer),
            "overwritten": len(self.overwritten),
            "in_the_way": len(self.in_the_way),
            "not_restored": len(self.special),
        }

    def details(self) -> list[str]:
        lines = [f"temporary files of an interrupted restore removed: {self.leftovers}"] if self.leftovers else []
        for label, shown in (
            ("newer in the target, left alone", self.newer),
            ("newer in the target, overwritten (--force)", self.overwritten),
            ("in the way (a directory against a file or link)", self.in_the_way),
            ("not restored (a device, FIFO or socket)", self.special),
        ):
            lines += [f"{label}: {name}" for name in shown[:MAX_LISTED]]
            if len(shown) > MAX_LISTED:
                lines.append(f"{label}: ... and {len(shown) - MAX_LISTED} more")
        return lines


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def open_target(parent: int, name: str, shown: str) -> int:
    """The directory name in parent, never reached through a link."""
    try:
        return os.open(name, DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as e:
        if e.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        try:
            link = stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode)
        except FileNotFoundError:
            link = False
        what = "a symbolic link" if link else "not a directory"
        raise TargetError(f"{shown} is {what}; a restore never follows or replaces one on its way") from None


def made_directory(parent: int, name: str, shown: str) -> int:
    """The directory name made in parent (0700 until it is filled), or the one made there
    meanwhile, never reached through a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=parent)
    try:
        return open_target(parent, name, shown)
    except FileNotFoundError:
        raise TargetError(f"{shown} was moved away or removed while being restored") from None


def open_absolute(path: str) -> int:
    """The directory at the absolute path, walked from / without following any link."""
    fd = os.open("/", DIRECTORY_FLAGS)
    walked = "/"
    try:
        for part in PurePosixPath(path).parts[1:]:
            walked = os.path.join(walked, part)
            child = open_target(fd, part, walked)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def entry_in(directory: int | None, name: str) -> os.stat_result | None:
    if directory is None:
        return None
    try:
        return os.lstat(name, dir_fd=directory)
    except FileNotFoundError:
        return None


def remove_leftovers(directory: int) -> int:
    """Remove what a killed restore left in directory under a temporary name: only root's
    files and links of that exact name (a user cannot make a file root's)."""
    removed = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if not TEMP_NAME.fullmatch(entry.name):
                continue
            st = entry.stat(follow_symlinks=False)
            if st.st_uid == 0 and (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                os.unlink(entry.name, dir_fd=directory)
                removed += 1
    return removed


def identical(source: int, target: int, name: str, st: os.stat_result, there: os.stat_result) -> bool:
    """Whether the target's entry is already the version's: metadata and content."""
    keys = ("st_mode", "st_uid", "st_gid", "st_size", "st_mtime_ns")
    if any(getattr(st, key) != getattr(there, key) for key in keys):
        return False
    return same_content(source, target, name, st, there)


def newer_in_target(source: int, target: int, name: str, st: os.stat_result, there: os.stat_result) -> bool:
    """Whether the target's entry may hold what the version does not: a later mtime, or the
    same one with other content (an application that keeps a file's mtime as it rewrites it,
    or a filesystem counting whole seconds), which a restore must not overwrite unforced."""
    if there.st_mtime_ns != st.st_mtime_ns:
        return there.st_mtime_ns > st.st_mtime_ns
    return not same_content(source, target, name, st, there)


def same_content(source: int, target: int, name: str, st: os.stat_result, there: os.stat_result) -> bool:
    """Whether the target's entry holds the version's bytes (a link: its target)."""
    if stat.S_IFMT(st.st_mode) != stat.S_IFMT(there.st_mode) or st.st_size != there.st_size:
        return False
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(name, dir_fd=source) == os.readlink(name, dir_fd=target)
    with (
        opened(os.open(name, FILE_FLAGS, dir_fd=source)) as old,
        opened(os.open(name, FILE_FLAGS, dir_fd=target)) as new,
    ):
        if os.fstat(new).st_ino != there.st_ino:  # replaced since it was looked at
            return False
        while chunk := os.read(old, COMPARE_CHUNK):
            if os.read(new, len(chunk)) != chunk:
                return False
        return not os.read(new, 1)


class Copier:
    """One pass over the version's tree into the target: writing, or only looking (the preflight)."""

    def __init__(self, write: bool, force: bool):
        self.write, self.force = write, force
        self.tally = Tally()

    def entry(self, source: int, target: int | None, name: str, shown: str) -> None:
        """name in the version's directory source, into the target's directory (None: missing)."""
        st = os.lstat(name, dir_fd=source)
        there = entry_in(target, name)
        if stat.S_ISDIR(st.st_mode):
            if there is not None and not stat.S_ISDIR(there.st_mode):
                self.tally.in_the_way.append(shown)
            else:
                self.directory(source, target, name, shown, exists=there is not None)
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self.leaf(source, target, name, shown, st, there)
        else:
            self.tally.special.append(shown)

    def directory(self, source: int, target: int | None, name: str, shown: str, exists: bool) -> None:
        """The directory name and everything in it, walked in the version and the target
        together to any depth (nasbox.versions.cursor): one descriptor in each."""
        version = Cursor(os.open(name, DIRECTORY_FLAGS, dir_fd=source))
        into: Cursor | None = None
        behind = 1  # directories the version's walk is below the last the target has (or this pass made)
        try:
            if self.write or exists:
                assert target is not None
                into = Cursor(self.entered(target, name, shown))
                behind = 0
            levels = [(shown, sorted(os.listdir(version.fd), reverse=True))]
            while levels:
                here, pending = levels[-1]
                if not pending:
                    if into is not None and behind == 0 and self.write:
                        copy_metadata(version.fd, into.fd, os.fstat(version.fd))
                        os.fsync(into.fd)
                    self.tally.directories += 1
                    levels.pop()
                    if levels:
                        version.up()
                        if behind:
                            behind -= 1
                        elif into is not None:
                            into.up()
                    continue
                child = pending.pop()
                stop.check()
                inside = f"{here}/{child}"
                st = os.lstat(child, dir_fd=version.fd)
                target_fd = into.fd if into is not None and behind == 0 else None
                there = entry_in(target_fd, child)
                if not stat.S_ISDIR(st.st_mode) or (there is not None and not stat.S_ISDIR(there.st_mode)):
                    self.entry(version.fd, target_fd, child, inside)  # a file, link or special, or in the way
                    continue
                version.down(child)
                if target_fd is not None and (self.write or there is not None):
                    assert into is not None
                    into.into(self.entered(target_fd, child, inside))
                else:
                    behind += 1
                levels.append((inside, sorted(os.listdir(version.fd), reverse=True)))
        finally:
            version.close()
            if into is not None:
                into.close()

    def entered(self, parent: int, name: str, shown: str) -> int:
        """The target's directory name in parent, made when writing (and cleared of what a
        killed restore left), never reached through a link."""
        if not self.write:
            return open_target(parent, name, shown)
        fd = made_directory(parent, name, shown)
        try:
            self.tally.leftovers += remove_leftovers(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def leaf(
        self, source: int, target: int | None, name: str, shown: str, st: os.stat_result, there: os.stat_result | None
    ) -> None:
        """A file or symlink."""
        if there is not None and stat.S_ISDIR(there.st_mode):
            self.tally.in_the_way.append(shown)
            return
        newer = there is not None and target is not None and newer_in_target(source, target, name, st, there)
        if there is not None:
            if newer and not self.force:
                self.tally.newer.append(shown)
                return
            if not newer and target is not None and identical(source, target, name, st, there):
                self.tally.unchanged += 1
                return
        if self.write:
            assert target is not None
            if not self.place(source, target, name, shown, st):
                return
        if newer:
            self.tally.overwritten.append(shown)
        if stat.S_ISLNK(st.st_mode):
            self.tally.links += 1
        else:
            self.tally.files += 1

    def place(self, source: int, target: int, name: str, shown: str, st: os.stat_result) -> bool:
        """The version's file or link made under a temporary name and renamed over name;
        whether it was (not when the target changed meanwhile)."""
        temp = TEMP_PREFIX + secrets.token_hex(8)
        placed = False
        try:
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=source), temp, dir_fd=target)
                os.chown(temp, st.st_uid, st.st_gid, dir_fd=target, follow_symlinks=False)
                os.utime(temp, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=target, follow_symlinks=False)
            else:
                with (
                    opened(os.open(name, FILE_FLAGS, dir_fd=source)) as old,
                    opened(os.open(temp, NEW_FILE_FLAGS, 0o600, dir_fd=target)) as new,
                ):
                    content = os.fstat(old)
                    copy_data(old, new, content.st_size)
                    os.fsync(new)
                    copy_metadata(old, new, content)
            now = entry_in(target, name)  # the last look: a user may have written meanwhile
            if not self.force and now is not None and newer_in_target(source, target, name, st, now):
                self.tally.newer.append(shown)
                return False
            try:
                os.rename(temp, name, src_dir_fd=target, dst_dir_fd=target)
            except (IsADirectoryError, NotADirectoryError):
                self.tally.in_the_way.append(shown)
                return False
            placed = True
            return True
        finally:
            if not placed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=target)


class Restore:
    """Restoring relative (a path in the job's SOURCE) as version holds it, into SOURCE or
    into the directory into (absolute, checked by check()). The job is a sync job, or an
    offsite job whose snapshot was fetched to where a version would hold it."""

    def __init__(
        self,
        job: SyncJob | OffsiteJob,
        config: Config,
        relative: str,
        version: Version,
        into: str | None = None,
        force: bool = False,
        dry_run: bool = False,
    ):
        self.job, self.config, self.relative, self.version = job, config, relative, version
        self.into, self.force, self.dry_run = into, force, dry_run
        self.started = 0.0

    @property
    def target(self) -> str:
        """Where the path is restored to, for messages."""
        if self.into is not None:
            return os.path.join(self.into, PurePosixPath(self.relative).name)
        return os.path.join(self.job.source, self.relative)

    def check(self) -> None:
        """UsageError when the version does not hold the path, or the directory given is
        not one to restore into."""
        if lstat_below(self.version.path, self.relative) is None:
            raise UsageError(f"{self.relative} is not in the version {self.version.name}; see `nasbox versions`")
        if self.into is None:
            return
        for job in self.config.sync.values():  # any job's: its versions are never written after they are taken
            if paths.inside(self.into, job.destination):
                raise UsageError(
                    f"--to {self.into} lies in the destination {job.destination} of sync {job.name}: the next sync "
                    "would remove what is restored there, and its versions are never written"
                )
        try:
            os.close(open_absolute(self.into))
        except TargetError as e:
            raise UsageError(f"--to {self.into}: {e}; name the directory it leads to") from None
        except FileNotFoundError:
            raise UsageError(f"--to {self.into}: no such directory") from None

    def run(self) -> JobResult:
        self.started = time.time()
        root = self.into or paths.real(self.job.source)
        down = mounts.down_mount_for(root, self.config)
        if down is not None:
            return self._result("warning", f"skipped: {root} is on mount {down.name}, which is not mounted", True)
        as_of = f"{self.relative} as of {self.version.name} ({shown_time(self.version.time, self.zone)})"
        preflight = Copier(write=False, force=self.force)
        try:
            self._pass(preflight)
        except (TargetError, OSError) as e:
            return self._result("error", f"refused: {_reason(e)}; nothing was written")
        found = preflight.tally
        if found.in_the_way:
            return self._result(
                "error",
                f"refused: {plural(len(found.in_the_way), 'entry is', 'entries are')} in the way in {self.target} "
                "(a directory against a file or link); nothing was written; move them aside and restore again",
                tally=found,
            )
        if found.newer:
            return self._result(
                "warning",
                f"refused: {plural(len(found.newer), 'file is', 'files are')} newer in {self.target} than in "
                f"{self.version.name}; nothing was written; run the restore again with --force to overwrite them",
                True,
                found,
            )
        if self.dry_run:
            summary = f"dry run: would restore {as_of} to {self.target}: {found.counts()}"
            return self._result("info", summary, tally=found)
        copier = Copier(write=True, force=self.force)
        try:
            self._pass(copier)
        except (TargetError, OSError) as e:
            summary = f"stopped: {_reason(e)}; restored before it: {copier.tally.counts()}"
            return self._result("error", summary, tally=copier.tally)
        done = copier.tally
        status = "warning" if done.newer or done.in_the_way else "good"
        summary = f"restored {as_of} to {self.target}: {done.counts()}"
        if status == "warning":
            summary += f"; {len(done.newer) + len(done.in_the_way)} changed in the target meanwhile, left alone"
        return self._result(status, summary, tally=done)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.config.server.timezone)

    def _pass(self, copier: Copier) -> None:
        """The walk to the item's directory in the version and in the target, then the item."""
        *parents, name = self.relative.split("/")
        with ExitStack() as fds:

            def kept(fd: int) -> int:
                fds.callback(os.close, fd)
                return fd

            version = kept(os.open(self.version.path, DIRECTORY_FLAGS))
            made: list[tuple[int, int]] = []  # (target, version) directories made on the way
            target: int | None
            if self.into is not None:
                target = kept(open_absolute(self.into))
                for part in parents:
                    version = kept(os.open(part, DIRECTORY_FLAGS, dir_fd=version))
            else:
                target = kept(os.open(paths.real(self.job.source), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
                for index, part in enumerate(parents):
                    version = kept(os.open(part, DIRECTORY_FLAGS, dir_fd=version))
                    shown = os.path.join(self.job.source, *parents[: index + 1])
                    if target is not None and entry_in(target, part) is not None:
                        target = kept(open_target(target, part, shown))
                        continue
                    copier.tally.directories += 1  # missing: made
                    if not copier.write:
                        target = None  # and everything below it is new
                        continue
                    assert target is not None
                    target = kept(made_directory(target, part, shown))
                    made.append((target, version))
            if copier.write:
                assert target is not None
                copier.tally.leftovers += remove_leftovers(target)
            copier.entry(version, target, name, self.target)
            for directory, holding in reversed(made):  # their times as the version has them, now filled
                copy_metadata(holding, directory, os.fstat(holding))
            if copier.write:
                assert target is not None
                os.fsync(target)

    def _result(self, status: str, summary: str, skipped: bool = False, tally: Tally | None = None) -> JobResult:
        return JobResult(
            job=self.job.name,
            kind="restore",
            status=status,
            summary=summary,
            started=self.started,
            finished=time.time(),
            details=tally.details() if tally else [],
            stats=tally.stats() if tally else {},
            skipped=skipped,
        )


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror + (f": {error.filename}" if error.filename else "")
    return str(error)
