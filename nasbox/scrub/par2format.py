"""Reading and stripping PAR2 files (the packet format of the PAR 2.0 specification).

A PAR2 file is a sequence of packets, each with a header carrying its length and the MD5 of
its body, so every packet checks itself. nasbox uses this to read the file MD5 that par2
recorded (FileDesc) and to check that parity files are intact without running par2.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"PAR2\0PKT"
HEADER = struct.Struct("<8sQ16s16s16s")  # magic, length, packet MD5, set id, type
FILE_DESC = b"PAR 2.0\0FileDesc"
RECOVERY_SLICE = b"PAR 2.0\0RecvSlic"  # only recovery files hold these
MAIN = b"PAR 2.0\0Main\0\0\0\0"  # the slice size and the files of the set
SLICE_CHECKSUMS = b"PAR 2.0\0IFSC\0\0\0\0"  # the MD5 and CRC32 of each slice of a file
HEAD_BYTES = 16 * 1024  # FileDesc also records the MD5 of a file's first 16 KiB
FILE_DESC_BODY = struct.Struct("<16s16s16sQ")  # file id, MD5, MD5 of the head, length; the name follows


class DamagedParity(Exception):
    """A parity file that is unreadable, truncated, or has a packet failing its MD5."""


@dataclass(frozen=True)
class Packet:
    type: bytes
    set_id: bytes
    raw: bytes  # the whole packet, header included

    @property
    def body(self) -> bytes:
        return self.raw[HEADER.size :]


def packets(data: bytes) -> Iterator[Packet]:
    """Every packet of a PAR2 file's contents; DamagedParity on any flaw."""
    for kind, set_id, start, end in spans(data):
        yield Packet(kind, set_id, data[start:end])


def spans(data: bytes) -> Iterator[tuple[bytes, bytes, int, int]]:
    """(type, set id, start, end) of every packet of a PAR2 file's contents, each checked
    against its MD5; DamagedParity on any flaw."""
    offset, size, view = 0, len(data), memoryview(data)
    while offset < size:
        if size - offset < HEADER.size:
            raise DamagedParity("truncated packet header")
        magic, length, md5, set_id, kind = HEADER.unpack_from(data, offset)
        if magic != MAGIC or length < HEADER.size or length % 4 or offset + length > size:
            raise DamagedParity(f"bad packet header at byte {offset}")
        if hashlib.md5(view[offset + 32 : offset + length]).digest() != md5:  # the MD5 covers set id onwards
            raise DamagedParity(f"packet at byte {offset} fails its checksum")
        yield kind, set_id, offset, offset + length
        offset += length


def read_packets(path: str | bytes) -> list[Packet]:
    """The packets of a parity file, never read through a symlink."""
    found = list(packets(read_parity_file(path)))
    if not found:
        raise DamagedParity("no packets")
    return found


def read_parity_file(path: str | bytes) -> bytes:
    """A parity file's contents, never read through a symlink."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
            return f.read()
    except OSError as e:
        raise DamagedParity(f"cannot read: {e.strerror}") from e


def strip(path: str | bytes) -> None:
    """Rewrite a recovery file keeping its recovery slices only: par2 repeats every file's
    description and slice checksums in each recovery file, which in a set of small files
    costs more than the recovery data; the index file holds them once, and par2 reads a set's
    packets from all its files together.
    No fsync, as par2 does none: parity lost to a power cut fails its packet checksums at the
    next verify and is made again from the verified data."""
    kept = [packet.raw for packet in read_packets(path) if packet.type == RECOVERY_SLICE]
    with open(path, "wb") as f:
        f.write(b"".join(kept))


@dataclass(frozen=True)
class FileDescription:
    md5: bytes  # of the whole file
    length: int
    name: bytes  # as par2 wrote it, relative to its base directory
    head: bytes = b""  # the MD5 of its first HEAD_BYTES


def file_description(index: list[Packet]) -> FileDescription:
    """What par2 recorded of the file a parity set protects (its FileDesc packet)."""
    found = descriptions(index)
    if not found:
        raise DamagedParity("no file description packet")
    return next(iter(found.values()))


def descriptions(found: list[Packet]) -> dict[bytes, FileDescription]:
    """{name: description} of every file the packets describe (each once)."""
    described = {}
    for packet in found:
        if packet.type == FILE_DESC:
            _file_id, md5, head, length = FILE_DESC_BODY.unpack_from(packet.raw, HEADER.size)
            name = described_name(packet.raw, HEADER.size, len(packet.raw))
            described[name] = FileDescription(md5, length, name, head)
    return described


def described_name(data: bytes, body: int, end: int) -> bytes:
    """The file name a FileDesc packet's body (data[body:end]) records, as par2 wrote it."""
    return data[body + FILE_DESC_BODY.size : end].rstrip(b"\0")


def first_packet(path: str | bytes) -> tuple[bytes, bytes]:
    """(type, set id) of the first packet of a PAR2 file, read from its header alone (never
    through a symlink)."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
            header = f.read(HEADER.size)
    except OSError as e:
        raise DamagedParity(f"cannot read: {e.strerror}") from e
    if len(header) < HEADER.size or header[:8] != MAGIC:
        raise DamagedParity("no packet header")
    _magic, _length, _md5, set_id, kind = HEADER.unpack(header)
    return kind, set_id
