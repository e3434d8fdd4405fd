"""Which versions a share shows as Windows "Previous Versions" (Samba's shadow_copy2).

A share shows the versions of a sync job with versions when its folder is the job's SOURCE or
DESTINATION or lies inside either: each version is the destination as it was, so the share's
folder is found in every version at its place below that root. Where several jobs qualify,
the one whose root is nearest the share wins (the fewest folders between them), then the
first job by name. A share that only holds a root (a parent of it) shows none: shadow_copy2
maps one share to one tree of versions, and only part of this share has versions. A share
inside the versions directory itself serves the versions as they are and shows none either.

Places are compared by nasbox's one rule (nasbox.paths): through symlinks and second mounts.
The rendering then tells Samba where the share's folder is inside a version
(shadow:snapsharepath) rather than letting it work that out from text prefixes of paths,
which a symlink or a bind mount would make wrong. Samba reads the versions through the job's
read-only view (nasbox.samba.version_views).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from nasbox import paths
from nasbox.config.model import Config, Share
from nasbox.mounttable import Mounted, mount_table
from nasbox.samba.version_views import view
from nasbox.versions.store import VERSIONS_DIR


@dataclass(frozen=True)
class ShownVersions:
    job: str  # the sync job whose versions the share shows
    snapdir: str  # where Samba reads the job's versions: its read-only view
    inside: str  # the share's folder inside each version ("." for a version's top)


def shown_versions(share: Share, config: Config, table: list[Mounted] | None = None) -> ShownVersions | None:
    """The versions the share shows, or None. A Time Machine share shows none: each user
    sees a folder of their own, and Time Machine keeps its own versions."""
    if share.time_machine:
        return None
    table = mount_table() if table is None else table
    candidates: list[tuple[int, str, ShownVersions]] = []
    for job in config.sync.values():
        if not job.versions:
            continue
        for root in (job.source, job.destination):
            where = paths.below(share.path, root, table)
            if where is None:
                continue
            parts = PurePosixPath(where).parts
            if root == job.destination and parts[:1] == (VERSIONS_DIR,):
                continue
            candidates.append((len(parts), job.name, ShownVersions(job.name, str(view(job.name)), where)))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[:2])[2]


def shown_jobs(config: Config) -> set[str]:
    """The sync jobs whose versions some share shows."""
    table = mount_table()
    return {shown.job for share in config.shares.values() if (shown := shown_versions(share, config, table))}
