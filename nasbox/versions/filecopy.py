"""A file's data copied into a new file: holes stay holes (SEEK_DATA/SEEK_HOLE find the
data), the data is copied by the kernel (copy_file_range; a reflink where the filesystem
shares extents, never a hard link) or, where it cannot, by reads and writes."""

from __future__ import annotations

import errno
import os

from nasbox import stop

CHUNK = 16 << 20  # a stop is looked at between chunks
# copy_file_range refused between these two files: read and write instead.
NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


def copy_data(source: int, target: int, size: int) -> None:
    """size bytes of source into the empty file target, holes left as holes."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(source, offset, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            break  # nothing but a hole up to the end
        end = min(os.lseek(source, start, os.SEEK_HOLE), size)
        _copy_range(source, target, start, end)
        offset = end
    os.ftruncate(target, size)  # a hole at the end, and nothing beyond size


def _copy_range(source: int, target: int, start: int, end: int) -> None:
    position = start
    kernel = True
    while position < end:
        stop.check()
        count = min(CHUNK, end - position)
        copied = 0
        if kernel:
            try:
                copied = os.copy_file_range(source, target, count, position, position)
            except OSError as e:
                if e.errno not in NO_KERNEL_COPY:
                    raise
                kernel = False
        if not kernel:
            data = os.pread(source, count, position)
            copied = len(data)
            written = 0
            while written < copied:
                written += os.pwrite(target, data[written:], position + written)
        if copied == 0:
            raise OSError(errno.EIO, "the file in the version ended before its size")
        position += copied
