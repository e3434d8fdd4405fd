"""What a backup of a directory leaves out (a sync's rsync, an offsite job's restic), and
whether a directory holds anything else: an empty source is a disk that did not mount."""

from __future__ import annotations

import os
from pathlib import Path

from nasbox import paths, state
from nasbox.config.model import Config
from nasbox.samba import recycle
from nasbox.versions.store import VERSIONS_DIR


def not_data(config: Config, roots: list[str], state_dir: Path) -> list[str]:
    """What lies inside the roots (resolved) but is not data to back up: parity databases of
    scrub jobs, versions, the shares' recycle bins, nasbox's own state, wherever they are
    reached from (through a link, a bind mount); relative to the root they lie in."""
    candidates = [job.database for job in config.scrub.values()] + recycle.folders(config)
    candidates += [str(state.state_dir()), str(state.log_dir()), str(state_dir)]
    table = paths.mount_table()
    found = {paths.below(p, root, table) for p in candidates for root in roots}
    found.add(VERSIONS_DIR)  # by name, wherever it leads: a link there is never followed
    return sorted(relative for relative in found if relative not in (None, "."))


def has_entries(directory: str, ignore: set[str]) -> bool:
    return any(name not in ignore for name in os.listdir(directory))
