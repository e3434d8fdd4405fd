"""DIRECTORY's files reached through descriptors, never following a link below DIRECTORY:
a link swapped in for a directory or a file is never entered, read or written through.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import stat
import sys
import threading
import time
from collections.abc import Container, Iterator
from dataclasses import dataclass

from nasbox.descriptors import DIRECTORY_FLAGS, FILE_FLAGS, open_below
from nasbox.scrub import par2format
from nasbox.scrub.catalog import Entry

CHUNK = 1 << 20
FIRST_READ = 64 << 10  # most files are read whole by this
READ_SIZE = 4 << 20  # the rest in reads this large, with the kernel told to read ahead
READ_AHEAD = 4  # buffers of READ_SIZE for one file: one being hashed, the others read ahead
READ_AHEAD_FROM = 16 << 20  # a file this large is read by a thread of its own while it is hashed
# The job's DIRECTORY may itself be a link its configuration names; nothing below it is followed.
ROOT_FLAGS = DIRECTORY_FLAGS & ~os.O_NOFOLLOW
# Names listed through a descriptor come as str, decoded so.
FS_ENCODING = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
_kept = threading.local()  # a thread's read buffers (_read_ahead), kept for its next file
# Errors that mean the path no longer leads to the file that was walked (gone, or a link now).
NOT_THIS_FILE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


@dataclass(frozen=True)
class Read:
    """A file's MD5, its metadata while it was read, and when the read began."""

    md5: bytes
    st: os.stat_result
    started_ns: int


def open_directory(root: bytes, relative: bytes) -> int:
    """A descriptor of root/relative reached without following any symlink below root."""
    return open_below(root, [part for part in relative.split(b"/") if part], ROOT_FLAGS)


def read_directory(
    root: bytes, relative: bytes, unstated: Container[bytes] = ()
) -> list[tuple[bytes, os.stat_result | None]]:
    """The names in root/relative with their lstat; a regular file named in unstated without
    it (None), as the directory's listing gives its type: whoever reads it fstats it."""
    fd = open_directory(root, relative)
    try:
        found: list[tuple[bytes, os.stat_result | None]] = []
        with os.scandir(fd) as listing:
            for item in listing:
                name = item.name.encode(*FS_ENCODING)  # os.fsencode, without its checks
                try:
                    if name in unstated and item.is_file(follow_symlinks=False):
                        found.append((name, None))
                    else:
                        found.append((name, item.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue
        return found
    finally:
        os.close(fd)


def open_file(root: bytes, relative: bytes, name: bytes) -> int:
    """root/relative/name for reading."""
    dir_fd = open_directory(root, relative)
    try:
        return os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def stat_file(root: bytes, relative: bytes, name: bytes) -> os.stat_result:
    """The metadata of root/relative/name."""
    return stat_and_head(root, relative, name)[0]


def stat_and_head(root: bytes, relative: bytes, name: bytes) -> tuple[os.stat_result, bytes]:
    """The file's metadata and the MD5 of its first 16 KiB, as par2 records it."""
    fd = open_file(root, relative, name)
    try:
        return os.fstat(fd), hashlib.md5(os.pread(fd, par2format.HEAD_BYTES, 0)).digest()
    finally:
        os.close(fd)


def md5_of_fd(fd: int, size: int | None = None) -> bytes:
    """The MD5 of what fd reads from its offset on; with size (what fstat said before, which
    the caller compares with what it says after), of that many bytes when the first read
    brings them all."""
    digest = hashlib.md5()
    first = os.read(fd, FIRST_READ)
    digest.update(first)
    if len(first) < FIRST_READ:  # most files: the end is next
        if len(first) != size:
            while more := os.read(fd, FIRST_READ):
                digest.update(more)
        return digest.digest()
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    large = (os.fstat(fd).st_size if size is None else size) >= READ_AHEAD_FROM
    for chunk in _read_ahead(fd) if large else _read_here(fd):
        digest.update(chunk)
    return digest.digest()


def _read_here(fd: int) -> Iterator[memoryview]:
    """What fd reads, READ_SIZE at a time, into a buffer the calling thread keeps."""
    buffer = _buffers(1)[0]
    while read := os.readv(fd, [buffer]):
        view = memoryview(buffer)[:read]
        try:
            yield view
        finally:
            view.release()


def _read_ahead(fd: int) -> Iterator[memoryview]:
    """What fd reads, READ_SIZE at a time, read by a thread of its own while the caller hashes
    the chunk before (both release the interpreter's lock): reading and hashing overlap, as
    they do not when one thread waits for each read (worth a thread from READ_AHEAD_FROM)."""
    buffers = _buffers(READ_AHEAD)
    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()  # None: stop
    for buffer in buffers:
        free.put(buffer)
    chunks: queue.SimpleQueue[tuple[bytearray, int] | OSError] = queue.SimpleQueue()

    def reader() -> None:
        try:
            while (buffer := free.get()) is not None:
                read = os.readv(fd, [buffer])
                chunks.put((buffer, read))
                if not read:
                    return
        except OSError as e:
            chunks.put(e)

    thread = threading.Thread(target=reader, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            chunk = chunks.get()
            if isinstance(chunk, OSError):
                raise chunk
            buffer, read = chunk
            if not read:
                return
            view = memoryview(buffer)[:read]
            try:
                yield view
            finally:
                view.release()
            free.put(buffer)
    finally:
        free.put(None)  # a reader waiting for a buffer stops; one reading stops after that read
        thread.join()


def _buffers(count: int) -> list[bytearray]:
    """count buffers of READ_SIZE the calling thread keeps from file to file: a new object for
    every read costs the kernel fresh zeroed pages, as much system time as the reads."""
    kept: list[bytearray] = getattr(_kept, "buffers", [])
    kept += [bytearray(READ_SIZE) for _ in range(count - len(kept))]
    _kept.buffers = kept
    return kept[:count]


def metadata(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is written, replaced, or has its mtime set back."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def same_file(st: os.stat_result, entry: Entry) -> bool:
    """The file the entry recorded, not written since: the same size, mtime, inode and ctime."""
    return stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) == (
        entry.size,
        entry.mtime_ns,
        entry.inode,
        entry.ctime_ns,
    )


def read(root: bytes, relative: bytes, name: bytes) -> Read | None:
    """The file's MD5 and metadata; None when it changed while it was read."""
    started = time.time_ns()
    fd = open_file(root, relative, name)
    try:
        before = os.fstat(fd)
        md5 = md5_of_fd(fd)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    return Read(md5, after, started) if metadata(before) == metadata(after) else None
