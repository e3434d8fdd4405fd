"""A file a scrub repaired is repaired in the versions too.

A repair writes the good bytes into the damaged file in place, so every linked version that
shares the file's inode is repaired with it. A version holding a copy of its own (a btrfs
snapshot, or a file copied at the link limit) with the repaired file's size and mtime but
other bytes holds the damage the scrub found: it is given the repaired bytes as well. Only a
copy of the repaired file itself is: the version must have been taken while the repaired file
was the mirror's, which a version holding it shows (linked: the same inode; a snapshot: the
same inode number), this one or an older one, since a file rsync replaced never comes back.
A file of an older version may be an older content with the same size and mtime (rewritten,
then its mtime set back), which parity never covered: it is left as it is, as is a copy of
another size or mtime.

Versions hold what share users wrote: their paths are walked through descriptors, never
following a link.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import BinaryIO

from nasbox import commands, paths
from nasbox.config.model import Config
from nasbox.descriptors import FILE_FLAGS
from nasbox.scrub.files import md5_of_fd, open_directory, open_file
from nasbox.versions import btrfs_cmds
from nasbox.versions.linktree import NEW_FILE_FLAGS, copy_metadata
from nasbox.versions.store import Version, Versions, VersionsError

MENDING = b".nasbox-mending."  # and 16 hex digits: the repaired copy, before it replaces the damaged one


@dataclass
class Mended:
    lines: list[str] = field(default_factory=list)  # what was done, for the scrub's details
    failed: bool = False  # a damaged copy is left in a version


def mend_versions(config: Config, directory: str, repaired: list[tuple[bytes, bytes]]) -> Mended:
    """For each repaired file (its path relative to a scrub's DIRECTORY, its MD5), its damaged
    copies in the versions of every sync destination holding it repaired."""
    mended = Mended()
    for relative, md5 in repaired:
        live = (os.fsencode(directory), relative)
        for job in config.sync.values():
            inside = paths.below(os.path.join(directory, os.fsdecode(relative)), job.destination)
            if inside is None:
                continue
            held = False  # whether a version so far holds the repaired file itself
            for version in Versions(paths.real(job.destination)).all():
                try:
                    held, repaired_copy = _mend(version, os.fsencode(inside), live, md5, held)
                    if repaired_copy:
                        mended.lines.append(f"version {version.name}: its copy of {inside} was damaged too; repaired")
                except (OSError, VersionsError, commands.CommandError) as e:
                    mended.lines.append(f"version {version.name}: its damaged copy of {inside} is not repaired: {e}")
                    mended.failed = True
    return mended


def _mend(version: Version, relative: bytes, live: tuple[bytes, bytes], md5: bytes, held: bool) -> tuple[bool, bool]:
    """Whether this version or an older one holds the repaired file (held: an older one
    does), and whether the version's copy of it was damaged and is now repaired; live: the
    repaired file as (DIRECTORY, its path there)."""
    head, name = os.path.split(relative)
    try:
        dir_fd = open_directory(os.fsencode(version.path), head)
    except OSError:
        return held, False  # not in this version (or a link there): nothing of the file to mend
    try:
        try:
            old = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
        except OSError:
            return held, False
        with os.fdopen(old, "rb") as old_file:
            old_st = os.fstat(old)
            live_head, live_name = os.path.split(live[1])
            good_fd = open_file(live[0], live_head, live_name)
            with os.fdopen(good_fd, "rb") as good_file:
                good_st = os.fstat(good_fd)
                held = held or (stat.S_ISREG(old_st.st_mode) and old_st.st_ino == good_st.st_ino)
                if (
                    not held
                    or not stat.S_ISREG(old_st.st_mode)
                    or (old_st.st_dev, old_st.st_ino) == (good_st.st_dev, good_st.st_ino)
                    or (old_st.st_size, old_st.st_mtime_ns) != (good_st.st_size, good_st.st_mtime_ns)
                    or md5_of_fd(old) == md5
                ):
                    return held, False
                if md5_of_fd(good_fd) != md5:
                    raise VersionsError("the repaired file has changed since; left for the next scrub")
                good_file.seek(0)
                with _writable(version):
                    _replace(dir_fd, name, good_file, old_file.fileno(), old_st)
                return held, True
    finally:
        os.close(dir_fd)


def _replace(dir_fd: int, name: bytes, good_file: BinaryIO, old_fd: int, old_st: os.stat_result) -> None:
    """The version's file replaced by a copy of the good bytes, with its own metadata. The
    copy is made under a name no entry has (every name may be a user's) and removed if it is
    not put in place."""
    temp = MENDING + secrets.token_hex(8).encode()
    placed = False
    try:
        with os.fdopen(os.open(temp, NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd), "wb") as new:
            while chunk := good_file.read(1 << 20):
                new.write(chunk)
            new.flush()
            copy_metadata(old_fd, new.fileno(), old_st)
            os.fsync(new.fileno())
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        placed = True
    finally:
        if not placed:
            with suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=dir_fd)


@contextmanager
def _writable(version: Version) -> Iterator[None]:
    """A read-only snapshot made writable for the mending, and read-only again after."""
    snapshot = btrfs_cmds.is_subvolume(version.path)
    if snapshot:
        commands.run(btrfs_cmds.set_read_only(version.path, False))
    try:
        yield
    finally:
        if snapshot:
            commands.run(btrfs_cmds.set_read_only(version.path, True))
