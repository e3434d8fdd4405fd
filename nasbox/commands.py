"""The one place nasbox runs external programs.

Command lines are argument lists (never a shell) and never hold secrets: passwords travel on
stdin or in files of mode 0600, so logging a command line is always safe.
"""
from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)


class CommandError(Exception):
    def __init__(self, argv: Sequence[str], returncode: int, output: str):
        tail = output.strip().splitlines()[-5:]
        super().__init__(f"{argv[0]} exited {returncode}" + (": " + " | ".join(tail) if tail else ""))
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True,
        timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    """Run argv to completion with stdout and stderr captured together."""
    log.debug("running %s", " ".join(argv))
    result = subprocess.run(
        list(argv), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=timeout, check=False,
    )
    if check and result.returncode != 0:
        raise CommandError(argv, result.returncode, result.stdout)
    return result
