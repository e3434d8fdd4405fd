"""A recycle bin per share: what a client deletes over SMB moves into the share's
`.nasbox-recycle` folder (Samba's vfs_recycle), keeping its folders, and a name deleted again
keeps the earlier copy as "Copy #1 of NAME". The scheduler empties what was deleted longer
ago than the share's retention.

When a file went to the bin is its change time (ctime): the move sets it, and no client can
set it back (a client may set a file's other times to anything). A folder in the bin goes
once it is empty and nothing has entered it for the retention: Samba makes a folder again
when a deletion needs it. The walk never follows a link and never leaves the bin's
filesystem.

The folder is made at start, owned by root and the group every user has (PGID), mode 2770:
Samba moves a file there as the user who deletes it, and a user who cannot write it would
lose the file (Samba deletes it outright when the move fails). Its name starts with a dot,
so clients show it as hidden; it is not vetoed, so a user restores a file by moving it back.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from dataclasses import dataclass, field

from nasbox import mounts
from nasbox.config.model import Config, Share
from nasbox.durations import seconds

log = logging.getLogger(__name__)

RECYCLE_DIR = ".nasbox-recycle"
FOLDER_MODE = 0o2770
EMPTY_EVERY_S = 3600.0  # how often the scheduler empties the bins
OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def folder(share: Share) -> str:
    return os.path.join(share.path, RECYCLE_DIR)


def folders(config: Config) -> list[str]:
    """The recycle folders of every share that keeps one (sync and scrub leave them alone)."""
    return [folder(share) for share in config.shares.values() if share.recycle]


def folder_problem(share: Share) -> str | None:
    """Why the share's recycle folder cannot be used as it is on disk, or None. A link there
    would make Samba move deleted files elsewhere, or delete them when it cannot."""
    try:
        st = os.lstat(folder(share))
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"cannot read {folder(share)}: {e.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder(share)} is not a folder (a link or a file); expected nasbox's recycle folder or nothing there"
    return None


def prepare(config: Config, gid: int) -> None:
    """At start: every recycle folder present, root's and the users' group's, mode 2770."""
    for share in config.shares.values():
        if not share.recycle or mounts.down_mount_for(share.path, config) is not None:
            continue
        path = folder(share)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        fd = os.open(path, OPEN_DIRECTORY)  # a link put there since validation fails here
        try:
            os.fchown(fd, 0, gid)
            os.fchmod(fd, FOLDER_MODE)
        finally:
            os.close(fd)


@dataclass
class Emptied:
    files: int = 0
    bytes: int = 0
    folders: int = 0
    failures: list[str] = field(default_factory=list)


def empty(path: str, retention_s: int, now: float) -> Emptied:
    """Remove from the recycle folder at path what entered it more than retention_s before
    now (seconds since the epoch)."""
    emptied = Emptied()
    try:
        fd = os.open(path, OPEN_DIRECTORY)
    except FileNotFoundError:
        return emptied
    try:
        _empty_dir(fd, path, os.fstat(fd).st_dev, now - retention_s, emptied)
    finally:
        os.close(fd)
    return emptied


def _empty_dir(fd: int, where: str, device: int, cutoff: float, emptied: Emptied) -> None:
    for entry in list(os.scandir(fd)):
        name = entry.name
        try:
            st = os.lstat(name, dir_fd=fd)
            if not stat.S_ISDIR(st.st_mode):
                if st.st_ctime < cutoff:
                    os.unlink(name, dir_fd=fd)
                    emptied.files += 1
                    emptied.bytes += st.st_size
                continue
            if st.st_dev != device:  # something mounted there: not the bin's
                continue
            child = os.open(name, OPEN_DIRECTORY, dir_fd=fd)
            try:
                _empty_dir(child, os.path.join(where, name), device, cutoff, emptied)
            finally:
                os.close(child)
            # Its times before this walk: what the walk removed changed them.
            if max(st.st_mtime, st.st_ctime) < cutoff:
                try:
                    os.rmdir(name, dir_fd=fd)
                    emptied.folders += 1
                except OSError as e:
                    if e.errno != errno.ENOTEMPTY:
                        raise
        except FileNotFoundError:
            continue  # restored (moved back) meanwhile
        except OSError as e:
            emptied.failures.append(f"{os.path.join(where, name)}: {e.strerror}")


def empty_all(config: Config, now: float | None = None) -> dict[str, Emptied]:
    """Empty every share's recycle bin of what is older than its retention; logged."""
    now = time.time() if now is None else now
    results = {}
    for share in config.shares.values():
        if not share.recycle or mounts.down_mount_for(share.path, config) is not None:
            continue
        try:
            emptied = empty(folder(share), seconds(share.recycle), now)
        except OSError as e:
            log.warning("share %s: cannot empty its recycle bin %s: %s", share.name, folder(share), e.strerror)
            continue
        results[share.name] = emptied
        if emptied.files or emptied.folders:
            log.info(
                "share %s: recycle bin: removed %d file(s) (%d bytes) and %d folder(s) deleted over %s ago",
                share.name,
                emptied.files,
                emptied.bytes,
                emptied.folders,
                share.recycle,
            )
        for failure in emptied.failures[:10]:
            log.warning("share %s: recycle bin: cannot remove %s", share.name, failure)
    return results
