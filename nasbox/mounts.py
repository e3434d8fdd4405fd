"""CIFS mounts of remote shares inside the container, so that jobs can back up another NAS.

Credentials go to a file of mode 0600 on a tmpfs, never into a command line, the
environment of a child or a log. A mountpoint must be an empty directory or already this
share: nasbox never mounts over data. A share that is offline does not stop anything: it is
retried, and jobs that need it are skipped until it is back.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nasbox import commands, mount_cmds, paths, state
from nasbox.config import Config
from nasbox.config.model import Mount
from nasbox.mounttable import holding, mount_table
from nasbox.notify.deliver import deliver
from nasbox.notify.event import Event
from nasbox.result import JobResult
from nasbox.text import is_one_line

log = logging.getLogger(__name__)

CREDENTIALS_DIR = Path("/dev/shm/nasbox-credentials")  # /dev/shm is a tmpfs in every container


def status_file() -> Path:
    return state.run_dir() / "mounts.json"


@dataclass(frozen=True)
class MountState:
    name: str
    mountpoint: str
    source: str
    mounted: bool
    error: str | None = None
    checked_at: float = 0.0


def unc(mount: Mount) -> str:
    """//HOST/SHARE, with SUBDIR appended unless it is /."""
    subdir = mount.subdir.strip("/")
    return f"//{mount.host}/{mount.share}" + (f"/{subdir}" if subdir else "")


def options(mount: Mount, config: Config, credentials: Path) -> str:
    """mount.cifs options: nasbox's defaults, then the item's overrides (False drops one)."""
    chosen: dict[str, str | bool] = {
        "credentials": str(credentials),
        "vers": "3.0",
        "uid": str(config.server.puid),
        "gid": str(config.server.pgid),
        "file_mode": "0664",
        "dir_mode": "0775",
        "iocharset": "utf8",
    }
    for key, value in mount.options:  # a ',' would add an option, an '=' in a name change one
        if (
            key in mount_cmds.CREDENTIAL_OPTIONS
            or "," in f"{key}{value}"
            or "=" in key
            or not is_one_line(f"{key}{value}")
        ):
            raise ValueError(f"mount {mount.name}: option {key!r} cannot be passed to mount.cifs")
    chosen.update(dict(mount.options))
    return ",".join(k if v is True else f"{k}={v}" for k, v in chosen.items() if v is not False)


def mount_command(mount: Mount, config: Config, credentials: Path) -> list[str]:
    return mount_cmds.mount_cifs(unc(mount), mount.mountpoint, options(mount, config, credentials))


def write_credentials(mount: Mount, directory: Path = CREDENTIALS_DIR) -> Path:
    """The credentials file mount.cifs reads, mode 0600, written atomically."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _is_tmpfs(directory):
        raise OSError(f"{directory} is not on a tmpfs; refusing to write a password there")
    if not (is_one_line(mount.username) and is_one_line(mount.password)):  # one line per setting
        raise ValueError(f"mount {mount.name}: the user name or password holds a control character")
    path = directory / mount.name
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"username={mount.username}\npassword={mount.password}\n")
    os.replace(temp, path)
    return path


def _is_tmpfs(path: Path) -> bool:
    mounted = holding(PurePosixPath(os.path.realpath(path)), mount_table())
    return mounted is not None and mounted.fstype == "tmpfs"


def mounted_source(mountpoint: str) -> str | None:
    """What CIFS share is mounted at mountpoint (the one on top), or None."""
    on_top = [m for m in mount_table() if m.mountpoint == PurePosixPath(mountpoint)]
    return on_top[-1].source if on_top and on_top[-1].fstype in ("cifs", "smb3") else None


def is_mounted(mount: Mount) -> bool:
    return mounted_source(mount.mountpoint) == unc(mount)


def mount_one(mount: Mount, config: Config) -> MountState:
    """Mount if not mounted yet; never over a directory that holds data."""
    source = unc(mount)
    now = time.time()
    if is_mounted(mount):
        return MountState(mount.name, mount.mountpoint, source, True, checked_at=now)
    point = Path(mount.mountpoint)
    state.public_directory(point)
    if any(point.iterdir()):
        return MountState(
            mount.name, mount.mountpoint, source, False, f"{point} is not empty; nasbox does not mount over data", now
        )
    try:
        credentials = write_credentials(mount)
        commands.run(mount_command(mount, config, credentials), timeout=60)
    except (OSError, ValueError, commands.CommandError) as e:
        return MountState(mount.name, mount.mountpoint, source, False, str(e), now)
    return MountState(mount.name, mount.mountpoint, source, True, checked_at=now)


def mount_all(config: Config) -> list[MountState]:
    """Mount what is not mounted; notify when a mount is down at start, goes down or comes back."""
    before = {s["name"]: s["mounted"] for s in state.read_json(status_file(), [])}
    states = [mount_one(m, config) for m in config.mounts.values()]
    for s in states:
        if s.mounted:
            log.info("mount %s: %s on %s", s.name, s.source, s.mountpoint)
            summary = f"{s.source} is mounted on {s.mountpoint} again"
        else:
            summary = f"{s.source} is not available: {s.error}; jobs that need it are skipped"
            log.warning("mount %s: %s", s.name, summary)
        if before.get(s.name, True) != s.mounted:
            result = JobResult(s.name, "mount", "info" if s.mounted else "warning", summary, s.checked_at, s.checked_at)
            deliver(config, Event("finish", result, "now", config.server.name))
    state.run_dir().mkdir(parents=True, exist_ok=True)
    status_file().write_text(json.dumps([s.__dict__ for s in states], indent=2))
    return states


def unmount_all(config: Config) -> None:
    for mount in config.mounts.values():
        if is_mounted(mount):
            commands.run(mount_cmds.unmount(mount.mountpoint), check=False)
        (CREDENTIALS_DIR / mount.name).unlink(missing_ok=True)


def down_mount_for(path: str, config: Config) -> Mount | None:
    """The configured mount that path lies on, when it is not mounted."""
    for mount in config.mounts.values():
        if paths.inside(path, mount.mountpoint) and not is_mounted(mount):
            return mount
    return None
