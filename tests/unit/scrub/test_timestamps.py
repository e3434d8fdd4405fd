"""When recorded times prove a file unchanged: more than a timestamp tick before the read."""

from __future__ import annotations

import os

from nasbox.limits import deletion_limit
from nasbox.scrub import timestamps

SECOND = 1_000_000_000


def stat_with(mtime_ns: int, ctime_ns: int) -> os.stat_result:
    return os.stat_result(
        (
            0o100644,
            1,
            1,
            1,
            0,
            0,
            10,
            0,
            mtime_ns // SECOND,
            ctime_ns // SECOND,
            0.0,
            mtime_ns / SECOND,
            ctime_ns / SECOND,
            0,
            mtime_ns,
            ctime_ns,
        )
    )


def test_nanosecond_times_settle_after_a_fine_tick() -> None:
    t = 1_700_000_000 * SECOND + 123_456_789
    assert timestamps.settled(stat_with(t, t), t + 60_000_000)
    assert not timestamps.settled(stat_with(t, t), t + 10_000_000)  # the same tick of the kernel's clock
    assert not timestamps.settled(stat_with(t - SECOND, t), t + 10_000_000)  # ctime counts too


def test_whole_second_times_need_seconds() -> None:
    t = 1_700_000_000 * SECOND
    assert not timestamps.settled(stat_with(t, t), t + 2 * SECOND)
    assert timestamps.settled(stat_with(t, t), t + 4 * SECOND)


def test_deletion_limit_is_shared_by_sync_and_scrub() -> None:
    assert (deletion_limit(None, 10), deletion_limit("30%", 10), deletion_limit(7, 10)) == (5, 3, 7)
