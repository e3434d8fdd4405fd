"""The exit codes of every nasbox command (sysexits where one fits)."""

from __future__ import annotations

DONE = 0  # done; for a job: good, info or warning
ERROR = 1  # a job ended in error (or a command failed)
USAGE = 2  # wrong arguments, or a job name that is not configured
SKIPPED = 75  # a job did not run: busy with --no-wait, a mount down, held by a safety check
CONFIG = 78  # the configuration is invalid; every problem is listed
