"""A directory tree walked to any depth: the trees versions are made of hold what share users
made, who can nest directories as deep as a path can name them (and deeper), so a walk
holds no stack frame and no descriptor per level. It holds one descriptor, of the directory
it is in: it goes down one name at a time without following a link, and back up through
"..", which must be the directory it came down from."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from nasbox.descriptors import DIRECTORY_FLAGS


class Cursor:
    """The directory a walk is in: fd, an open directory the cursor now owns."""

    def __init__(self, fd: int):
        self.fd = fd
        self.above: list[tuple[int, int]] = []  # (device, inode) of each directory above, the nearest last

    @classmethod
    def at(cls, path: str | bytes) -> Cursor:
        return cls(os.open(path, DIRECTORY_FLAGS))

    def down(self, name: str | bytes) -> None:
        """Into the directory name, never through a link."""
        self.into(os.open(name, DIRECTORY_FLAGS, dir_fd=self.fd))

    def into(self, child: int) -> None:
        """Into the directory child, a directory in this one opened by the caller."""
        st = os.fstat(self.fd)
        self.above.append((st.st_dev, st.st_ino))
        os.close(self.fd)
        self.fd = child

    def up(self) -> None:
        """Back to the directory the last down came from."""
        parent = os.open("..", DIRECTORY_FLAGS, dir_fd=self.fd)
        st = os.fstat(parent)
        if (st.st_dev, st.st_ino) != self.above[-1]:
            os.close(parent)
            raise OSError(errno.ESTALE, "a directory was moved away while it was walked")
        self.above.pop()
        os.close(self.fd)
        self.fd = parent

    def close(self) -> None:
        os.close(self.fd)


class Step(Enum):
    DOWN = "down"  # about to go into the directory name (the cursor in its parent)
    ENTRY = "entry"  # name is not a directory (the cursor in its directory)
    LEAVING = "leaving"  # every entry of the directory done (the cursor in it; name "" at the top)
    UP = "up"  # back from the directory name (the cursor in its parent)


@dataclass
class _Level:
    relative: str
    pending: list[tuple[str, bool]] = field(default_factory=list)  # (name, is a directory), the next last


def walk(cursor: Cursor, leave_out: frozenset[str] | set[str] = frozenset()) -> Iterator[tuple[Step, str, str]]:
    """(step, name, its path relative to the top) for everything below the cursor's
    directory, depth first, each directory's entries in the order the filesystem lists them;
    leave_out: relative paths not walked at all. The cursor is moved as the steps say; the
    caller acts on each step before asking for the next."""
    levels = [_Level("", _listing(cursor.fd))]
    while levels:
        level = levels[-1]
        if not level.pending:
            levels.pop()
            yield Step.LEAVING, os.path.basename(level.relative), level.relative
            if levels:
                cursor.up()
                yield Step.UP, os.path.basename(level.relative), level.relative
            continue
        name, is_directory = level.pending.pop()
        relative = os.path.join(level.relative, name)
        if relative in leave_out:
            continue
        if not is_directory:
            yield Step.ENTRY, name, relative
            continue
        yield Step.DOWN, name, relative
        cursor.down(name)
        levels.append(_Level(relative, _listing(cursor.fd)))


def _listing(fd: int) -> list[tuple[str, bool]]:
    with os.scandir(fd) as entries:
        return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries][::-1]
