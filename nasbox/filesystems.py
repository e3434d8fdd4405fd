"""The filesystems holding what nasbox serves and protects (share paths, and every path of
every job: sync sources and destinations, scrub directories and databases), each once, with
its space: for `nasbox status` and the space warning (nasbox.space_warning)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from nasbox import paths, space
from nasbox.config import Config
from nasbox.kinds import KINDS
from nasbox.mounttable import holding, mount_table


@dataclass
class Filesystem:
    mountpoint: str
    usage: space.Usage
    holds: list[str] = field(default_factory=list)  # "sync docs: /backup/docs", ...


def configured_paths(config: Config) -> list[tuple[str, str]]:
    """(what, path) of every share path and job path: ("share docs", "/data/docs"), ..."""
    found = [(f"share {s.name}", p) for s in config.shares.values() for p in (s.path, *s.extra_paths)]
    for kind in KINDS.values():
        for name, job in sorted(kind.jobs(config).items()):
            found += [(f"{kind.name} {name}", p) for p in kind.paths(job)]
    return found


def filesystems(config: Config) -> list[Filesystem]:
    """Each filesystem (by device) holding a configured path, in the order the paths are
    configured; a path not made yet counts where it will be made (its nearest existing
    ancestor)."""
    table = mount_table()
    found: dict[int, Filesystem] = {}
    for what, path in configured_paths(config):
        where = space.existing(path)
        try:
            device = os.stat(where).st_dev
            if device not in found:
                mounted = holding(PurePosixPath(paths.real(where)), table)
                found[device] = Filesystem(str(mounted.mountpoint) if mounted else "/", space.usage(where))
        except OSError:  # unreachable (a share gone offline): nothing to show
            continue
        entry = f"{what}: {path}"
        if entry not in found[device].holds:
            found[device].holds.append(entry)
    return list(found.values())


def document(config: Config) -> list[dict[str, object]]:
    """The filesystems part of the status document."""
    return [
        {
            "mountpoint": fs.mountpoint,
            "size": fs.usage.size,
            "used": fs.usage.used,
            "free": fs.usage.free,
            "used_percent": round(fs.usage.used_percent, 1),
            "holds": fs.holds,
        }
        for fs in filesystems(config)
    ]
