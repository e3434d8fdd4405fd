"""Walking DIRECTORY: which files are listed, and what each one needs.

Directories are listed through descriptors (nasbox.scrub.files); symlinks, special files,
the DATABASEs of scrub jobs (known by identity) and excluded names are left out, and so are
the names parity cannot be given (nasbox.scrub.layout), each with a warning. need() decides,
from a file's metadata and its catalog row, what it needs (Need):
- no row: parity (NEW);
- a row recovered from its parity set (nasbox.scrub.rebuild): read and reconciled;
- another size or mtime than recorded: an edit: new parity (never a repair);
- the same size and mtime but another inode or ctime (replaced by a copy, or written and its
  mtime set back), or recorded too recently to prove anything (nasbox.scrub.timestamps):
  the content decides;
- otherwise, when this run verifies it: read and compared with its row;
- and a LEGACY row, once the rest is settled, a set (CONVERT).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from enum import Enum

from nasbox.scrub import layout, rebuild
from nasbox.scrub.catalog import Catalog, Entry
from nasbox.scrub.files import NOT_THIS_FILE, read_directory
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.report import Report
from nasbox.scrub.work import Mode


class Need(Enum):
    NOTHING = "nothing"
    NEW = "new"
    EDITED = "edited"
    CONVERT = "convert"  # a LEGACY row of a file that is as recorded: into a set
    READ = "read"  # read, with the Mode need() gives


@dataclass(frozen=True)
class Listing:
    files: dict[bytes, os.stat_result | None]  # the regular files parity can hold (None: not stated)
    subdirectories: list[bytes]  # to walk, in order
    left_out: list[bytes]  # files the parity layout cannot hold: any parity they had goes


@dataclass
class Tree:
    """DIRECTORY as this run lists it: the directories it could not read (their parity is
    kept) and the mount points it crossed (for the guards of the next run)."""

    job: ScrubJob
    directory: bytes
    report: Report
    unreadable: list[bytes] = field(default_factory=list)
    mount_points: set[bytes] = field(default_factory=set)  # relative
    devices: dict[bytes, int] = field(default_factory=dict)  # directory -> st_dev, to find mount points

    def begin(self) -> None:
        """A new walk, from DIRECTORY's own device."""
        self.devices[b""] = os.stat(self.directory).st_dev

    def list_directory(
        self, relative: bytes, database_ids: set[tuple[int, int]], unstated: Container[bytes] = ()
    ) -> Listing | None:
        """One directory; None when it cannot be read (reported) or is gone. The regular files
        named in unstated are listed without their metadata (read_directory)."""
        try:
            entries = read_directory(self.directory, relative, unstated)
        except OSError as e:
            if e.errno in NOT_THIS_FILE:
                return None  # gone, or a link now, since its parent was listed: its entries lose their parity
            self.unreadable.append(relative)
            self.report.problem(relative, f"cannot read the directory: {e.strerror}; its parity is kept", "skipped")
            return None
        files: dict[bytes, os.stat_result | None] = {}
        subdirectories: set[bytes] = set()
        exclude = self.job.exclude
        for name, st in entries:
            if st is None or stat.S_ISREG(st.st_mode):
                if not exclude or not excluded(exclude, os.path.join(relative, name), False):
                    files[name] = st
            elif stat.S_ISDIR(st.st_mode):
                path = os.path.join(relative, name)
                # Never scrub parity: this job's DATABASE, nor another job's; known by identity.
                is_database = (st.st_dev, st.st_ino) in database_ids
                if not is_database and not excluded(exclude, path, True):
                    subdirectories.add(name)
                    if st.st_dev != self.devices.get(relative, st.st_dev):
                        self.mount_points.add(path)
                    self.devices[path] = st.st_dev
        left_out = self._leave_out_unprotectable(relative, files, subdirectories)
        return Listing(files, [os.path.join(relative, name) for name in sorted(subdirectories)], left_out)

    def _leave_out_unprotectable(
        self, relative: bytes, files: dict[bytes, os.stat_result | None], subdirectories: set[bytes]
    ) -> list[bytes]:
        """Drop the files and subdirectories parity cannot be given, each with a warning; a
        directory left out keeps whatever parity it has, a file left out loses its parity at
        once."""
        for name in sorted(subdirectories):
            path = os.path.join(relative, name)
            why = layout.directory_problem(self.directory, path)
            if why:
                subdirectories.discard(name)
                self.unreadable.append(path)
                self.report.problem(path, why, "skipped")
        left_out = []
        for name, why in layout.file_problems(self.directory, relative, files):
            del files[name]
            self.report.problem(os.path.join(relative, name), why, "skipped")
            left_out.append(name)
        return left_out

    def unseen_directories(self, catalog: Catalog) -> Iterator[bytes]:
        """The directories the catalog knows and the walk did not see: gone, unless below a
        directory it could not read."""
        for relative in catalog.unseen_directories():
            if not any(_within(relative, bad) for bad in self.unreadable):
                yield relative


def need(st: os.stat_result, entry: Entry | None, verify: bool) -> tuple[Need, Mode | None]:
    """What a walked file needs this run (verify: whether this run verifies it), and for
    Need.READ how a mismatch is taken."""
    if entry is None:
        return Need.NEW, None
    if entry.result == rebuild.REBUILT:
        return Need.READ, Mode.RECONCILE
    if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
        return Need.EDITED, None
    if (st.st_ino, st.st_ctime_ns) != (entry.inode, entry.ctime_ns) or not entry.settled:
        return Need.READ, Mode.COPY
    if verify:
        return Need.READ, Mode.VERIFY
    if entry.legacy:
        return Need.CONVERT, None
    return Need.NOTHING, None


def excluded(patterns: tuple[str, ...], relative: bytes, is_dir: bool) -> bool:
    """rsync-like: a pattern without '/' matches a name at any depth, one with '/' the
    path from DIRECTORY; a trailing '/' matches directories only."""
    if not patterns:
        return False
    path = os.fsdecode(relative)
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        if pattern.endswith("/"):
            if not is_dir:
                continue
            pattern = pattern[:-1]
        if fnmatch.fnmatchcase(path if "/" in pattern else name, pattern.lstrip("/")):
            return True
    return False


def _within(path: bytes, directory: bytes) -> bool:
    return directory == b"" or path == directory or path.startswith(directory + b"/")
