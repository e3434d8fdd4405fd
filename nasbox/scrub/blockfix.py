"""Rebuilding the few damaged slices of a large file from its recovery data, in about one read.

A PAR2 set cuts the file into slices d_0, d_1, ... of one size (the last one padded with
zeros) and gives slice i a base c_i in GF(2^16): the powers of 2 whose exponent is coprime
with 65535, in order. Recovery slice e holds R_e = sum_i c_i^e * d_i, each slice read as
16-bit little-endian words, the arithmetic that of GF(2^16). The sum is linear, so when
only the slices k in K of the file are damaged (d'_k in place of d_k), the recovery slices
par2 makes of the damaged file, R'_e, differ from the set's by

    R_e + R'_e = sum_{k in K} c_k^e * (d_k + d'_k)        (+ is XOR)

With |K| recovery slices that is a |K| x |K| linear system whose unknowns are the
differences d_k + d'_k, the same for every word of the slices: its inverse, a handful of
numbers, turns the |K| known differences of recovery slices into the |K| differences of
file slices. One pass of par2 create over the damaged file (the fast part: no copy, and
par2 reads the file once) plus a few multiplications of a slice by a number replace a copy
of the file and par2 repair's three reads of it.

The damaged slices are those whose CRC32 differs from the set's; every rebuilt slice must
match its MD5, else nothing is rebuilt and the caller repairs with par2 itself. nasbox
reads the damaged slices through the descriptor it holds; par2 reads the file by its path
in the user's directory, as it does to make new parity. It only reads there and writes in
a private directory, and a path swapped meanwhile (a link to another file, another file of
that name) gives recovery slices of another file: the slices rebuilt from them fail their
MD5, and nothing is rebuilt.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial

from nasbox import commands
from nasbox.scrub import par2, par2format

POLYNOMIAL = 0x1100B  # PAR2's GF(2^16) is the polynomials over GF(2) modulo this one
ORDER = 0xFFFF  # of the multiplicative group
READ_SIZE = 1 << 22  # reads cover whole slices of about this many bytes
THREADS = 2  # par2's for its pass over the file (hashing takes one, the recovery sums the other), and ours


# GF(2^16): exponents and logarithms of the generator 2.


@cache
def _tables() -> tuple[list[int], list[int]]:
    """(exp, log): exp twice over, so that exp[log a + log b] needs no modulo."""
    exp = [0] * (2 * ORDER)
    log = [0] * (ORDER + 1)
    value = 1
    for n in range(ORDER):
        exp[n] = exp[n + ORDER] = value
        log[value] = n
        value <<= 1
        if value & 0x10000:
            value ^= POLYNOMIAL
    return exp, log


def multiply(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    exp, log = _tables()
    return exp[log[a] + log[b]]


def inverse(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^16)")
    exp, log = _tables()
    return exp[(ORDER - log[a]) % ORDER]


def power(a: int, n: int) -> int:
    if n == 0:
        return 1
    if a == 0:
        return 0
    exp, log = _tables()
    return exp[log[a] * n % ORDER]


@cache
def _base_logs() -> list[int]:
    """The exponents of 2 that give the slices' bases: those coprime with 65535, in order."""
    return [n for n in range(1, ORDER) if math.gcd(n, ORDER) == 1]


def base(slice_number: int) -> int:
    """The constant PAR2 gives a slice of a single-file set."""
    return _tables()[0][_base_logs()[slice_number]]


def scale(data: bytes, factor: int) -> bytes:
    """factor * every 16-bit little-endian word of data (of even length).

    factor * w = factor * low(w) + factor * (high(w) << 8): four 256-entry tables, applied
    to the low and the high bytes with bytes.translate, so no word passes through Python."""
    low, high = data[0::2], data[1::2]
    of_low = [multiply(factor, x) for x in range(256)]
    of_high = [multiply(factor, x << 8) for x in range(256)]
    out = bytearray(len(data))
    out[0::2] = xor(low.translate(_bytes_of(of_low, 0)), high.translate(_bytes_of(of_high, 0)))
    out[1::2] = xor(low.translate(_bytes_of(of_low, 8)), high.translate(_bytes_of(of_high, 8)))
    return bytes(out)


def _bytes_of(words: list[int], shift: int) -> bytes:
    return bytes((word >> shift) & 0xFF for word in words)


def xor(a: bytes | memoryview, b: bytes | memoryview) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def invert(matrix: list[list[int]]) -> list[list[int]] | None:
    """The inverse of a square matrix over GF(2^16) (Gauss-Jordan); None when singular."""
    size = len(matrix)
    rows = [row[:] + [int(i == j) for j in range(size)] for i, row in enumerate(matrix)]
    for column in range(size):
        pivot = next((r for r in range(column, size) if rows[r][column]), None)
        if pivot is None:
            return None
        rows[column], rows[pivot] = rows[pivot], rows[column]
        factor = inverse(rows[column][column])
        rows[column] = [multiply(factor, x) for x in rows[column]]
        for r in range(size):
            if r != column and rows[r][column]:
                f = rows[r][column]
                rows[r] = [x ^ multiply(f, y) for x, y in zip(rows[r], rows[column], strict=True)]
    return [row[size:] for row in rows]


# The parity set.


@dataclass(frozen=True)
class SliceSum:
    md5: bytes
    crc32: int


@dataclass(frozen=True)
class SingleFileSet:
    set_id: bytes
    slice_size: int
    length: int  # of the file
    sums: list[SliceSum]  # per slice


def single_file_set(found: list[par2format.Packet]) -> SingleFileSet | None:
    """The layout of a set protecting one file, from its intact packets; None otherwise."""
    main = next((p for p in found if p.type == par2format.MAIN and _intact(p)), None)
    if main is None or len(main.body) != 12 + 16:  # slice size, file count, one file id
        return None
    slice_size, count = struct.unpack_from("<QI", main.body)
    file_id = main.body[12:28]
    if count != 1 or slice_size == 0 or slice_size % 4:
        return None
    description = _packet_of(found, par2format.FILE_DESC, main.set_id, file_id)
    checksums = _packet_of(found, par2format.SLICE_CHECKSUMS, main.set_id, file_id)
    if description is None or checksums is None:
        return None
    length = par2format.file_description([description]).length
    sums = [SliceSum(md5, crc) for md5, crc in struct.iter_unpack("<16sI", checksums.body[16:])]
    if len(sums) != -(-length // slice_size):
        return None
    return SingleFileSet(main.set_id, slice_size, length, sums)


def _packet_of(found: list[par2format.Packet], kind: bytes, set_id: bytes, file_id: bytes) -> par2format.Packet | None:
    """The first intact packet of this kind about this file (its body starts with the file id)."""
    return next(
        (p for p in found if p.type == kind and p.set_id == set_id and p.body[:16] == file_id and _intact(p)), None
    )


def _intact(packet: par2format.Packet) -> bool:
    """Whether a packet passes its own MD5 (whoever read it)."""
    try:
        return len(list(par2format.packets(packet.raw))) == 1
    except par2format.DamagedParity:
        return False


def _slices(fd: int, layout: SingleFileSet, numbers: list[int]) -> Iterator[tuple[int, bytes]]:
    """(number, bytes) of these slices of the file, the last one padded with zeros."""
    for i in numbers:
        yield i, pread_all(fd, layout.slice_size, i * layout.slice_size).ljust(layout.slice_size, b"\0")


def pread_all(fd: int, count: int, offset: int) -> bytes:
    parts = []
    while count > 0 and (data := os.pread(fd, count, offset)):
        parts.append(data)
        count, offset = count - len(data), offset + len(data)
    return b"".join(parts)


def damaged_slices(fd: int, index: list[par2format.Packet]) -> list[int] | None:
    """Slice numbers of the file (read through fd, from offset 0, with pread) whose checksums
    differ from the set's IFSC packet; None when the set is not a single-file set or the
    file's length differs from the FileDesc length.

    The CRC32s alone are compared: several times faster than the MD5s, they miss one damaged
    slice in 2^32, and rebuild_slices confirms with the MD5s (a damaged slice missing from
    its list makes every slice it rebuilds fail its MD5)."""
    layout = single_file_set(index)
    if layout is None or os.fstat(fd).st_size != layout.length:
        return None
    per_read = max(1, READ_SIZE // layout.slice_size)
    with ThreadPoolExecutor(THREADS) as pool:  # pread and zlib let the other thread run
        found = pool.map(partial(_damaged_among, fd, layout, per_read), range(0, len(layout.sums), per_read))
        return [i for among in found for i in among]


def _damaged_among(fd: int, layout: SingleFileSet, count: int, first: int) -> list[int]:
    """The slices first..first+count-1 whose CRC32 differs from the set's."""
    size = layout.slice_size
    data = memoryview(pread_all(fd, size * count, first * size))
    damaged = []
    for i in range(first, min(first + count, len(layout.sums))):
        part = data[(i - first) * size : (i - first + 1) * size]
        crc = zlib.crc32(part)
        if len(part) < size:  # the last slice, padded with zeros
            crc = zlib.crc32(bytes(size - len(part)), crc)
        if crc != layout.sums[i].crc32:
            damaged.append(i)
    return damaged


def holds_the_set(fd: int, layout: SingleFileSet) -> bool:
    """Whether every slice of the file (read through fd) has the MD5 the set records for it,
    and the file the set's length: the whole content the set describes, proven in both
    threads (one MD5 over the whole file would take one)."""
    if os.fstat(fd).st_size != layout.length:
        return False
    per_read = max(1, READ_SIZE // layout.slice_size)
    with ThreadPoolExecutor(THREADS) as pool:
        return all(pool.map(partial(_match_among, fd, layout, per_read), range(0, len(layout.sums), per_read)))


def _match_among(fd: int, layout: SingleFileSet, count: int, first: int) -> bool:
    size = layout.slice_size
    data = memoryview(pread_all(fd, size * count, first * size))
    for i in range(first, min(first + count, len(layout.sums))):
        part = data[(i - first) * size : (i - first + 1) * size]
        digest = hashlib.md5(part)
        if len(part) < size:
            digest.update(bytes(size - len(part)))
        if digest.digest() != layout.sums[i].md5:
            return False
    return True


def rebuild_slices(
    fd: int,
    path: tuple[bytes, bytes],
    packets: list[par2format.Packet],
    slices: list[int],
    work: bytes,
    inherit: tuple[int, ...] = (),
) -> dict[int, bytes] | None:
    """The correct bytes of each damaged slice (the last one trimmed to the file's length),
    each checked against its IFSC MD5; None when they cannot be rebuilt this way (too few
    intact recovery slices, par2 failed, a result that does not check): the caller falls back
    to par2 repair. path: (directory, the file's path under it) where par2 reads the file fd
    holds. packets: those of the index and recovery files together. work: an empty
    private directory par2 may write in. inherit: descriptors par2 must keep (nasbox passes
    its lock)."""
    layout = single_file_set(packets)
    if layout is None or not all(0 <= k < len(layout.sums) for k in slices):
        return None
    if not slices:
        return {}
    recovery = _first_intact(_recovery_slices(packets, layout.set_id, layout.slice_size), len(slices))
    exponents = sorted(recovery)
    if len(exponents) < len(slices):
        return None
    solution = invert([[power(base(k), e) for k in slices] for e in exponents])
    if solution is None:
        return None
    made = _recovery_of_damaged(path, layout.slice_size, exponents, work, inherit)
    if made is None:
        return None
    differences = [xor(recovery[e], made[e]) for e in exponents]
    rebuilt = {}
    for row, (k, damaged) in zip(solution, _slices(fd, layout, slices), strict=True):
        data = damaged
        for factor, difference in zip(row, differences, strict=True):
            data = xor(data, scale(difference, factor))
        if hashlib.md5(data).digest() != layout.sums[k].md5:
            return None
        rebuilt[k] = data[: layout.length - k * layout.slice_size]
    return rebuilt


def _recovery_slices(found: list[par2format.Packet], set_id: bytes, slice_size: int) -> dict[int, par2format.Packet]:
    """{exponent: packet} of the set's recovery slices, not yet checked."""
    slices = {}
    for packet in found:
        if packet.type == par2format.RECOVERY_SLICE and packet.set_id == set_id:
            (exponent,) = struct.unpack_from("<I", packet.raw, par2format.HEADER.size)
            if len(packet.raw) == par2format.HEADER.size + 4 + slice_size:
                slices[exponent] = packet
    return slices


def _first_intact(recovery: dict[int, par2format.Packet], count: int) -> dict[int, memoryview]:
    """{exponent: data} of the count intact recovery slices of lowest exponents (or fewer)."""
    chosen: dict[int, memoryview] = {}
    for exponent in sorted(recovery):
        if len(chosen) == count:
            break
        if _intact(recovery[exponent]):
            chosen[exponent] = _slice_data(recovery[exponent])
    return chosen


def _slice_data(packet: par2format.Packet) -> memoryview:
    """A recovery slice packet's data: its body after the exponent."""
    return memoryview(packet.raw)[par2format.HEADER.size + 4 :]


def _recovery_of_damaged(
    path: tuple[bytes, bytes], slice_size: int, exponents: list[int], work: bytes, inherit: tuple[int, ...]
) -> dict[int, memoryview] | None:
    """{exponent: data} of the recovery slices par2 makes of the file at path as it is now."""
    base, relative = path
    first = exponents[0]
    try:
        argv = par2.recovery_of(
            base, os.path.join(base, relative), work, slice_size, first, exponents[-1] - first + 1, THREADS
        )
    except ValueError:  # a path par2 would misread
        return None
    result = commands.run(argv, check=False, timeout=None, cwd=work, pass_fds=inherit)
    if result.returncode != 0:
        return None
    made: list[par2format.Packet] = []
    for name in os.listdir(work):
        if name.endswith(b".par2"):
            try:
                made += par2format.read_packets(os.path.join(work, name))
            except par2format.DamagedParity:
                return None
    layout = single_file_set(made)
    if layout is None or layout.slice_size != slice_size:
        return None
    found = _recovery_slices(made, layout.set_id, slice_size)  # read_packets checked them
    if not all(e in found for e in exponents):
        return None
    return {e: _slice_data(found[e]) for e in exponents}
