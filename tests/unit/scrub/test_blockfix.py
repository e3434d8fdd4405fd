"""Rebuilding damaged slices from recovery data, against parity made by the real par2."""

from __future__ import annotations

import os
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from nasbox import commands
from nasbox.scrub import blockfix, par2, par2format

MIB = 1 << 20


@dataclass
class Protected:
    path: Path
    data: bytes  # the file's original contents
    index: list[par2format.Packet]
    packets: list[par2format.Packet]  # of the index and the recovery file
    volume: Path
    slice_size: int
    recovery: int  # recovery slices in the set


def protect(tmp_path: Path, size: int, redundancy: int = 5, seed: int = 1) -> Protected:
    """A random file with parity made as nasbox makes a large file's set: par2.create with
    par2.sizing, then its recovery file stripped."""
    data = random.Random(seed).randbytes(size)
    path = tmp_path / "data" / "file"
    path.parent.mkdir()
    path.write_bytes(data)
    parity = tmp_path / "parity"
    parity.mkdir()
    slice_size, recovery = par2.sizing(size, redundancy)
    argv = par2.create(bytes(path.parent), b"file.par2", [bytes(path)], slice_size, recovery, 1)
    commands.run(argv, timeout=None, cwd=bytes(parity))
    (volume,) = parity.glob("file.vol*.par2")
    par2format.strip(bytes(volume))
    index = par2format.read_packets(bytes(parity / "file.par2"))
    packets = index + par2format.read_packets(bytes(volume))
    return Protected(path, data, index, packets, volume, slice_size, recovery)


def damage(protected: Protected, slices: list[int]) -> None:
    """Flip a byte in each of these slices (inside the file: the last one may be short)."""
    with open(protected.path, "r+b") as f:
        for k in slices:
            start = k * protected.slice_size
            offset = start + random.Random(k).randrange(min(protected.slice_size, len(protected.data) - start))
            f.seek(offset)
            f.write(bytes([protected.data[offset] ^ 0x5A]))


def original(protected: Protected, k: int) -> bytes:
    return protected.data[k * protected.slice_size : (k + 1) * protected.slice_size]


@pytest.fixture
def work(tmp_path: Path) -> bytes:
    path = tmp_path / "work"
    path.mkdir(mode=0o700)
    return bytes(path)


def where(protected: Protected) -> tuple[bytes, bytes]:
    """(directory, relative path) where par2 reads the protected file."""
    return bytes(protected.path.parent), protected.path.name.encode()


def rebuild(
    protected: Protected, work: bytes, packets: list[par2format.Packet] | None = None
) -> dict[int, bytes] | None:
    fd = os.open(protected.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        slices = blockfix.damaged_slices(fd, protected.index)
        assert slices is not None
        return blockfix.rebuild_slices(
            fd, where(protected), protected.packets if packets is None else packets, slices, work
        )
    finally:
        os.close(fd)


# GF(2^16), against a definition of its own: carry-less multiplication modulo the polynomial.


def reference_multiply(a: int, b: int) -> int:
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0x10000:
            a ^= 0x1100B
    return product


def test_multiplication_matches_the_field_definition() -> None:
    pick = random.Random(7)
    for _ in range(2000):
        a, b = pick.randrange(1 << 16), pick.randrange(1 << 16)
        assert blockfix.multiply(a, b) == reference_multiply(a, b)


def test_every_nonzero_element_has_its_inverse() -> None:
    assert all(blockfix.multiply(a, blockfix.inverse(a)) == 1 for a in range(1, 1 << 16))
    with pytest.raises(ZeroDivisionError):
        blockfix.inverse(0)


def test_multiplication_distributes_over_addition_and_powers_multiply() -> None:
    pick = random.Random(8)
    for _ in range(2000):
        a, b, c = (pick.randrange(1 << 16) for _ in range(3))
        assert blockfix.multiply(a, b ^ c) == blockfix.multiply(a, b) ^ blockfix.multiply(a, c)
        assert blockfix.power(a, 3) == blockfix.multiply(a, blockfix.multiply(a, a))
    assert blockfix.power(2, 0xFFFF) == 1 and blockfix.power(2, 0xFFFF // 3) != 1  # 2 generates the group


def test_scaling_a_slice_multiplies_each_little_endian_word() -> None:
    data = random.Random(9).randbytes(4096)
    for factor in (0, 1, 2, 0x8000, 0xFFFF, 12345):
        words = struct.unpack(f"<{len(data) // 2}H", data)
        expected = struct.pack(f"<{len(words)}H", *(reference_multiply(factor, w) for w in words))
        assert blockfix.scale(data, factor) == expected


def test_inverting_a_matrix_and_a_singular_one() -> None:
    matrix = [[blockfix.power(blockfix.base(k), e) for k in (0, 3, 7)] for e in (0, 1, 2)]
    inverse = blockfix.invert(matrix)
    assert inverse is not None
    for i in range(3):
        for j in range(3):
            entry = 0
            for m in range(3):
                entry ^= blockfix.multiply(matrix[i][m], inverse[m][j])
            assert entry == int(i == j)
    assert blockfix.invert([[1, 2], [1, 2]]) is None


def test_recovery_slices_are_the_sums_par2_makes(tmp_path: Path) -> None:
    """Every recovery slice par2 wrote is sum_i base(i)^e * slice_i, the last slice padded:
    the bases, the exponents and the byte order are those of par2."""
    protected = protect(tmp_path, 200_003, redundancy=50)
    size = protected.slice_size
    slices = [protected.data[i : i + size].ljust(size, b"\0") for i in range(0, len(protected.data), size)]
    found = {
        struct.unpack_from("<I", p.body)[0]: p.body[4:]
        for p in protected.packets
        if p.type == par2format.RECOVERY_SLICE
    }
    assert len(slices) > 10 and sorted(found) == list(range(protected.recovery)) and protected.recovery > 3
    for exponent, made in found.items():
        expected = bytes(size)
        for i, data in enumerate(slices):
            expected = blockfix.xor(expected, blockfix.scale(data, blockfix.power(blockfix.base(i), exponent)))
        assert made == expected, exponent


# Damaged slices, found and rebuilt.


@pytest.mark.parametrize(
    "size, damaged",
    [
        (3 * MIB, [17]),
        (3 * MIB, [0, 150]),
        (3 * MIB, [5, 6, 199]),
        (3 * MIB + 1234, [198, 199]),  # the last slice is short: par2 pads it with zeros
        (3 * MIB + 1234, [3, 100, 150, 199]),
    ],
)
def test_damaged_slices_are_found_and_rebuilt_exactly(
    tmp_path: Path, work: bytes, size: int, damaged: list[int]
) -> None:
    protected = protect(tmp_path, size)
    assert protected.recovery >= len(damaged)
    damage(protected, damaged)
    fd = os.open(protected.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert blockfix.damaged_slices(fd, protected.index) == damaged
        rebuilt = blockfix.rebuild_slices(fd, where(protected), protected.packets, damaged, work)
    finally:
        os.close(fd)
    assert rebuilt == {k: original(protected, k) for k in damaged}
    assert protected.path.read_bytes() != protected.data  # rebuilding never writes the file


def test_an_intact_file_has_no_damaged_slices(tmp_path: Path, work: bytes) -> None:
    protected = protect(tmp_path, MIB + 8)
    fd = os.open(protected.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert blockfix.damaged_slices(fd, protected.index) == []
        assert blockfix.rebuild_slices(fd, where(protected), protected.packets, [], work) == {}
    finally:
        os.close(fd)


def test_more_damaged_slices_than_recovery_slices_are_not_rebuilt(tmp_path: Path, work: bytes) -> None:
    protected = protect(tmp_path, 3 * MIB)
    damage(protected, list(range(protected.recovery + 1)))
    assert rebuild(protected, work) is None


def test_slices_missing_from_the_list_make_the_result_fail_its_check(tmp_path: Path, work: bytes) -> None:
    protected = protect(tmp_path, 3 * MIB)
    damage(protected, [10, 20])
    fd = os.open(protected.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert blockfix.rebuild_slices(fd, where(protected), protected.packets, [10], work) is None
    finally:
        os.close(fd)


def with_same_crc32(data: bytes, offset: int, window: int) -> bytes:
    """data with its byte at offset changed, and the 4 bytes at window changed so that its
    CRC32 is unchanged: the CRC is linear over GF(2), and any 32 bits in a row can cancel
    any change."""
    zeros = zlib.crc32(bytes(len(data)))

    def effect(byte: int, bit: int) -> int:
        change = bytearray(len(data))
        change[byte] = 1 << bit
        return zlib.crc32(change) ^ zeros

    basis: list[tuple[int, int]] = []  # (effect, the window's bits giving it), highest bit first
    for bit in range(32):
        vector, mask = effect(window + bit // 8, bit % 8), 1 << bit
        for known, known_mask in basis:
            if vector ^ known < vector:
                vector, mask = vector ^ known, mask ^ known_mask
        basis = sorted([*basis, (vector, mask)], reverse=True)
    target, mask = effect(offset, 0), 0
    for known, known_mask in basis:
        if target ^ known < target:
            target, mask = target ^ known, mask ^ known_mask
    assert target == 0
    changed = bytearray(data)
    changed[offset] ^= 1
    for bit in range(32):
        if mask >> bit & 1:
            changed[window + bit // 8] ^= 1 << (bit % 8)
    assert zlib.crc32(changed) == zlib.crc32(data) and changed != data
    return bytes(changed)


def test_a_damaged_slice_whose_crc32_matches_is_never_rebuilt_wrongly(tmp_path: Path, work: bytes) -> None:
    protected = protect(tmp_path, 3 * MIB)
    damage(protected, [30])
    forged = with_same_crc32(original(protected, 60), 1000, 2000)
    with open(protected.path, "r+b") as f:
        f.seek(60 * protected.slice_size)
        f.write(forged)
    fd = os.open(protected.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert blockfix.damaged_slices(fd, protected.index) == [30]  # the CRC32s miss slice 60
        assert blockfix.rebuild_slices(fd, where(protected), protected.packets, [30], work) is None
        os.mkdir(os.path.join(work, b"again"))
        rebuilt = blockfix.rebuild_slices(
            fd, where(protected), protected.packets, [30, 60], os.path.join(work, b"again")
        )
        assert rebuilt == {30: original(protected, 30), 60: original(protected, 60)}
    finally:
        os.close(fd)


def every_packet(data: bytes) -> list[par2format.Packet]:
    """The packets of a PAR2 file, damaged ones too (as a careless reader would pass them)."""
    found = []
    offset = 0
    while offset < len(data):
        _magic, length, _md5, set_id, kind = par2format.HEADER.unpack_from(data, offset)
        found.append(par2format.Packet(kind, set_id, data[offset : offset + length]))
        offset += length
    return found


def damage_recovery_packets(protected: Protected, exponents: set[int]) -> list[par2format.Packet]:
    """Flip a byte in the data of these recovery slices; the packets of the set after that."""
    volume = bytearray(protected.volume.read_bytes())
    for packet in every_packet(bytes(volume)):
        if packet.type == par2format.RECOVERY_SLICE and struct.unpack_from("<I", packet.body)[0] in exponents:
            at = bytes(volume).index(packet.raw) + par2format.HEADER.size + 4 + 100
            volume[at] ^= 0xFF
    protected.volume.write_bytes(volume)
    return protected.index + every_packet(bytes(volume))


def test_damaged_recovery_packets_are_passed_over(tmp_path: Path, work: bytes) -> None:
    protected = protect(tmp_path, 3 * MIB)
    packets = damage_recovery_packets(protected, {0, 1})  # the first ones it would use
    damage(protected, [42, 43])
    assert rebuild(protected, work, packets) == {42: original(protected, 42), 43: original(protected, 43)}


def test_too_few_intact_recovery_packets_rebuild_nothing(tmp_path: Path, work: bytes) -> None:
    protected = protect(tmp_path, 3 * MIB)
    packets = damage_recovery_packets(protected, set(range(protected.recovery - 1)))
    damage(protected, [42, 43])
    assert rebuild(protected, work, packets) is None


def test_par2_reads_the_file_by_its_path_and_writes_only_in_work(
    tmp_path: Path, work: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    protected = protect(tmp_path, 3 * MIB)
    damage(protected, [7])
    argvs: list[list[bytes]] = []
    run = commands.run

    def recorded(argv: list[bytes], *args: object, **kwargs: object) -> object:
        argvs.append(argv)
        return run(argv, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(commands, "run", recorded)
    before = sorted(os.listdir(protected.path.parent))
    assert rebuild(protected, work) == {7: original(protected, 7)}
    (argv,) = argvs
    assert argv[-4:] == [
        b"-B",
        bytes(protected.path.parent),
        os.path.join(work, par2.INDEX_NAME),
        bytes(protected.path),
    ]
    assert sorted(os.listdir(work)) == sorted([par2.INDEX_NAME, b"recovery.vol0+1.par2"])
    assert sorted(os.listdir(protected.path.parent)) == before


@pytest.mark.parametrize("linked", ["file", "directory"])
def test_a_path_swapped_for_a_link_to_another_file_rebuilds_nothing(tmp_path: Path, work: bytes, linked: str) -> None:
    """The file's name, or its directory's, replaced by a link leading to another file of the
    same size after nasbox opened it: par2 refuses the link or reads the other file, and what
    it makes proves nothing about the file held open, so no slice comes out (never wrong bytes)."""
    protected = protect(tmp_path, 3 * MIB)
    damage(protected, [7])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / protected.path.name).write_bytes(random.Random(2).randbytes(3 * MIB))
    damaged = protected.path.read_bytes()
    fd = os.open(protected.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        slices = blockfix.damaged_slices(fd, protected.index)
        assert slices == [7]
        if linked == "file":
            os.rename(protected.path, protected.path.with_name("held"))
            protected.path.symlink_to(elsewhere / protected.path.name)
        else:
            os.rename(protected.path.parent, tmp_path / "held")
            protected.path.parent.symlink_to(elsewhere)
        assert blockfix.rebuild_slices(fd, where(protected), protected.packets, slices, work) is None
        assert os.pread(fd, len(damaged) + 1, 0) == damaged  # nothing written either
    finally:
        os.close(fd)


def test_a_file_replaced_since_it_was_opened_is_not_rebuilt(tmp_path: Path, work: bytes) -> None:
    protected = protect(tmp_path, 3 * MIB)
    damage(protected, [7])
    fd = os.open(protected.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        slices = blockfix.damaged_slices(fd, protected.index)
        impostor = protected.path.with_name("impostor")
        impostor.write_bytes(protected.data)
        os.replace(impostor, protected.path)
        assert blockfix.rebuild_slices(fd, where(protected), protected.packets, slices or [], work) is None
    finally:
        os.close(fd)


def test_only_a_set_of_this_one_file_is_used(tmp_path: Path) -> None:
    protected = protect(tmp_path, MIB)
    other = protected.path.with_name("other")
    other.write_bytes(b"x" * 5000)
    two = tmp_path / "two"
    two.mkdir()
    commands.run(
        [par2.binary(), "create", "-q", "-q", "-s4096", "-c1", "-B", str(tmp_path / "data"), "two.par2"]
        + [str(protected.path), str(other)],
        cwd=bytes(two),
    )
    fd = os.open(protected.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert blockfix.damaged_slices(fd, par2format.read_packets(bytes(two / "two.par2"))) is None
        os.truncate(protected.path, MIB - 4)  # shorter than par2 recorded
        assert blockfix.damaged_slices(fd, protected.index) is None
    finally:
        os.close(fd)


@pytest.mark.parametrize("size", [3 << 20, (3 << 20) + 1234])
def test_a_file_holds_the_set_only_when_every_slice_and_the_length_match(tmp_path: Path, size: int) -> None:
    """The check a repair ends with: one changed byte anywhere, the last (short) slice
    included, or another length, and the file no longer holds what the set describes."""
    protected = protect(tmp_path, size)
    layout = blockfix.single_file_set(protected.packets)
    assert layout is not None
    for offset in (None, 0, size // 2, size - 1):
        with open(protected.path, "r+b") as f:
            f.write(protected.data)
            f.truncate(size)
            if offset is not None:
                f.seek(offset)
                f.write(bytes([protected.data[offset] ^ 1]))
        with open(protected.path, "rb") as f:
            assert blockfix.holds_the_set(f.fileno(), layout) is (offset is None), offset
    with open(protected.path, "ab") as f:
        f.write(b"\0")
    with open(protected.path, "rb") as f:
        assert not blockfix.holds_the_set(f.fileno(), layout)
