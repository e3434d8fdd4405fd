"""How root reaches a path in a tree users write: one name at a time, through directory
descriptors, never through a symlink. A link, FIFO or directory a user swaps in between a
check and an action is then never entered, read or written through."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import AnyStr

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in for a file must not block the open; a regular file ignores it.
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def open_below(root: AnyStr, parts: Iterable[AnyStr], root_flags: int = DIRECTORY_FLAGS) -> int:
    """A descriptor of the directory root/part/part...: root opened with root_flags, every
    part below it without following a link. FileNotFoundError or NotADirectoryError when a
    part is missing or is not a directory (a link included)."""
    fd = os.open(root, root_flags)
    try:
        for part in parts:
            child = os.open(part, DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd
