"""When a file's recorded size, mtime and ctime prove that its content has not changed.

An edit changes the size or stamps mtime and ctime with the filesystem's clock, which moves
in ticks (a few milliseconds with nanosecond timestamps, a second or two on filesystems
with whole-second ones). An edit in the same tick as the moment nasbox read the file leaves
the times it recorded as they were, so a recording is trusted ("settled") only when the
file's times lie more than a tick before the read began. A settled file whose content no
longer matches is corruption; an unsettled one is hashed again and a mismatch is an edit.

An mtime later than the clock (a device or an archive with a wrong clock, `touch -d`) was
set, not stamped by a write: a write would stamp the clock's time and so change it. It says
nothing of when the content last changed; ctime, which the kernel alone sets, does.
"""

from __future__ import annotations

import os
import time

FINE_TICK_NS = 50_000_000  # nanosecond timestamps: the kernel's coarse clock, 1/HZ (at most 10 ms), with room
COARSE_TICK_NS = 3_000_000_000  # whole-second timestamps; FAT's are 2 s apart


def tick_ns(mtime_ns: int, ctime_ns: int) -> int:
    """The timestamp granularity a file's times suggest: both on a whole second means a
    filesystem that keeps no fractions (by chance otherwise: one time in a billion)."""
    whole_seconds = mtime_ns % 1_000_000_000 == 0 and ctime_ns % 1_000_000_000 == 0
    return COARSE_TICK_NS if whole_seconds else FINE_TICK_NS


def settled_at(mtime_ns: int, ctime_ns: int, now_ns: int | None = None) -> int:
    """From this moment (time.time_ns()), a read of the file is settled; an mtime more than a
    tick after now_ns (by default, the present) is left out."""
    tick = tick_ns(mtime_ns, ctime_ns)
    now_ns = time.time_ns() if now_ns is None else now_ns
    return (ctime_ns if mtime_ns > now_ns + tick else max(mtime_ns, ctime_ns)) + tick


def settled(st: os.stat_result, read_started_ns: int) -> bool:
    """Whether an edit made after read_started_ns would show in st's size, mtime or ctime."""
    if max(st.st_mtime_ns, st.st_ctime_ns) + COARSE_TICK_NS < read_started_ns:
        return True  # most files: older than the coarsest tick, whatever it is (settled_at says so too)
    return settled_at(st.st_mtime_ns, st.st_ctime_ns, read_started_ns) < read_started_ns
