"""Parity sets: which files share one, and where they live.

A parity set is one par2 recovery set: an index file `<id>.par2` (every file's description
and slice checksums) and one recovery file `<id>.vol<first>+<count>.par2` (the recovery
slices only; see nasbox.scrub.par2format.strip), in <DATABASE>/.nasbox-scrub/sets/<id[:2]>/.
Stock par2 verifies and repairs a set on its own:

    par2 repair -B DIRECTORY DATABASE/.nasbox-scrub/sets/ab/ab....par2

A file of LARGE bytes or more has a set of its own, sized by nasbox.scrub.par2.sizing. Smaller
files share sets, so that a tree of small files costs parity in proportion to its bytes, not
its files: files of a similar size (one SIZE_CLASSES row: each file is padded to whole
slices, and a set repairs as many damaged slices as it has recovery slices, so slices are
small beside the files) are packed in the order the walk
finds them, up to MAX_SLICES slices (the Reed-Solomon work per byte grows with the recovery
slices of a set), MAX_SET_BYTES (what an edit of one member costs: the set is checked and
made again) and MAX_ARGUMENT_BYTES of paths (par2 takes them on its command line).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from nasbox.scrub import par2
from nasbox.scrub.catalog import Entry

KIB, MIB = 1 << 10, 1 << 20
LARGE = 1 * MIB
# (files smaller than this, slice size)
SIZE_CLASSES = ((256 * KIB, 4 * KIB), (LARGE, 16 * KIB))
MAX_SLICES = 2048
MAX_SET_BYTES = 32 * MIB
MAX_ARGUMENT_BYTES = 256 * KIB  # well under Linux's 2 MiB for arguments and environment
# What par2 writes beside the recovery data: per file, its description and name (about 250
# bytes, which par2 also repeats in the recovery file until strip) and 20 bytes of checksums
# per slice; per recovery slice a packet header; per set the main and creator packets, and a
# filesystem block for each of its two files and its staging directory.
FILE_OVERHEAD = 2 * 250
SLICE_CHECKSUM = 2 * 20
RECOVERY_HEADER = 68
SET_OVERHEAD = 3 * 4 * KIB
SETS = b"sets"  # in the private folder
INDEX_SUFFIX = b".par2"


def new_id() -> bytes:
    return uuid.uuid4().hex.encode()


def set_dir(private: bytes, set_id: bytes) -> bytes:
    return os.path.join(private, SETS, set_id[:2])


def set_files(private: bytes, set_id: bytes, volumes: tuple[bytes, ...]) -> list[bytes]:
    """The set's index file first, then its recovery files."""
    where = set_dir(private, set_id)
    return [os.path.join(where, set_id + INDEX_SUFFIX), *(os.path.join(where, v) for v in volumes)]


def slice_size_for(size: int) -> int | None:
    """The slice size of the shared sets a file of size bytes goes in; None: a set of its own."""
    for below, slice_size in SIZE_CLASSES:
        if size < below:
            return slice_size
    return None


def recovery_slices(source_slices: int, redundancy: int) -> int:
    return max(1, math.ceil(source_slices * redundancy / 100))


def shape(members: Sequence[Candidate], slice_size: int | None, redundancy: int) -> tuple[int, int, int]:
    """(slice size, source slices, recovery slices) of a set of members; slice_size None: a
    set of its own for one file, sized by par2.sizing."""
    if slice_size is None:
        slice_size, recovery = par2.sizing(members[0].st.st_size, redundancy)
        return slice_size, -(-members[0].st.st_size // slice_size), recovery
    slices = sum(max(1, -(-m.st.st_size // slice_size)) for m in members)
    return slice_size, slices, recovery_slices(slices, redundancy)


def parity_bytes(plan: Plan, redundancy: int) -> int:
    """About what making plan's set writes in DATABASE at most (before strip drops the
    descriptions repeated in its recovery file)."""
    slice_size, slices, recovery = shape(plan.members, plan.slice_size, redundancy)
    return (
        recovery * (slice_size + RECOVERY_HEADER)
        + slices * SLICE_CHECKSUM
        + sum(FILE_OVERHEAD + len(m.relative) for m in plan.members)
        + SET_OVERHEAD
    )


@dataclass(frozen=True)
class Candidate:
    """A file to give parity: its path, what the walk saw, and the row it had (if any)."""

    dir: bytes
    name: bytes
    st: os.stat_result
    old: Entry | None
    reason: str | None  # the counter it goes to once it has parity (new, updated); None: none
    # The MD5 its content must have (its row's, for a file as recorded): par2 finding other
    # content leaves it out of the set, so a corrupt file is never blessed.
    expected: bytes | None = None

    @property
    def relative(self) -> bytes:
        return os.path.join(self.dir, self.name)


@dataclass
class Bucket:
    slice_size: int
    members: list[Candidate] = field(default_factory=list)
    slices: int = 0
    nbytes: int = 0
    argument_bytes: int = 0

    def fits(self, candidate: Candidate) -> bool:
        slices = max(1, -(-candidate.st.st_size // self.slice_size))
        return not self.members or (
            self.slices + slices <= MAX_SLICES
            and self.nbytes + candidate.st.st_size <= MAX_SET_BYTES
            and self.argument_bytes + len(candidate.relative) + 1 <= MAX_ARGUMENT_BYTES
        )

    def add(self, candidate: Candidate) -> None:
        self.members.append(candidate)
        self.slices += max(1, -(-candidate.st.st_size // self.slice_size))
        self.nbytes += candidate.st.st_size
        self.argument_bytes += len(candidate.relative) + 1


@dataclass(frozen=True)
class Plan:
    """The files of one set to make, and its slice size (None: par2.sizing for one file)."""

    members: tuple[Candidate, ...]
    slice_size: int | None


class Packer:
    """Groups the files that need parity into sets as they come; add() yields each set as it
    fills, flush() the rest."""

    def __init__(self) -> None:
        self.buckets: dict[int, Bucket] = {}

    def add(self, candidate: Candidate) -> Iterator[Plan]:
        slice_size = slice_size_for(candidate.st.st_size)
        if slice_size is None:
            yield Plan((candidate,), None)
            return
        bucket = self.buckets.setdefault(slice_size, Bucket(slice_size))
        if not bucket.fits(candidate):
            yield Plan(tuple(bucket.members), slice_size)
            bucket = self.buckets[slice_size] = Bucket(slice_size)
        bucket.add(candidate)

    def queued(self) -> set[bytes]:
        """The files waiting in a set not yet full."""
        return {m.relative for bucket in self.buckets.values() for m in bucket.members}

    def flush(self) -> Iterator[Plan]:
        for slice_size, bucket in sorted(self.buckets.items()):
            if bucket.members:
                yield Plan(tuple(bucket.members), slice_size)
        self.buckets.clear()
