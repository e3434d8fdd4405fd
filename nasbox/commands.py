"""The one place nasbox runs external programs to completion. (Three start a program and do
not wait for it here: the scheduler its job runs, the login ban smbd, `nasbox run`
supervisord, which replaces it; each says why.)

Command lines are argument lists (never a shell) and never hold secrets: passwords travel on
stdin or in files of mode 0600, so logging a command line is always safe. The programs get
nasbox's environment without its secret-bearing variables.
"""
from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence

from nasbox.config.environment import child_environment

log = logging.getLogger(__name__)


class CommandError(Exception):
    def __init__(self, argv: Sequence[str], returncode: int, output: str):
        tail = output.strip().splitlines()[-5:]
        super().__init__(f"{argv[0]} exited {returncode}" + (": " + " | ".join(tail) if tail else ""))
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output


def run(argv: Sequence[str | bytes], *, stdin: str | None = None, check: bool = True,
        timeout: float | None = 120, separate_stderr: bool = False, cwd: bytes | None = None,
        pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run argv to completion, its output captured as text: stdout and stderr together, or
    apart with separate_stderr. Bytes arguments (file names need not be UTF-8) are fine.
    cwd and pass_fds: the working directory and the descriptors the program gets."""
    shown = [os.fsdecode(a) for a in argv]
    log.debug("running %s", " ".join(shown))
    result = subprocess.run(
        list(argv), input=stdin, stdout=subprocess.PIPE, env=child_environment(os.environ),
        stderr=subprocess.PIPE if separate_stderr else subprocess.STDOUT,
        text=True, errors="replace", timeout=timeout, check=False, cwd=cwd, pass_fds=pass_fds,
    )
    if check and result.returncode != 0:
        raise CommandError(shown, result.returncode, result.stdout + (result.stderr or ""))
    return result
