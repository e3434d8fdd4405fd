"""Repairing corrupt files in place, without ever writing through a symlink or reverting an edit.

par2 works on copies in a private directory inside DATABASE (the corrupt files and the other
files of their parity set, read through descriptors), so it never sees a link and its
backups (`file.1`) never reach DIRECTORY; every file the parity describes must be inside
DIRECTORY. A file of the set that changed since is just more damage to par2, never written
back. Each repaired copy must match the MD5 par2 recorded when the parity was made. It is
then written back into the original file itself: the same inode (hard links see the repair;
owner, mode and extended attributes are untouched), only the chunks that differ (holes stay
holes), each chunk first checked to still hold the damaged bytes read at the start, so an
edit made meanwhile stops the repair and is kept. The original's times are restored after
each chunk (a run killed midway leaves a file that still looks unedited, and the next scrub
finishes the repair), and at the end the whole file must hold the recorded content, else
an edit happened behind the repair: it is kept and given a new mtime, never hidden.
Nothing is ever created in the user's directory.

A large file's own set first tries a cheaper route: its damaged slices are found by their
CRC32s and rebuilt from one read of the file (nasbox.scrub.blockfix), each checked against
its MD5, and written back in place under the same rules; only when that cannot be done is
the file copied for par2 repair.

Writing moves the file's ctime, which no one can set back, and a moved ctime reads as an
edit (nasbox.scrub.timestamps). So while a repair writes, a note in the private folder's
`repairing` directory names the file, the times it had, its repair's working directory and
each block the repair will write with the MD5 of its damaged bytes: a run killed midway
leaves it, and the next run (nasbox.scrub.install) takes that ctime as the repair's, not an
edit's. Killed between writing a block and setting the times back, the repair leaves a new
mtime too: the file is then proven to hold nothing but the damage and the repair's own
writes (interrupted_write_back) before its times are set back. A repair by slices leaves no
repaired copy, so its note carries the repaired bytes of each block it writes instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial

from nasbox import commands
from nasbox.scrub import blockfix, par2, par2format, timestamps
from nasbox.scrub.catalog import STAGING_NAME, Entry, is_name, is_relative
from nasbox.scrub.files import CHUNK, NOT_THIS_FILE, md5_of_fd, open_directory, open_file, same_file
from nasbox.scrub.trust import REPAIRING

ZEROS = bytes(CHUNK)
NOTE_TIMES = struct.Struct("=qqq")  # the file's atime and mtime (ns), the block size written in
NOTE_BLOCK = struct.Struct("=q16s")  # a block the repair writes: its offset, the MD5 of its damaged bytes
# In a note written with block size 0 each block is a NOTE_SLICE followed by its repaired bytes.
NOTE_SLICE = struct.Struct("=qq16s")  # its offset, its length, the MD5 of its damaged bytes
# Waited after a repair's last write so that its final read settles the file; a longer wait
# (whole-second timestamps) is left to the run's settling of the files it recorded.
SETTLE_WAIT_NS = 2 * timestamps.FINE_TICK_NS
SLICES_WORK = b".slices"  # par2's working directory for a repair by slices, inside the repair's


class Result(Enum):
    REPAIRED = "repaired"
    CHANGED = "changed"  # edited since it was verified: the edit is kept
    BEYOND_REPAIR = "beyond repair"  # the parity cannot rebuild it
    FAILED = "failed"  # the parity could, but the repair could not be done (read-only, full, ...)


@dataclass(frozen=True)
class RepairNote:
    """What a repair writes down before it writes into a file (older notes name the file only)."""

    dir: bytes
    name: bytes
    work: bytes | None = None  # its working directory in `repair`, holding the repaired copy
    times: tuple[int, int] | None = None  # the file's atime and mtime before the repair
    block: int = 0
    damaged: dict[int, bytes] = field(default_factory=dict)  # offset: MD5 of the block's damaged bytes
    # offset: the block's repaired bytes, for a repair that leaves no repaired copy (by slices)
    repaired: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        entry: Entry,
        work: bytes,
        original: os.stat_result,
        block: int,
        damaged: dict[int, bytes],
        repaired: dict[int, bytes] | None = None,
    ) -> RepairNote:
        """The note of a repair of entry's file (original: its metadata before) working in work."""
        times = (original.st_atime_ns, original.st_mtime_ns)
        return cls(entry.dir, entry.name, os.path.basename(work), times, block, damaged, repaired or {})


@dataclass(frozen=True)
class Outcome:
    result: Result
    detail: str
    st: os.stat_result | None = None  # the file's metadata once repaired (its ctime moved)
    read_started_ns: int | None = None  # when the read that proved the repaired file began


def repair(
    directory: bytes,
    parity_files: list[bytes],
    private: bytes,
    targets: list[Entry],
    members: list[Entry],
    inherit: tuple[int, ...] = (),
) -> dict[bytes, Outcome]:
    """Repair the corrupt files targets (of DIRECTORY) from the parity set parity_files
    (index first), par2 working in a new directory in the private folder's `repair`
    (inherit: the descriptors par2 needs to reach it); members: every file the set protects,
    targets among them, copied beside the targets for par2 to read. {relative: outcome}."""
    outcomes: dict[bytes, Outcome] = {}
    opened: dict[bytes, tuple[int, Entry]] = {}
    try:
        for entry in targets:
            fd_or_outcome = _open_target(directory, entry)
            if isinstance(fd_or_outcome, Outcome):
                outcomes[entry.relative] = fd_or_outcome
            else:
                opened[entry.relative] = (fd_or_outcome, entry)
        if not opened:
            return outcomes
        work = os.path.join(private, b"repair", uuid.uuid4().hex.encode())
        journal = os.path.join(private, REPAIRING)
        try:
            os.mkdir(work, 0o700)
            by_slices = _repair_by_slices(work, journal, directory, opened, parity_files, members, inherit)
            if by_slices is None:
                by_slices = _repair_in(work, journal, directory, opened, parity_files, members, inherit)
            outcomes |= by_slices
        except OSError as e:
            outcomes |= {relative: _failed(e) for relative in opened if relative not in outcomes}
        finally:
            if not _notes_of(journal, os.path.basename(work)):
                shutil.rmtree(work, ignore_errors=True)  # else its repaired copy proves the note (install.recover)
        return outcomes
    finally:
        for fd, _ in opened.values():
            os.close(fd)


def _open_target(directory: bytes, entry: Entry) -> int | Outcome:
    """The corrupt file, open for writing, while it is still the file that was verified."""
    try:
        dir_fd = open_directory(directory, entry.dir)
        try:
            fd = os.open(entry.name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        if e.errno in NOT_THIS_FILE:
            return Outcome(Result.CHANGED, "changed since it was verified; the edit is kept")
        return _failed(e)  # immutable, a read-only mount, ...
    if not same_file(os.fstat(fd), entry):
        os.close(fd)
        return Outcome(Result.CHANGED, "changed since it was verified; the edit is kept")
    return fd


def _notes_of(journal: bytes, work: bytes) -> bool:
    try:
        return any(note.startswith(work) for note in os.listdir(journal))
    except FileNotFoundError:
        return False


def _failed(error: OSError) -> Outcome:
    return Outcome(Result.FAILED, f"corrupt, and could not be repaired: {error.strerror or error}; left as it is")


def _repair_in(
    work: bytes,
    journal: bytes,
    directory: bytes,
    opened: dict[bytes, tuple[int, Entry]],
    parity_files: list[bytes],
    members: list[Entry],
    inherit: tuple[int, ...],
) -> dict[bytes, Outcome]:
    def every(outcome: Outcome) -> dict[bytes, Outcome]:
        return dict.fromkeys(opened, outcome)

    # 1. The parity, copied under names without wildcards; what it describes must be inside.
    parity_copy = os.path.join(work, b".parity")
    os.mkdir(parity_copy, 0o700)
    stem = os.path.basename(parity_files[0])[: -len(b".par2")]
    described: set[bytes] = set()
    for path in parity_files:
        target = os.path.join(parity_copy, b"p" + os.path.basename(path)[len(stem) :])
        try:
            _copy_file(path, target)
        except FileNotFoundError:
            return every(Outcome(Result.BEYOND_REPAIR, "corrupt, and its parity is missing; left as it is"))
        try:
            described |= set(par2.as_par2_reads_them(par2format.descriptions(par2format.read_packets(target))))
        except par2format.DamagedParity:
            continue  # par2 skips damaged packets itself; what it can read is checked
    if not all(is_relative(name) for name in described):
        return every(Outcome(Result.BEYOND_REPAIR, "corrupt, and its parity describes files elsewhere; left as it is"))
    outcomes: dict[bytes, Outcome] = {}
    for relative in opened:
        seen_by_par2 = par2.path_as_par2_reads_it(relative)
        if not is_relative(seen_by_par2):
            outcomes[relative] = Outcome(Result.BEYOND_REPAIR, "corrupt, and par2 would look for it elsewhere")
        elif seen_by_par2 not in described:
            outcomes[relative] = Outcome(Result.BEYOND_REPAIR, "corrupt, and its parity does not describe it")
    if len(outcomes) == len(opened):
        return outcomes

    # 2. Every file of the set beside it, where par2 will look for it (a place inside work);
    # those that left the set since (an edit) too, as stock par2 would read them: what an
    # edit in place did not change still spares the recovery.
    damaged: dict[bytes, list[bytes]] = {}
    left = set(described)
    for member in members:
        seen_by_par2 = par2.path_as_par2_reads_it(member.relative)
        if seen_by_par2 not in described:
            continue
        left.discard(seen_by_par2)
        copy = os.path.join(work, seen_by_par2)
        os.makedirs(os.path.dirname(copy), mode=0o700, exist_ok=True)
        if member.relative in opened:
            damaged[member.relative] = _sparse_copy(opened[member.relative][0], copy, member.size)
        else:
            _copy_neighbour(directory, member.dir, member.name, copy)
    for name in sorted(left):
        copy = os.path.join(work, name)
        os.makedirs(os.path.dirname(copy), mode=0o700, exist_ok=True)
        _copy_neighbour(directory, os.path.dirname(name), os.path.basename(name), copy)

    # 3. par2 repairs the copies.
    result = commands.run(
        par2.repair(work, os.path.join(parity_copy, b"p.par2")), check=False, timeout=None, cwd=work, pass_fds=inherit
    )
    if result.returncode in par2.NOT_REPAIRABLE:
        why = Outcome(Result.BEYOND_REPAIR, f"beyond repair (par2 exited {result.returncode}); left as it is")
        return {relative: outcomes.get(relative, why) for relative in opened}
    if result.returncode != 0:
        tail = (result.stdout.strip().splitlines() or [""])[-1]
        why = Outcome(
            Result.FAILED, f"corrupt, and could not be repaired: par2 exited {result.returncode}: {tail}; left as it is"
        )
        return {relative: outcomes.get(relative, why) for relative in opened}

    # 4. Each repaired copy into its original, where it differs and still holds the damaged bytes.
    for number, (relative, (fd, entry)) in enumerate(opened.items()):
        if relative not in outcomes:
            copy = os.path.join(work, par2.path_as_par2_reads_it(relative))
            note_name = os.path.basename(work) + b".%d" % number
            outcomes[relative] = _write_back_copy(journal, note_name, work, fd, entry, copy, damaged[relative])
    return outcomes


def _repair_by_slices(
    work: bytes,
    journal: bytes,
    directory: bytes,
    opened: dict[bytes, tuple[int, Entry]],
    parity_files: list[bytes],
    members: list[Entry],
    inherit: tuple[int, ...],
) -> dict[bytes, Outcome] | None:
    """A file alone in its set: its damaged slices rebuilt from one read of it and written
    back in place. None when that cannot be done (more damage than the recovery slices par2
    is spared for, damaged parity, a rebuilt slice that fails its MD5, ...): par2 repairs it."""
    if len(opened) != 1 or [m.relative for m in members] != list(opened):
        return None
    ((relative, (fd, entry)),) = opened.items()
    packets: list[par2format.Packet] = []
    for path in parity_files:
        with contextlib.suppress(par2format.DamagedParity):  # par2 repair reads what it can
            packets += par2format.read_packets(path)
    layout = blockfix.single_file_set(packets)
    description = par2.as_par2_reads_them(par2format.descriptions(packets)).get(par2.path_as_par2_reads_it(relative))
    if layout is None or description is None or (description.md5, description.length) != (entry.md5, entry.size):
        return None
    numbers = blockfix.damaged_slices(fd, packets)
    if not numbers:
        return None
    size = layout.slice_size
    damaged = {k * size: blockfix.pread_all(fd, min(size, entry.size - k * size), k * size) for k in numbers}
    slices_work = os.path.join(work, SLICES_WORK)
    os.mkdir(slices_work, 0o700)
    try:
        rebuilt = blockfix.rebuild_slices(fd, (directory, relative), packets, numbers, slices_work, inherit)
    finally:
        shutil.rmtree(slices_work, ignore_errors=True)
    if rebuilt is None:
        return None
    repaired = {k * size: data for k, data in rebuilt.items()}
    note_name = os.path.basename(work) + b".0"
    holds = partial(blockfix.holds_the_set, layout=layout)  # the set's MD5 is the catalog's (above)
    return {relative: _write_back_slices(journal, note_name, work, fd, entry, repaired, damaged, holds)}


def _copy_neighbour(directory: bytes, relative_dir: bytes, name: bytes, copy: bytes) -> None:
    """Another file of the set, as it is now (par2 takes what no longer matches for damage)."""
    try:
        fd = open_file(directory, relative_dir, name)
    except OSError as e:
        if e.errno in NOT_THIS_FILE:
            return  # gone: par2 counts it as missing
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            _sparse_copy(fd, copy, st.st_size)
    finally:
        os.close(fd)


def _write_back_copy(
    journal: bytes, note_name: bytes, work: bytes, fd: int, entry: Entry, copy: bytes, damaged: list[bytes]
) -> Outcome:
    original = os.fstat(fd)
    if not same_file(original, entry):
        return Outcome(Result.CHANGED, "changed since it was verified; the edit is kept")
    try:
        repaired = os.open(copy, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return Outcome(Result.BEYOND_REPAIR, "par2 left no repaired copy; left as it is")
    try:
        if os.fstat(repaired).st_size != entry.size or md5_of_fd(repaired) != entry.md5:
            return Outcome(Result.BEYOND_REPAIR, "par2's result does not match the recorded checksum; left as it is")
        block = original.st_blksize
        blocks = _blocks_to_write(fd, repaired, original.st_size, block)
        note = _note_repairing(journal, note_name, RepairNote.of(entry, work, original, block, blocks))
        outcome = _write_back(fd, repaired, damaged, original, entry.md5)
        os.unlink(note)  # not when the write-back failed: the file's ctime moved all the same
        return outcome
    finally:
        os.close(repaired)


def _write_back_slices(
    journal: bytes,
    note_name: bytes,
    work: bytes,
    fd: int,
    entry: Entry,
    repaired: dict[int, bytes],
    damaged: dict[int, bytes],
    holds: Callable[[int], bool],
) -> Outcome:
    """repaired: {offset: bytes} of the rebuilt slices; damaged: their bytes as read before;
    holds: whether a file descriptor's file holds the recorded content."""
    original = os.fstat(fd)
    if not same_file(original, entry):
        return Outcome(Result.CHANGED, "changed since it was verified; the edit is kept")
    damaged_md5 = {offset: hashlib.md5(data).digest() for offset, data in damaged.items()}
    note = _note_repairing(journal, note_name, RepairNote.of(entry, work, original, 0, damaged_md5, repaired))
    times = (original.st_atime_ns, original.st_mtime_ns)
    block = original.st_blksize
    for offset, wanted in sorted(repaired.items()):
        current = blockfix.pread_all(fd, len(wanted), offset)
        if current == wanted:
            continue
        if current != damaged[offset]:
            outcome = _edited(fd)
            break
        # Only the file system's blocks that differ: a hole's block is never written.
        for start in range(offset - offset % block, offset + len(wanted), block):
            low, high = max(start, offset) - offset, min(start + block, offset + len(wanted)) - offset
            if current[low:high] != wanted[low:high]:
                _pwrite_all(fd, wanted[low:high], offset + low)
        os.utime(fd, ns=times)  # at once, as _write_back does
    else:
        outcome = _flushed(fd, original, holds)
    os.unlink(note)  # not when the write-back failed: the file's ctime moved all the same
    return outcome


def _note_repairing(journal: bytes, note_name: bytes, note: RepairNote) -> bytes:
    """The note (dir, NUL, name, NUL, work, NUL, times and blocks), on disk before the repair
    writes; its name begins with the working directory's, which it keeps. A note with
    repaired bytes is written with block size 0, each block followed by its repaired bytes."""
    os.makedirs(journal, 0o700, exist_ok=True)
    assert note.work is not None and note.times is not None
    path = os.path.join(journal, note_name)
    data = b"\0".join((note.dir, note.name, note.work, NOTE_TIMES.pack(*note.times, note.block)))
    if note.repaired:
        assert note.block == 0 and note.repaired.keys() == note.damaged.keys()
        data += b"".join(
            NOTE_SLICE.pack(offset, len(repaired), note.damaged[offset]) + repaired
            for offset, repaired in sorted(note.repaired.items())
        )
    else:
        data += b"".join(NOTE_BLOCK.pack(offset, md5) for offset, md5 in sorted(note.damaged.items()))
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        _pwrite_all(out, data, 0)
        os.fsync(out)
    finally:
        os.close(out)
    return path


def read_repairing_note(path: bytes) -> RepairNote | None:
    """The note _note_repairing wrote; None when it is not one."""
    with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
        parts = f.read().split(b"\0", 3)
    if len(parts) < 2 or not is_relative(parts[0]) or not is_name(parts[1]):
        return None
    if len(parts) == 2:
        return RepairNote(parts[0], parts[1])
    if len(parts) != 4 or not STAGING_NAME.fullmatch(parts[2]) or len(parts[3]) < NOTE_TIMES.size:
        return None
    atime, mtime, block = NOTE_TIMES.unpack_from(parts[3])
    blocks = parts[3][NOTE_TIMES.size :]
    if block == 0:
        slices = _noted_slices(blocks)
        if slices is None:
            return None
        damaged, repaired = slices
        return RepairNote(parts[0], parts[1], parts[2], (atime, mtime), 0, damaged, repaired)
    if block < 0 or len(blocks) % NOTE_BLOCK.size:
        return None
    damaged = dict(NOTE_BLOCK.iter_unpack(blocks))
    return RepairNote(parts[0], parts[1], parts[2], (atime, mtime), block, damaged)


def _noted_slices(data: bytes) -> tuple[dict[int, bytes], dict[int, bytes]] | None:
    """({offset: MD5 of the damaged bytes}, {offset: repaired bytes}) of a note's blocks."""
    damaged, repaired = {}, {}
    at = 0
    while at < len(data):
        if len(data) - at < NOTE_SLICE.size:
            return None
        offset, length, md5 = NOTE_SLICE.unpack_from(data, at)
        at += NOTE_SLICE.size
        if offset < 0 or length <= 0 or len(data) - at < length:
            return None
        damaged[offset], repaired[offset] = md5, data[at : at + length]
        at += length
    return (damaged, repaired) if repaired else None


def interrupted_write_back(directory: bytes, private: bytes, note: RepairNote, entry: Entry) -> os.stat_result | None:
    """The file a killed repair was writing into, when it holds nothing but the damage and
    the repair's own writes: every block that differs from the repaired copy is one the
    repair was to write and still holds its damaged bytes; for a note that carries the
    repaired bytes (no copy), every noted block holds its damaged or its repaired bytes and
    the file with each of them as repaired has the recorded MD5. Its times are set back if
    the repair was killed before it did (its mtime is new), and its metadata returned, so
    that it is not taken for an edit and its next verify finishes the repair. None when that
    is not proven: an edit since, even one that set the times back, is kept."""
    if note.times is None or note.times[1] != entry.mtime_ns:
        return None
    if note.repaired:
        return _set_back_if(directory, note, entry, lambda fd: _holds_damage_or_repaired_slices(fd, note, entry))
    copy = repaired_copy(private, note)
    if copy is None:
        return None
    try:
        repaired = os.open(copy, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if os.fstat(repaired).st_size != entry.size or md5_of_fd(repaired) != entry.md5:
            return None
        return _set_back_if(directory, note, entry, lambda fd: _holds_damage_or_copy(fd, repaired, note))
    finally:
        os.close(repaired)


def _set_back_if(
    directory: bytes, note: RepairNote, entry: Entry, proven: Callable[[int], bool]
) -> os.stat_result | None:
    """The file's metadata, its times set back to the note's, if proven(its descriptor)."""
    assert note.times is not None
    fd = open_file(directory, note.dir, note.name)
    try:
        st = os.fstat(fd)
        if (st.st_size, st.st_ino) != (entry.size, entry.inode) or not proven(fd):
            return None
        if st.st_mtime_ns != note.times[1]:
            os.utime(fd, ns=note.times)
        return os.fstat(fd)
    finally:
        os.close(fd)


def _holds_damage_or_copy(fd: int, repaired: int, note: RepairNote) -> bool:
    """Every block that differs from the repaired copy is noted and holds its damaged bytes."""
    size = os.fstat(fd).st_size
    for offset in range(0, size, CHUNK):
        current, wanted = os.pread(fd, CHUNK, offset), os.pread(repaired, CHUNK, offset)
        for start in range(0, len(current), note.block) if current != wanted else ():
            block = current[start : start + note.block]
            if block != wanted[start : start + note.block] and (
                hashlib.md5(block).digest() != note.damaged.get(offset + start)
            ):
                return False
    return True


def _holds_damage_or_repaired_slices(fd: int, note: RepairNote, entry: Entry) -> bool:
    """Every noted block holds its damaged or its repaired bytes, and the file with each of
    them as repaired has the recorded MD5 (so nothing else in it changed)."""
    for offset, wanted in note.repaired.items():
        current = blockfix.pread_all(fd, len(wanted), offset)
        if current != wanted and hashlib.md5(current).digest() != note.damaged[offset]:
            return False
    digest = hashlib.md5()
    for offset in range(0, entry.size, CHUNK):
        data = bytearray(blockfix.pread_all(fd, CHUNK, offset))
        for start, wanted in note.repaired.items():
            low, high = max(start, offset), min(start + len(wanted), offset + len(data))
            if low < high:
                data[low - offset : high - offset] = wanted[low - start : high - start]
        digest.update(data)
    return digest.digest() == entry.md5


def repaired_copy(private: bytes, note: RepairNote) -> bytes | None:
    """The repaired copy the note's repair left in its working directory, if it is there."""
    if note.work is None:
        return None
    relative = os.path.join(note.dir, note.name)
    copy = os.path.join(private, b"repair", note.work, par2.path_as_par2_reads_it(relative))
    return copy if os.path.isfile(copy) and not os.path.islink(copy) else None


def _blocks_to_write(fd: int, repaired: int, size: int, block: int) -> dict[int, bytes]:
    """{offset: MD5 of the damaged bytes} of each block where the file differs from its repair."""
    blocks = {}
    for offset in range(0, size, CHUNK):
        current, wanted = os.pread(fd, CHUNK, offset), os.pread(repaired, CHUNK, offset)
        for start in range(0, len(current), block) if current != wanted else ():
            if current[start : start + block] != wanted[start : start + block]:
                blocks[offset + start] = hashlib.md5(current[start : start + block]).digest()
    return blocks


def _sparse_copy(fd: int, target: bytes, size: int) -> list[bytes]:
    """Copy fd into target, leaving holes where it reads zeros; the MD5 of each chunk."""
    digests = []
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        for offset in range(0, size, CHUNK):
            data = os.pread(fd, CHUNK, offset)
            digests.append(hashlib.md5(data).digest())
            if data != ZEROS[: len(data)]:
                _pwrite_all(out, data, offset)
        os.ftruncate(out, size)
    finally:
        os.close(out)
    return digests


def _write_back(fd: int, repaired: int, damaged: list[bytes], original: os.stat_result, md5: bytes) -> Outcome:
    times = (original.st_atime_ns, original.st_mtime_ns)
    for index, offset in enumerate(range(0, original.st_size, CHUNK)):
        wanted = os.pread(repaired, CHUNK, offset)
        current = os.pread(fd, CHUNK, offset)
        if current == wanted:
            continue
        if hashlib.md5(current).digest() != damaged[index]:
            return _edited(fd)
        block = original.st_blksize  # only the blocks that differ: a hole's block is never written
        for start in range(0, len(wanted), block):
            if current[start : start + block] != wanted[start : start + block]:
                _pwrite_all(fd, wanted[start : start + block], offset + start)
        # The original times at once, so a run killed before the end leaves a file that still
        # looks unedited: the next scrub finds the rest of the damage and finishes the repair.
        os.utime(fd, ns=times)
    return _flushed(fd, original, partial(_has_md5, md5=md5))


def _has_md5(fd: int, md5: bytes) -> bool:
    os.lseek(fd, 0, os.SEEK_SET)
    return md5_of_fd(fd) == md5


def _flushed(fd: int, original: os.stat_result, holds: Callable[[int], bool]) -> Outcome:
    """The end of a write-back: on disk, and the file must hold the recorded content."""
    os.fsync(fd)
    # Begun a timestamp tick after the last write, the read below settles the file
    # (nasbox.scrub.timestamps): the run need not read it once more.
    written = os.fstat(fd)
    wait_ns = timestamps.settled_at(written.st_mtime_ns, written.st_ctime_ns) - time.time_ns()
    if 0 < wait_ns <= SETTLE_WAIT_NS:
        time.sleep(wait_ns / 1e9)
    started = time.time_ns()
    # Restoring the times could have hidden another program's write between ours: the file
    # must now hold exactly the recorded content, else it was edited.
    if written.st_size != original.st_size or not holds(fd):
        return _edited(fd)
    return Outcome(Result.REPAIRED, "repaired", os.fstat(fd), started)


def _edited(fd: int) -> Outcome:
    os.utime(fd)  # now: the edit must look like one, whatever times a repair restored
    return Outcome(Result.CHANGED, "changed during the repair; the edit is kept")


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _copy_file(source: bytes, target: bytes) -> None:
    with (
        open(os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as src,
        open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), "wb") as out,
    ):
        shutil.copyfileobj(src, out, CHUNK)
