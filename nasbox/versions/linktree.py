"""A version as a tree of hard links: every directory made anew (directories cannot be
linked) with its owner, mode, times and extended attributes (ACLs are among them), every
other entry (file, symlink, device) linked, so a version costs one inode per directory and
one directory entry per file. A file that cannot be linked is copied: one at the
filesystem's link limit, or one made immutable or append-only (`chattr +i`/`+a`), which
link(2) refuses.

The tree shares each file's inode with the mirror: rsync replaces a file it updates (never
--inplace), so the version keeps the old one; a repair that writes into the mirror's file in
place repairs every version that shares it.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass

from nasbox.versions.cursor import Cursor, Step, walk

NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Counts:
    directories: int = 0
    links: int = 0
    copies: int = 0  # files that could not be linked


def count_directories(source: str, leave_out: set[str]) -> int:
    """The directories link_tree would make for source (source's own included), counted from
    the names' types alone: what a version needs in inodes, before it is taken."""
    cursor = Cursor.at(source)
    try:
        return 1 + sum(step is Step.DOWN for step, _, _ in walk(cursor, leave_out))
    finally:
        cursor.close()


def link_tree(source: str, target: str, leave_out: set[str]) -> Counts:
    """target (which must not exist) made a linked copy of source; leave_out: paths
    relative to source not to take (nasbox's own directories). Both trees are walked through
    descriptors (nasbox.versions.cursor), never by a path walked again: any depth, and no
    symlink followed. A directory's own metadata is set once it is filled (one made
    read-only by its mode is filled first)."""
    counts = Counts()
    os.mkdir(target, 0o700)
    mirror = Cursor.at(source)
    try:
        made = Cursor.at(target)
        try:
            for step, name, _ in walk(mirror, leave_out):
                if step is Step.DOWN:
                    os.mkdir(name, 0o700, dir_fd=made.fd)
                    made.down(name)
                elif step is Step.ENTRY:
                    _link_entry(mirror.fd, made.fd, name, counts)
                elif step is Step.LEAVING:
                    counts.directories += 1
                    copy_metadata(mirror.fd, made.fd, os.fstat(mirror.fd))
                else:
                    made.up()
        finally:
            made.close()
    finally:
        mirror.close()
    return counts


def _link_entry(source_fd: int, target_fd: int, name: str, counts: Counts) -> None:
    try:
        os.link(name, name, src_dir_fd=source_fd, dst_dir_fd=target_fd, follow_symlinks=False)
        counts.links += 1
    except OSError as e:
        if e.errno not in (errno.EMLINK, errno.EPERM):
            raise
        _copy_entry(source_fd, target_fd, name)
        counts.copies += 1


def copy_metadata(source: int, target: int, st: os.stat_result) -> None:
    """The extended attributes (ACLs among them), owner, mode and times of an open file or
    directory onto another."""
    try:
        for name in os.listxattr(source):
            os.setxattr(target, name, os.getxattr(source, name))
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM):
            raise
    os.fchown(target, st.st_uid, st.st_gid)
    os.fchmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_entry(source_fd: int, target_fd: int, name: str) -> None:
    """An entry at the filesystem's link limit, made anew."""
    st = os.lstat(name, dir_fd=source_fd)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=source_fd), name, dir_fd=target_fd)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=target_fd, follow_symlinks=False)
        return
    if not stat.S_ISREG(st.st_mode):
        os.mknod(name, st.st_mode, st.st_rdev, dir_fd=target_fd)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=target_fd, follow_symlinks=False)
        return
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(name, flags, dir_fd=source_fd), "rb") as old:
        new_fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=target_fd
        )
        with os.fdopen(new_fd, "wb") as new:
            shutil.copyfileobj(old, new, 1 << 20)
            new.flush()
            copy_metadata(old.fileno(), new.fileno(), os.fstat(old.fileno()))
