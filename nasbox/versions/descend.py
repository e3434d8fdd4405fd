"""Versions read one name at a time through directory descriptors, never following a
symlink: a version is made by root but holds what users made, links to anywhere included."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from nasbox.descriptors import open_below


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
