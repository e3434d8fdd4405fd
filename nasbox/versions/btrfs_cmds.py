"""The one place btrfs command lines are built, and subvolumes are looked at: versions of a
destination that is a btrfs subvolume are read-only snapshots of it."""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import PurePosixPath

from nasbox.mounttable import holding, mount_table

BTRFS = "btrfs"
SUBVOLUME_ROOT_INODE = 256  # every btrfs subvolume's top directory has this inode number
GET_FLAGS = 0x80089419  # BTRFS_IOC_SUBVOL_GETFLAGS: _IOR(0x94, 25, u64)
READ_ONLY_FLAG = 1 << 1  # BTRFS_SUBVOL_RDONLY


def is_subvolume(path: str) -> bool:
    """Whether path is the top directory of a btrfs subvolume (so it can be snapshotted)."""
    st = os.stat(path)
    mounted = holding(PurePosixPath(os.path.realpath(path)), mount_table())
    return st.st_ino == SUBVOLUME_ROOT_INODE and mounted is not None and mounted.fstype == "btrfs"


def is_read_only(subvolume: str) -> bool:
    fd = os.open(subvolume, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        (flags,) = struct.unpack("=Q", fcntl.ioctl(fd, GET_FLAGS, bytes(8)))
    finally:
        os.close(fd)
    return bool(flags & READ_ONLY_FLAG)


def create(path: str) -> list[str]:
    return [BTRFS, "-q", "subvolume", "create", path]


def snapshot(subvolume: str, target: str) -> list[str]:
    """A read-only snapshot of subvolume at target."""
    return [BTRFS, "-q", "subvolume", "snapshot", "-r", subvolume, target]


def delete(subvolume: str) -> list[str]:
    return [BTRFS, "-q", "subvolume", "delete", subvolume]


def set_read_only(subvolume: str, read_only: bool) -> list[str]:
    return [BTRFS, "property", "set", "-ts", subvolume, "ro", "true" if read_only else "false"]
