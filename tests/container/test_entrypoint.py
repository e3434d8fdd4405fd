"""The image's entrypoint: a nasbox verb runs nasbox, anything else runs as given, so that
`docker compose run --rm nasbox config check` works as people type it."""
from __future__ import annotations

import pytest

from tests.container.helpers import IMAGE, docker

pytestmark = pytest.mark.container


def test_a_verb_runs_nasbox_and_anything_else_runs_as_given() -> None:
    check = docker("run", "--rm", "-e", "SHARE_A=write a /data/a alice:pw", IMAGE, "config", "check", timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    bad = docker("run", "--rm", "-e", "SHARE_A=rw a /data/a alice:pw", IMAGE, "config", "check", timeout=60)
    assert bad.returncode == 78 and "env SHARE_A: access" in bad.stderr, bad.stderr
    shown = docker("run", "--rm", IMAGE, "nasbox", "--help", timeout=60)
    assert shown.returncode == 0 and "COMMAND" in shown.stdout
    # `mount` is a verb of nasbox's and a program on PATH: the verb wins.
    mounts = docker("run", "--rm", "-e", "MOUNT_OLD=/mnt/old nas1 u:p docs /", IMAGE, "mount", "--status", timeout=60)
    assert mounts.returncode == 0, mounts.stdout + mounts.stderr
    assert mounts.stdout.strip() == "old: //nas1/docs on /mnt/old: NOT MOUNTED  (not tried yet)", mounts.stdout
    other = docker("run", "--rm", IMAGE, "sh", "-c", "echo from a shell; id -u", timeout=60)
    assert other.returncode == 0 and other.stdout.split() == ["from", "a", "shell", "0"], other.stdout


@pytest.mark.parametrize("argv, code, said", [
    (["--help"], 0, "COMMAND"),  # an option is nasbox's
    (["no-such-program"], 127, "entrypoint: 'no-such-program' is neither a nasbox command"),
    ([""], 127, "entrypoint: '' is neither a nasbox command"),
])
def test_odd_arguments_get_an_answer_not_a_traceback(argv: list[str], code: int, said: str) -> None:
    result = docker("run", "--rm", IMAGE, *argv, timeout=60)
    assert result.returncode == code, result.stdout + result.stderr
    assert said in result.stdout + result.stderr and "Traceback" not in result.stderr, result.stderr
