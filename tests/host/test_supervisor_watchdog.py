"""The watchdog stops a real supervisord when a program cannot be kept running, so that the
container exits and its restart policy applies."""
from __future__ import annotations

import subprocess
import time

import pytest

from nasbox import supervisor

pytestmark = pytest.mark.host


def start(tmp_path, programs):
    conf = tmp_path / "supervisord.conf"
    conf.write_text(supervisor.render(programs, tmp_path, "info"))
    return subprocess.Popen([str(supervisor.SUPERVISORD), "--nodaemon", "--configuration", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_supervisord_exits_when_a_program_is_fatal(tmp_path):
    process = start(tmp_path, [supervisor.Program("broken", ["false"])])
    try:
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert "gave up: broken entered FATAL state" in out
    assert "broken cannot be kept running; stopping the container" in out


def test_supervisord_keeps_running_healthy_programs(tmp_path):
    process = start(tmp_path, [supervisor.Program("sleeper", ["sleep", "600"], start_seconds=1)])
    try:
        time.sleep(4)
        assert process.poll() is None  # the watchdog leaves a healthy supervisord alone
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert "success: sleeper entered RUNNING state" in out
    assert process.returncode == 0  # SIGTERM is a clean stop
