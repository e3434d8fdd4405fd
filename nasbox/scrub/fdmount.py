"""Run a program that reads a file nasbox holds open, without giving it a path to that file.

`python -m nasbox.scrub.fdmount FD TARGET PROGRAM [ARG...]` mounts the file FD holds,
read-only, onto TARGET (an empty file in a private directory) in a mount namespace of its
own, then becomes PROGRAM. The program sees at TARGET a regular file that is the very file
nasbox opened, whatever happens meanwhile to the names in the user's directory; the mount
is gone when the program ends, as its namespace goes with it. Needs CAP_SYS_ADMIN.

The mount is made from the descriptor itself, never from a path: mount(8) would turn
/proc/self/fd/FD into the file's path (which a user could swap), and the kernel refuses to
bind a descriptor opened in another namespace. So the file's mount is cloned through the
descriptor (open_tree) while still in nasbox's namespace, then attached in the new one
(move_mount).
"""

from __future__ import annotations

import ctypes
import os
import sys

FAILED = 71  # EX_OSERR: the mount could not be made (no CAP_SYS_ADMIN, an old kernel, ...)

# Linux's numbers for these calls are the same on every architecture (they came after 5.0).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
CLONE_NEWNS = 0x20000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


def mount_held_file(fd: int, target: str) -> None:
    """The file fd holds, read-only at target, in a new mount namespace of this process only."""
    libc = ctypes.CDLL(None, use_errno=True)
    tree = _check(libc.syscall(SYS_OPEN_TREE, fd, b"", OPEN_TREE_CLONE | os.O_CLOEXEC | AT_EMPTY_PATH))
    _check(libc.unshare(CLONE_NEWNS))
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None))  # nothing leaks back out
    path = os.fsencode(target)
    _check(libc.syscall(SYS_MOVE_MOUNT, tree, b"", -100, path, MOVE_MOUNT_F_EMPTY_PATH))  # -100: AT_FDCWD
    _check(libc.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None))
    os.close(tree)


def _check(result: int) -> int:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    return result


def main(argv: list[str]) -> int:
    fd, target, program = int(argv[0]), argv[1], argv[2:]
    try:
        mount_held_file(fd, target)
    except OSError as e:
        sys.stderr.write(f"cannot mount the file held open as {fd} on {target}: {e.strerror}\n")
        return FAILED
    os.execv(program[0], program)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
