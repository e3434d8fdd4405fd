"""Repairing a corrupt file without ever writing through a symlink or reverting an edit.

par2 works on copies in a private directory inside DATABASE, so it never sees a link and its
backups (`file.1`) never reach DIRECTORY. The repaired copy is checked against the MD5 par2
recorded, then written beside the original under a temporary name, given the original's
mode, owner, extended attributes and times, and renamed over it, but only if the original
still has the size, mtime and inode that were verified: an edit made meanwhile wins.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from dataclasses import dataclass

from nasbox import commands
from nasbox.scrub import par2
from nasbox.scrub.catalog import Entry

CHUNK = 1 << 20
# Temporary names of repaired files beside their originals; a run that dies leaves one
# behind, which the next run removes (the walk never protects such a name).
TEMP_PREFIX = b".nasbox-repair-"
TEMP_SUFFIX = b".tmp"


def is_repair_temp(name: bytes) -> bool:
    middle = name[len(TEMP_PREFIX):-len(TEMP_SUFFIX)]
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) and len(middle) == 32 and all(
        c in b"0123456789abcdef" for c in middle)


@dataclass(frozen=True)
class Outcome:
    repaired: bool
    detail: str


def open_directory(root: bytes, relative: bytes) -> int:
    """A descriptor of root/relative reached without following any symlink below root."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in [p for p in relative.split(b"/") if p]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def md5_of_fd(fd: int) -> bytes:
    digest = hashlib.md5()
    while chunk := os.read(fd, CHUNK):
        digest.update(chunk)
    return digest.digest()


def same_file(st: os.stat_result, entry: Entry) -> bool:
    return stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns, st.st_ino) == (
        entry.size, entry.mtime_ns, entry.inode)


def repair(directory: bytes, parity_dir: bytes, work_root: bytes, entry: Entry) -> Outcome:
    """Repair DIRECTORY/entry.dir/entry.name from its parity in parity_dir."""
    work = os.path.join(work_root, uuid.uuid4().hex.encode())
    os.makedirs(work, mode=0o700)
    try:
        return _repair_in(work, directory, parity_dir, entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _repair_in(work: bytes, directory: bytes, parity_dir: bytes, entry: Entry) -> Outcome:
    relative = os.path.join(entry.dir, entry.name)
    dir_fd = open_directory(directory, entry.dir)
    try:
        # 1. Copy the damaged file and its parity into the private directory.
        src = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
        try:
            original = os.fstat(src)
            if not same_file(original, entry):
                return Outcome(False, "changed since it was verified; left as it is")
            copy = os.path.join(work, par2.path_as_par2_reads_it(relative))
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            with open(copy, "wb") as out:
                while chunk := os.read(src, CHUNK):
                    out.write(chunk)
            xattrs = {name: os.getxattr(src, name) for name in _listxattr(src)}
        finally:
            os.close(src)
        parity_copy = os.path.join(work, b".parity")
        os.mkdir(parity_copy)
        for name in (entry.name + b".par2", *entry.volumes):  # under a name without wildcards
            try:
                shutil.copyfile(os.path.join(parity_dir, name), os.path.join(parity_copy, b"p" + name[len(entry.name):]))
            except FileNotFoundError:
                return Outcome(False, "corrupt, and its parity is missing; left as it is")

        # 2. par2 repairs the copy; the result must match what par2 recorded at creation.
        result = commands.run(par2.repair(work, os.path.join(parity_copy, b"p.par2")), check=False, timeout=None)
        if result.returncode != 0:
            return Outcome(False, f"beyond repair (par2 exited {result.returncode}); left as it is")
        with open(copy, "rb") as repaired:
            if os.fstat(repaired.fileno()).st_size != entry.size or md5_of_fd(repaired.fileno()) != entry.md5:
                return Outcome(False, "par2's result does not match the recorded checksum; left as it is")

        # 3. Put it in place beside the original, with the original's metadata.
        temp = TEMP_PREFIX + uuid.uuid4().hex.encode() + TEMP_SUFFIX
        out_fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        try:
            with open(copy, "rb") as repaired, os.fdopen(os.dup(out_fd), "wb") as out:
                shutil.copyfileobj(repaired, out, CHUNK)
            os.fchown(out_fd, original.st_uid, original.st_gid)
            os.fchmod(out_fd, stat.S_IMODE(original.st_mode))
            for name, value in xattrs.items():
                _setxattr(out_fd, name, value)
            os.fsync(out_fd)
        finally:
            os.close(out_fd)
        os.utime(temp, ns=(original.st_atime_ns, original.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
        try:
            if not same_file(os.stat(entry.name, dir_fd=dir_fd, follow_symlinks=False), entry):
                os.unlink(temp, dir_fd=dir_fd)
                return Outcome(False, "edited during the repair; the edit is kept")
            os.replace(temp, entry.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(temp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            raise
        os.fsync(dir_fd)
        return Outcome(True, "repaired")
    finally:
        os.close(dir_fd)


def _listxattr(fd: int) -> list[str]:
    try:
        return os.listxattr(fd)
    except OSError:
        return []


def _setxattr(fd: int, name: str, value: bytes) -> None:
    try:
        os.setxattr(fd, name, value)
    except OSError:
        pass  # e.g. a security.* attribute this process may not set
