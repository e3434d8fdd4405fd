"""Run a program that reads a file nasbox holds open, without giving it a path to that file.

`python -m nasbox.scrub.fdmount FD TARGET PROGRAM [ARG...]`, started in a mount namespace of
its own (`unshare --mount`): bind-mounts the file FD holds, read-only, onto TARGET (an empty
file in a private directory), then becomes PROGRAM. The program sees a regular file at
TARGET that is the very file nasbox opened, whatever happens meanwhile to the names in the
user's directory; the mount is gone when the program ends, as its namespace goes with it.
"""

from __future__ import annotations

import os
import sys

from nasbox import commands

FAILED = 71  # EX_OSERR: the mount could not be made (no CAP_SYS_ADMIN, no namespace)


def main(argv: list[str]) -> int:
    fd, target, program = int(argv[0]), argv[1], argv[2:]
    # mount(8) opens /proc/self/fd/FD in its own process, which inherits FD.
    result = commands.run(["mount", "--bind", "-o", "ro", f"/proc/self/fd/{fd}", target], check=False, pass_fds=(fd,))
    if result.returncode != 0:
        sys.stderr.write(result.stdout)
        return FAILED
    os.execv(program[0], program)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
