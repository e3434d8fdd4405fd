"""DATABASE and nasbox's private folder in it, opened only when nobody else can write them.

A scrub runs as root and acts on what these folders hold: the catalog names the files it
repairs and removes parity of, the journal names directories it empties. So each must be
a real directory (not a symlink) owned by the user nasbox runs as (root) and writable by
nobody else, and so must the catalog, its journal files, the lock and the working
directories inside. They are opened once, without following links, and used through their
descriptors (as /proc/self/fd/N), so renaming or replacing them afterwards changes nothing.
They are made only on a job's first run: once earlier runs kept parity there, a missing one
is on a disk that did not mount, and is never made again on the disk below.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass

from nasbox.descriptors import DIRECTORY_FLAGS

PRIVATE = b".nasbox-scrub"  # nasbox's own directory inside DATABASE
# What the private folder holds; each is checked when it exists.
PRIVATE_FILES = (b"catalog.sqlite", b"catalog.sqlite-wal", b"catalog.sqlite-shm", b"lock")
REPAIRING = b"repairing"  # notes of repairs under way (nasbox.scrub.repair)
PRIVATE_DIRECTORIES = (b"staging", b"repair", REPAIRING)


class Untrusted(Exception):
    """A folder or file others could have written: the scrub must not use it."""


class Missing(Exception):
    """DATABASE or its private folder is not there, and may not be made."""


@dataclass(frozen=True)
class Folders:
    database_fd: int
    private_fd: int

    @property
    def database(self) -> bytes:
        return fd_path(self.database_fd)

    @property
    def private(self) -> bytes:
        return fd_path(self.private_fd)

    def close(self) -> None:
        os.close(self.private_fd)
        os.close(self.database_fd)


def fd_path(fd: int) -> bytes:
    """A path to what fd refers to, valid in this process (and in a child given fd)."""
    return b"/proc/self/fd/%d" % fd


def open_folders(database: bytes, may_create: bool) -> Folders:
    """DATABASE and its private folder, checked and open; made (0755 and 0700) when missing
    if may_create, else Missing. Its parent directory must exist: DATABASE is never made on
    the disk below a mount point that is not mounted."""
    parent = os.path.dirname(database.rstrip(b"/")) or b"/"
    if not os.path.isdir(parent):
        raise Missing(f"the parent directory of DATABASE {os.fsdecode(database)} is missing")
    database_fd = _open_directory(database, None, 0o755, os.fsdecode(database), may_create)
    try:
        private_fd = _open_directory(
            PRIVATE, database_fd, 0o700, os.fsdecode(os.path.join(database, PRIVATE)), may_create
        )
    except BaseException:
        os.close(database_fd)
        raise
    try:
        for name in PRIVATE_FILES + PRIVATE_DIRECTORIES:
            shown = os.fsdecode(os.path.join(database, PRIVATE, name))
            try:
                st = os.stat(name, dir_fd=private_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            wanted = stat.S_ISDIR if name in PRIVATE_DIRECTORIES else stat.S_ISREG
            if not wanted(st.st_mode):
                raise Untrusted(f"{shown} is not a {'directory' if name in PRIVATE_DIRECTORIES else 'regular file'}")
            _check_owner(st, shown)
    except BaseException:
        os.close(private_fd)
        os.close(database_fd)
        raise
    return Folders(database_fd, private_fd)


def _open_directory(path: bytes, dir_fd: int | None, mode: int, shown: str, may_create: bool) -> int:
    if may_create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, mode, dir_fd=dir_fd)
    try:
        fd = os.open(path, DIRECTORY_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError as e:
        raise Missing(f"{shown} is missing") from e
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Untrusted(f"{shown} is a symbolic link or not a directory") from e
        raise
    try:
        _check_owner(os.fstat(fd), shown)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_owner(st: os.stat_result, shown: str) -> None:
    if st.st_uid != os.geteuid():
        raise Untrusted(
            f"{shown} is owned by uid {st.st_uid}, not by uid {os.geteuid()} (nasbox); "
            "it must be writable only by nasbox"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Untrusted(
            f"{shown} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            "it must be writable only by nasbox"
        )
