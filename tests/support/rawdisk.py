"""Loop-mounted filesystem images, and damage done underneath a filesystem.

A failing disk changes a file's bytes without the filesystem knowing: size, mtime and ctime
stay as they were. Writing into a file, even with its mtime set back afterwards, moves its
ctime, which is what an edit looks like; so silent corruption is made here by writing to the
block device under a mounted ext4 image, at the file's physical location (FIEMAP), and then
dropping the file's cached pages so that the next read comes from the device.
"""
from __future__ import annotations

import contextlib
import fcntl
import gc
import mmap
import os
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_HEADER = struct.Struct("=QQLLLL")  # start, length, flags, mapped extents, extent count, reserved
FIEMAP_EXTENT = struct.Struct("=QQQQQLLLL")  # logical, physical, length, 2 reserved, flags, 3 reserved
MAX_EXTENTS = 64
BLOCK = 4096


@contextmanager
def loop_mount(mountpoint: Path, size_mb: int = 64, mkfs_options: tuple[str, ...] = (),
               image: Path | None = None) -> Iterator[Path]:
    """A fresh ext4 image (by default beside mountpoint) mounted at mountpoint (made if
    missing, its lost+found removed); unmounted and its loop device released afterwards,
    whatever happens."""
    image = image or mountpoint.parent / f".{mountpoint.name}.img"
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(["truncate", "-s", f"{size_mb}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", *mkfs_options, str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        (mountpoint / "lost+found").rmdir()
        yield image
    finally:
        unmount(mountpoint)
        image.unlink(missing_ok=True)


def unmount(mountpoint: Path) -> None:
    """Unmount if mounted (mount -o loop releases its loop device on unmount); while a file
    on it is still open, detach it now and let the kernel finish when it is closed."""
    if os.path.ismount(mountpoint):
        gc.collect()  # a forgotten sqlite connection, say
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mountpoint)], check=True)


def mount_again(image: Path, mountpoint: Path) -> None:
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)


def device_of(path: Path) -> str:
    """The block device of the filesystem path is on."""
    return subprocess.run(["findmnt", "-n", "-o", "SOURCE", "--target", str(path)], check=True,
                          capture_output=True, text=True).stdout.strip()


def physical_offset(path: Path, offset: int) -> int:
    """Where byte `offset` of the file lies on its block device."""
    with open(path, "rb") as f:
        request = bytearray(FIEMAP_HEADER.size + MAX_EXTENTS * FIEMAP_EXTENT.size)
        FIEMAP_HEADER.pack_into(request, 0, 0, 0xFFFFFFFFFFFFFFFF, FIEMAP_FLAG_SYNC, 0, MAX_EXTENTS, 0)
        fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, request)
    mapped = FIEMAP_HEADER.unpack_from(request, 0)[3]
    for i in range(mapped):
        logical, physical, length, *_ = FIEMAP_EXTENT.unpack_from(request, FIEMAP_HEADER.size + i * FIEMAP_EXTENT.size)
        if logical <= offset < logical + length:
            return physical + offset - logical
    raise ValueError(f"byte {offset} of {path} is not mapped")


def device_offset(path: Path, offset: int) -> int:
    """Where byte `offset` of the file lies on its block device. btrfs's extent map gives
    addresses in its own logical space, which btrfs-map-logical turns into the device's (on a
    filesystem mounted with nodatasum, so that a damaged block reads back damaged rather than
    failing its checksum)."""
    where = physical_offset(path, offset)
    fstype = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)], check=True,
                            capture_output=True, text=True).stdout.strip()
    if fstype != "btrfs":
        return where
    mapped = subprocess.run(["btrfs-map-logical", "-l", str(where), device_of(path)], check=True,
                            capture_output=True, text=True).stdout
    return int(mapped.split(" physical ")[1].split()[0])


def rot(path: Path, offsets: list[int]) -> None:
    """Flip the bits of the given bytes of a file on a loop-mounted filesystem, below the
    filesystem: its size, mtime and ctime stay as they were."""
    before = path.stat()
    device = device_of(path)
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    # O_DIRECT: past the device's page cache, which may hold blocks ext4 has rewritten since.
    disk = os.open(device, os.O_RDWR | os.O_DIRECT)
    block = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT wants
    try:
        for offset in offsets:
            where = device_offset(path, offset)
            start = where - where % BLOCK
            assert os.preadv(disk, [block], start) == BLOCK
            block[where - start] ^= 0xFF
            assert os.pwritev(disk, [block], start) == BLOCK
        os.fsync(disk)
    finally:
        block.close()
        os.close(disk)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # the next read comes from the device
    finally:
        os.close(fd)
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == (before.st_size, before.st_mtime_ns,
                                                                    before.st_ctime_ns)



def fill(directory: Path, leave: int, name: str = "filler") -> Path:
    """Take the free space of directory's filesystem down to about `leave` bytes (0: full)
    with a file of its own, as another writer on the same disk would; nothing when less is
    free already."""
    path = directory / name
    with open(path, "ab") as f:
        for _ in range(32):  # metadata takes blocks too: a few steps get there
            st = os.statvfs(directory)
            more = st.f_bavail * st.f_frsize - leave
            if more < 4096:
                break
            size = os.fstat(f.fileno()).st_size
            try:
                os.posix_fallocate(f.fileno(), size, more)
            except OSError:
                with contextlib.suppress(OSError):
                    os.posix_fallocate(f.fileno(), size, more // 2)
        os.fsync(f.fileno())
    return path
