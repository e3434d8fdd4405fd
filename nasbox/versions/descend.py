"""Versions read one name at a time through directory descriptors, never following a
symlink: a version is made by root but holds what users made, links to anywhere included."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from nasbox.versions.cursor import DIRECTORY_FLAGS

# O_NONBLOCK: a FIFO in place of a file must not block the open; a regular file ignores it.
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def open_below(root: str, parts: Sequence[str]) -> int:
    """A descriptor of the directory root/parts[0]/...; root is opened as given, every part
    below it without following a link. FileNotFoundError or NotADirectoryError when one is
    missing or is not a directory (a link included)."""
    fd = os.open(root, DIRECTORY_FLAGS)
    try:
        for part in parts:
            child = os.open(part, DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def opened(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_below(root: str, relative: str) -> os.stat_result | None:
    """What root/relative is, the last name itself (a link is not followed); None when it is
    not there or a name on the way is not a directory."""
    *parents, name = relative.split("/")
    try:
        with opened(open_below(root, parents)) as parent:
            return os.lstat(name, dir_fd=parent)
    except (FileNotFoundError, NotADirectoryError):
        return None
