"""The job kinds nasbox knows, in the order the scheduler prefers when runs are due together
(a sync before the scrub of its destination, both before the offsite backup of it). Adding a
kind: its package, and one line here."""

from __future__ import annotations

from nasbox.jobkind import JobKind
from nasbox.offsite.kind import KIND as OFFSITE
from nasbox.scrub.kind import KIND as SCRUB
from nasbox.sync.kind import KIND as SYNC

KINDS: dict[str, JobKind] = {kind.name: kind for kind in (SYNC, SCRUB, OFFSITE)}
