"""Running programs: one stopped at its time limit takes the programs it started with it."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from nasbox import commands


def test_a_program_stopped_at_its_time_limit_takes_its_children_with_it(tmp_path: Path) -> None:
    """As restic's ssh or rclone: a child that would go on alone, holding its connection."""
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    with pytest.raises(subprocess.TimeoutExpired):
        commands.run(["sh", "-c", script], timeout=1, check=False)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; its new parent reaps it


def test_a_program_within_its_time_limit_is_run_as_before() -> None:
    ran = commands.run(["sh", "-c", "cat; echo err >&2; exit 3"], stdin="in\n", check=False, separate_stderr=True)
    assert (ran.returncode, ran.stdout, ran.stderr) == (3, "in\n", "err\n")
    with pytest.raises(commands.CommandError, match="exited 3"):
        commands.run(["sh", "-c", "exit 3"])
    assert commands.run(["pwd"], cwd=os.fsencode("/tmp")).stdout == "/tmp\n"
