"""`nasbox scrub` and `scrub` from the command line: its exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox.locks import job_lock
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host


def run(args: list[str], env: dict[str, str], program: str = "nasbox") -> subprocess.CompletedProcess[str]:
    entry = "main" if program == "nasbox" else "scrub_main"
    argv = [sys.executable, "-c", f"import sys; from nasbox.relay import {entry} as m; sys.exit(m())", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env={**{k: os.environ[k] for k in ("PATH", "NASBOX_HOME", "NASBOX_RUN_DIR")},
                               "NASBOX_CONFIG": "/dev/null", **env})


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with loop_mount(tmp_path / "data"):  # so that corrupt() can damage files as a failing disk does
        (tmp_path / "data" / "f.bin").write_bytes(os.urandom(100_000))
        yield {"SCRUB_DOCS": f"{tmp_path}/data .pardatabase 5% weekly"}


def corrupt(path: Path, offsets: range) -> None:
    rot(path, list(offsets))


def test_exit_codes(env, tmp_path):
    assert run(["scrub", "--now"], env).returncode == 0
    corrupt(tmp_path / "data" / "f.bin", range(10, 20))
    repaired = run(["--now"], env, program="scrub")  # `scrub` on PATH is `nasbox scrub`
    assert repaired.returncode == 0 and "warning" in repaired.stdout, repaired.stdout
    corrupt(tmp_path / "data" / "f.bin", range(0, 100_000, 1000))
    beyond = run(["scrub", "docs", "--now"], env)
    assert beyond.returncode == 1 and "beyond repair" in beyond.stdout


def test_usage_errors_exit_2(env):
    assert run(["scrub"], env).returncode == 2  # --now is required
    unknown = run(["scrub", "nosuchjob", "--now"], env)
    assert unknown.returncode == 2 and "no scrub job named nosuchjob" in unknown.stdout


def test_no_wait_exits_75_while_the_job_runs(env):
    with job_lock("scrub", "docs", wait=True):  # as a running scrub holds it
        busy = run(["scrub", "--now", "--no-wait"], env)
    assert busy.returncode == 75 and "scrub docs is running already" in busy.stdout
    assert not (Path(env["SCRUB_DOCS"].split()[0]) / ".pardatabase").exists()  # nothing ran


def test_missing_directory_exits_75(tmp_path):
    result = run(["scrub", "--now"], {"SCRUB_X": f"{tmp_path}/absent db 5% daily"})
    assert result.returncode == 75 and "is missing" in result.stdout
