"""The runner (nasbox.runner) and the `nasbox` program handing it commands (nasbox.relay):
a command it runs behaves as the same command in a process of its own (output, exit codes,
signals, the caller's directory and environment), a caller that goes takes its command with
it, and nobody but root, and no other nasbox, gets a command run. Real processes throughout:
the runner as the image's supervisor starts it, callers as people and the scheduler do."""
from __future__ import annotations

import json
import os
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from nasbox import relay
from nasbox.history import History
from nasbox.locks import job_lock
from nasbox.relay import Handed
from nasbox.scheduler import signal_run, start_run
from nasbox.schedules import ScheduleEntry
from nasbox.stop import STOP_WAIT_S

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(20):
        (data / f"f{i}.txt").write_text(f"file {i}\n")
    return {**os.environ, "PYTHONPATH": str(REPO), "NASBOX_CONFIG": "/dev/null",
            "SCRUB_DOCS": f"{data} .pardatabase 5% weekly"}


@pytest.fixture
def runner(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    with started_runner(env) as process:
        yield process


@contextmanager
def started_runner(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The runner, as the image's supervisor starts it, taking commands (NASBOX_RUN_DIR: env's,
    which must be this process's too)."""
    process = subprocess.Popen([sys.executable, "-P", "-m", "nasbox", "runner"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: os.path.exists(relay.socket_path()) or process.poll() is not None, 30, "the runner's socket")
        assert process.poll() is None, process.communicate()[0]
        yield process
    finally:
        if process.returncode is None:  # not ended and read by the test
            process.terminate()
            process.communicate(timeout=STOP_WAIT_S + 10)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def nasbox(env: dict[str, str], *args: str, **options) -> subprocess.Popen[str]:
    """`nasbox ARGS` as from a terminal: with the signals a shell's background job or `nohup`
    would have ignored (and the test run may have inherited) back to their defaults."""
    return subprocess.Popen([sys.executable, "-P", "-m", "nasbox", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_signals, **options)


def default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def ran(env: dict[str, str], *args: str, **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-P", "-m", "nasbox", *args], env=env, text=True, capture_output=True,
                          timeout=120, **options)


def commands_of(runner: subprocess.Popen[str]) -> list[psutil.Process]:
    """The commands the runner is running (the watchers' children)."""
    return [command for watcher in psutil.Process(runner.pid).children() for command in watcher.children()]


def waiting_command(runner: subprocess.Popen[str]) -> psutil.Process:
    """The one command the runner runs, once it waits for its job's lock."""
    wait_for(lambda: len(commands_of(runner)) == 1, 30, "the command in the runner")
    command = commands_of(runner)[0]
    wait_for_the_lock(command.pid)
    return command


def wait_for_the_lock(pid: int) -> None:
    """Until the job's command waits for its lock: it catches SIGTERM from then on (a stop
    ends it as "stopped before it started"); give it a moment more to reach the wait."""
    def catches_sigterm() -> bool:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        return bool(caught >> (signal.SIGTERM - 1) & 1)
    wait_for(catches_sigterm, 30, "the command's wait for its lock")
    time.sleep(0.3)


def test_a_command_runs_in_the_runner_as_it_would_alone(env, runner, tmp_path):
    with job_lock("scrub", "docs", wait=True):  # the command waits for it, in the runner
        caller = nasbox(env, "scrub", "docs", "--now")
        command = waiting_command(runner)
        assert os.getsid(command.pid) == command.pid  # a session of its own, as the scheduler starts jobs
        assert caller.pid not in [p.pid for p in psutil.Process(runner.pid).children(recursive=True)]
    out, err = caller.communicate(timeout=60)
    assert caller.returncode == 0, out + err
    assert "scrub docs: info: 20 files" in out and "20 new" in out
    assert History().count("scrub", "docs") == 1
    runner.terminate()
    log, _ = runner.communicate(timeout=30)
    assert f"runner: `nasbox scrub docs --now` for pid {caller.pid}, as pid {command.pid}" in log


def test_a_command_has_the_same_outcome_with_and_without_the_runner(env, runner, tmp_path):
    no_such = ran(env, "scrub", "nope", "--now")
    invalid = ran({**env, "SCRUB_BAD": "only-one-word"}, "config", "check")
    os.rename(relay.socket_path(), tmp_path / "aside.sock")  # the same commands without the runner
    assert ran(env, "scrub", "nope", "--now").stdout[25:] == no_such.stdout[25:]  # past the time stamp
    alone = ran({**env, "SCRUB_BAD": "only-one-word"}, "config", "check")
    assert (invalid.returncode, invalid.stdout, invalid.stderr) == (alone.returncode, alone.stdout, alone.stderr)
    assert no_such.returncode == 2 and invalid.returncode == 78 and "SCRUB_BAD" in invalid.stderr


def test_the_command_has_the_callers_directory_and_environment(env, runner, tmp_path):
    here = tmp_path / "elsewhere"
    here.mkdir()
    (here / "nasbox.yaml").write_text(json.dumps({"scrub": {"photos": {
        "directory": str(tmp_path / "data"), "database": ".photos-parity", "redundancy": "7%", "schedule": "daily"}}}))
    # A relative NASBOX_CONFIG is found from the caller's working directory; SYNC_NEW is in the
    # caller's environment only.
    shown = ran({**env, "NASBOX_CONFIG": "nasbox.yaml", "SYNC_NEW": f"{tmp_path / 'data'} /tmp/b daily"},
                "config", "show", "--json", cwd=here)
    assert shown.returncode == 0, shown.stderr
    jobs = json.loads(shown.stdout)["jobs"]
    assert jobs["scrub"]["photos"]["redundancy"] == 7 and "new" in jobs["sync"]
    assert not commands_of(runner)  # nothing of it is left


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_the_caller_ends_the_command_as_it_would_end_alone(env, runner, tmp_path, signum):
    endings = []
    for relayed in (True, False):
        if not relayed:
            os.rename(relay.socket_path(), tmp_path / "aside.sock")
        with job_lock("scrub", "docs", wait=True):
            caller = nasbox(env, "scrub", "docs", "--now", start_new_session=True)
            if relayed:
                command = waiting_command(runner)
            else:
                wait_for_the_lock(caller.pid)
            caller.send_signal(signum)
            out, err = caller.communicate(timeout=30)
        endings.append((caller.returncode, "stopped before it started" in out))
        if relayed:
            wait_for(lambda: not command.is_running(), 10, "the command's end")
    assert endings[0] == endings[1], endings


def test_a_caller_killed_takes_its_command_with_it(env, runner):
    with job_lock("scrub", "docs", wait=True):
        caller = nasbox(env, "scrub", "docs", "--now")
        command = waiting_command(runner)
        caller.kill()
        caller.communicate()
        wait_for(lambda: not command.is_running() or command.status() == psutil.STATUS_ZOMBIE, 10,
                 "the command's end")
    wait_for(lambda: not psutil.Process(runner.pid).children(), 10, "the watcher's end")
    assert History().count("scrub", "docs") == 0  # killed before it started: nothing ran


def test_a_command_killed_ends_its_caller_the_same_way(env, runner):
    with job_lock("scrub", "docs", wait=True):
        caller = nasbox(env, "scrub", "docs", "--now")
        waiting_command(runner).kill()
        caller.communicate(timeout=30)
    assert caller.returncode == -signal.SIGKILL


def test_stopping_the_runner_stops_its_commands_then_it_is_gone(env, runner):
    with job_lock("scrub", "docs", wait=True):
        caller = nasbox(env, "scrub", "docs", "--now")
        waiting_command(runner)
        started = time.monotonic()
        runner.terminate()
        out, _ = caller.communicate(timeout=STOP_WAIT_S + 10)
        runner.wait(timeout=STOP_WAIT_S + 10)
    assert time.monotonic() - started < 5
    assert caller.returncode == 75 and "stopped before it started" in out
    assert not os.path.exists(relay.socket_path())
    done = ran(env, "scrub", "docs", "--now")  # without a runner, in its own process
    assert done.returncode == 0 and "20 new" in done.stdout


def test_only_root_may_hand_it_a_command(env, monkeypatch):
    # A run directory another user can reach (the test's own is inside 0700 directories).
    open_run_dir = tempfile.mkdtemp(prefix="nasbox-runner-")
    monkeypatch.setenv("NASBOX_RUN_DIR", open_run_dir)
    try:
        with started_runner({**env, "NASBOX_RUN_DIR": open_run_dir}) as runner:
            path = relay.socket_path()
            assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(open_run_dir).st_mode & 0o777 == 0o700
            os.chmod(path, 0o666)  # as if the socket were open to all: the runner still asks who calls
            os.chmod(open_run_dir, 0o755)
            probe = ("import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                     "print(repr(s.recv(100)))")
            answered = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                                       "-c", probe, path], capture_output=True, text=True, timeout=30)
            assert answered.returncode == 0 and answered.stdout.strip() == "b''", answered.stdout + answered.stderr
            runner.terminate()
            log, _ = runner.communicate(timeout=30)
        assert "refused a command from pid" in log and "(uid 65534)" in log
    finally:
        shutil.rmtree(open_run_dir)


def request_with(package: str) -> bytes:
    """A request as nasbox.relay sends it, from the nasbox package at package."""
    return json.dumps({"argv": ["scrub", "docs", "--now"], "program": "nasbox", "env": {}, "umask": 0o22,
                       "streams": [None, None, None], "package": package, "python": sys.executable}).encode()


def test_another_nasbox_is_refused_and_the_caller_runs_its_command_itself(env, runner, tmp_path):
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(relay.socket_path())
        body = request_with("/elsewhere/nasbox")
        connection.sendall(relay.LENGTH.pack(len(body)) + body)
        assert relay.read_line(connection) == "refused another nasbox package or Python"
    assert History().count("scrub", "docs") == 0


def test_a_runner_that_does_not_answer_leaves_the_command_to_its_caller_once(env, runner):
    runner.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        done = ran(env, "scrub", "docs", "--now")
        assert relay.HANDSHAKE_S <= time.monotonic() - started < relay.HANDSHAKE_S + 30
        assert done.returncode == 0 and "20 new" in done.stdout
    finally:
        runner.send_signal(signal.SIGCONT)
    time.sleep(1)  # the runner now reads the request its caller gave up on
    wait_for(lambda: not psutil.Process(runner.pid).children(), 10, "the watcher's end")
    assert History().count("scrub", "docs") == 1


def test_a_command_handed_over_loads_none_of_nasbox(env, runner):
    traced = ran({**env, "PYTHONPROFILEIMPORTTIME": "1"}, "scrub", "docs", "--now")
    assert traced.returncode == 0 and "20 new" in traced.stdout
    lines = [line.rsplit("|", 1)[-1].strip() for line in traced.stderr.splitlines() if line.startswith("import time:")]
    names = set(lines[lines.index("site") + 1 :])  # after Python's own start (site and its .pth files)
    assert {"nasbox.relay", "socket"} <= names
    assert not names & {"nasbox.cli", "nasbox.state", "nasbox.config", "yaml", "jsonschema", "argparse", "psutil",
                        "pathlib"}


def test_the_scheduler_hands_its_runs_to_the_runner(env, runner, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the scheduler's environment is its runs'
    entry = ScheduleEntry("scrub", "docs", "0 4 * * 0")
    with job_lock("scrub", "docs", wait=True):
        stopped = start_run(entry, "scheduled")
        assert isinstance(stopped, Handed) and stopped.pid == waiting_command(runner).pid
        signal_run(stopped, signal.SIGTERM)  # as the scheduler stops its runs
        assert stopped.wait() == 75  # stopped before it started
        killed = start_run(entry, "scheduled")
        command = waiting_command(runner)
        signal_run(killed, signal.SIGKILL)  # after STOP_WAIT_S
        assert killed.wait() == -signal.SIGKILL and not command.is_running()
    done = start_run(entry, "scheduled")
    wait_for(lambda: done.poll() is not None, 60, "the scheduled run's end")
    assert done.returncode == 0
    last = History().last("scrub", "docs")
    assert last is not None and last.trigger == "scheduled" and "20 new" in last.summary
    os.unlink(relay.socket_path())  # no runner: a child process, as before
    alone = start_run(entry, "scheduled")
    assert isinstance(alone, subprocess.Popen) and alone.wait(timeout=60) == 0
