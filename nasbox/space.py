"""Free space: what a filesystem has, and whether an operation may write what it needs there.

A job's `min_free` is what its writes must leave free on the filesystem they go to: a size
(`10G`, `500M`, `1T`, or bytes as an integer) or a percentage of the filesystem (`5%`).
Unset, it is the smaller of DEFAULT_PERCENT of the filesystem and DEFAULT_BYTES: 10 GiB on
a large backup disk (0.25% of 4 TB), 3.2 MiB on a 64 MiB one. Free means what unprivileged
writers may still use (statvfs f_bavail), so ext4's reserve for root stays on top.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nasbox.progress import human_bytes

DEFAULT_PERCENT = 5
DEFAULT_BYTES = 10 << 30
EXPECTED = (
    "a size such as 10G, 500M or 1T (K, M, G, T, P: powers of 1024), bytes as an integer, "
    "or a percentage below 100% such as 5%"
)
SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTP]?)$", re.IGNORECASE)
PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
UNITS = "KMGTP"


@dataclass(frozen=True)
class MinFree:
    """What to leave free: a size, a percentage of the filesystem, or the smaller of both."""

    size: int | None = None
    percent: float | None = None

    def of(self, total: int) -> int:
        """In bytes, on a filesystem of total bytes."""
        candidates = [self.size] if self.size is not None else []
        if self.percent is not None:
            candidates.append(int(total * self.percent / 100))
        return min(candidates)

    def __str__(self) -> str:
        if self.size is not None and self.percent is not None:
            return f"the smaller of {self.percent:g}% and {human_bytes(self.size)}"
        return f"{self.percent:g}%" if self.percent is not None else human_bytes(self.size or 0)


DEFAULT_MIN_FREE = MinFree(size=DEFAULT_BYTES, percent=DEFAULT_PERCENT)


def parse_min_free(value: int | str | None) -> MinFree:
    """A min_free value as configured (None: the default); ValueError(what is expected)."""
    if value is None:
        return DEFAULT_MIN_FREE
    if isinstance(value, bool):  # a bool is an int to Python, never a size
        raise ValueError(EXPECTED)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(EXPECTED)
        return MinFree(size=value)
    text = value.strip()
    if percent := PERCENT.match(text):
        number = float(percent.group(1))
        if number >= 100:
            raise ValueError(EXPECTED)
        return MinFree(percent=number)
    if size := SIZE.match(text):
        unit = size.group(2).upper()
        return MinFree(size=int(float(size.group(1)) * 1024 ** (UNITS.index(unit) + 1 if unit else 0)))
    raise ValueError(EXPECTED)


def min_free_problem(value: int | str | None) -> str | None:
    """For configuration checks: what is wrong with a min_free value, or None."""
    try:
        parse_min_free(value)
    except ValueError as e:
        return f"expected {e}, got {value!r}"
    return None


@dataclass(frozen=True)
class Usage:
    """One filesystem's space, as df shows it."""

    size: int
    used: int
    free: int  # what unprivileged writers may still use
    inodes_free: int | None  # None: the filesystem has no fixed number of inodes (btrfs)

    @property
    def used_percent(self) -> float:
        """Used of what users may use (df's Use%): the root reserve does not count as free."""
        usable = self.used + self.free
        return 100.0 * self.used / usable if usable else 0.0


def existing(path: str) -> str:
    """path, or its nearest ancestor that exists: where a path not made yet will be."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and path != os.path.dirname(path):
        path = os.path.dirname(path)
    return path


def usage(path: str) -> Usage:
    st = os.statvfs(existing(path))
    return Usage(
        size=st.f_blocks * st.f_frsize,
        used=(st.f_blocks - st.f_bfree) * st.f_frsize,
        free=st.f_bavail * st.f_frsize,
        inodes_free=st.f_favail if st.f_files else None,
    )


def shortfall(path: str, needed: int, min_free: int | str | None, inodes: int = 0) -> str | None:
    """None when writing about needed bytes (and inodes new files and directories) into the
    filesystem holding path still leaves min_free free; else why not, in one line."""
    now = usage(path)
    rule = parse_min_free(min_free)
    keep = rule.of(now.size)
    if now.inodes_free is not None and inodes > now.inodes_free:
        return (
            f"not enough space for {path}: it needs about {inodes} new files and directories, "
            f"and its filesystem has {now.inodes_free} inodes free"
        )
    if now.free - needed >= keep:
        return None
    return (
        f"not enough space for {path}: it needs about {human_bytes(needed)}, {human_bytes(now.free)} is free, "
        f"and min_free ({rule}) keeps {human_bytes(keep)} free"
    )


class Budget:
    """The space of one filesystem shared by writes that run at the same time: each claims its
    estimate before it writes and is checked with the claims still in flight, which the free
    space does not show yet (or shows in part: a claim counts whole until its write ends, so
    the check errs on the side of room)."""

    def __init__(self, path: str, min_free: int | str | None):
        self.path = path
        self.min_free = min_free
        self.lock = threading.Lock()
        self.claimed = 0
        self.claimed_inodes = 0

    @contextmanager
    def claim(self, needed: int, inodes: int = 0) -> Iterator[str | None]:
        """Yields None while the claim holds (the caller writes), or why there is no room."""
        with self.lock:
            short = shortfall(self.path, self.claimed + needed, self.min_free, self.claimed_inodes + inodes)
            if short is None:
                self.claimed += needed
                self.claimed_inodes += inodes
        try:
            yield short
        finally:
            if short is None:
                with self.lock:
                    self.claimed -= needed
                    self.claimed_inodes -= inodes
