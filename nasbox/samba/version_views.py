"""Read-only views of versions: what Samba serves as Previous Versions.

A linked version's files are the mirror's own inodes, so a change made through a version
would change the mirror and every other version sharing the file. Samba refuses most writes
to an `@GMT-` path, but not all of them in every release (a file truncated and rewritten,
an ACL set), and a share with write users would let them through. So Samba reads versions
only through a read-only bind mount of the job's versions directory: there the kernel
refuses every change (EROFS), whatever Samba lets through.

Each view is VIEWS/JOB, made at start for every job a share shows, and mounted once the
job's versions directory exists (at start, or after the job takes a version). A view that
cannot be mounted stays an empty directory: its shares show no versions, and the log says
why.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path, PurePosixPath

from nasbox import commands, mount_cmds, paths
from nasbox.config.model import Config
from nasbox.mounttable import mount_table
from nasbox.sync.kind import SyncJob
from nasbox.versions.store import VERSIONS_DIR

log = logging.getLogger(__name__)


def views_dir() -> Path:
    """Read at each call so that tests can point it elsewhere; outside nasbox's private run
    directory, since share users must pass through it."""
    return Path(os.environ.get("NASBOX_VERSION_VIEWS", "/run/nasbox-versions"))


def view(job: str) -> Path:
    return views_dir() / job


def prepare(config: Config, shown: set[str]) -> None:
    """At start: a view for every job in shown (the jobs whose versions some share shows),
    mounted where the versions exist."""
    for name in sorted(shown):
        place = view(name)
        place.mkdir(parents=True, exist_ok=True)
        for directory in (views_dir(), place):
            directory.chmod(0o755)  # share users pass through to the versions
        refresh(config.sync[name])


def refresh(job: SyncJob) -> None:
    """Mount the view of job's versions unless it shows them already: after a version is
    taken, and when the versions directory was made anew (the view would show the old one).
    Jobs no share shows have no view and are left alone. Never raises: the versions are
    kept whether or not Samba can show them."""
    place = view(job.name)
    if not place.is_dir():
        return
    versions = os.path.join(paths.real(job.destination), VERSIONS_DIR)
    try:
        st = os.lstat(versions)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        log.warning("sync %s: %s is not a directory; its versions are not shown", job.name, versions)
        return
    seen = os.stat(place)
    if (seen.st_dev, seen.st_ino) == (st.st_dev, st.st_ino):
        return
    try:
        if _mounted(place):
            commands.run(mount_cmds.unmount(str(place)))
        commands.run(mount_cmds.bind(versions, str(place)))
        commands.run(mount_cmds.remount_read_only(str(place)))
    except commands.CommandError as e:
        log.warning(
            "sync %s: its versions are not shown as Previous Versions: the read-only view %s could not "
            "be mounted (%s); the container needs cap_add SYS_ADMIN",
            job.name,
            place,
            e,
        )
        if _mounted(place) and not _read_only(place):
            commands.run(mount_cmds.unmount(str(place)), check=False)  # never a writable view


def _mounted(place: Path) -> bool:
    """Whether something is mounted at place (a bind mount from the same filesystem included,
    which os.path.ismount does not see)."""
    resolved = PurePosixPath(paths.real(str(place)))
    return any(m.mountpoint == resolved for m in mount_table())


def _read_only(place: Path) -> bool:
    return bool(os.statvfs(place).f_flag & os.ST_RDONLY)
