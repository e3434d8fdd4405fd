"""Which commands `nasbox` hands to the runner: every command is either handed over or named
here as one that runs in its own process, so that a new command is placed on purpose."""
from __future__ import annotations

from nasbox.cli import verbs
from nasbox.kinds import KINDS
from nasbox.relay import RELAYED

# The services the supervisor keeps (the runner itself among them), the health check (which
# must not depend on the runner), and `mount`, whose --keep is the supervised mount keeper.
IN_THEIR_OWN_PROCESS = {"run", "runner", "scheduler", "web", "smbd", "health", "supervisor-watchdog", "mount"}


def test_every_command_is_placed():
    assert verbs() == RELAYED | IN_THEIR_OWN_PROCESS
    assert not RELAYED & IN_THEIR_OWN_PROCESS


def test_every_job_kind_is_handed_over():
    assert set(KINDS) <= RELAYED
