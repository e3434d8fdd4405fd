"""The runner (nasbox.runner) against callers that do not behave as `nasbox` does: requests
it must refuse whole (and go on serving), signals and departures at the moment a command
starts, and a second runner started beside the first. The callers here speak the exchange
of nasbox.relay themselves, so that each step can be taken out of turn."""
from __future__ import annotations

import json
import re
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from nasbox import relay
from nasbox.history import History
from nasbox.locks import job_lock
from tests.host.test_runner import commands_of, env, runner, started_runner, wait_for, waiting_command  # noqa: F401

pytestmark = pytest.mark.host


def request(**fields: object) -> dict[str, object]:
    """A request as a `nasbox` process sends it, with fields changed."""
    streams = [["utf-8", "strict", False, False], ["utf-8", "strict", False, False],
               ["utf-8", "backslashreplace", True, False]]
    return {"argv": ["config", "check"], "program": "nasbox", "env": dict(os.environ), "umask": 0o22,
            "streams": streams, **relay.package_identity(), **fields}


def connected() -> socket.socket:
    connection = socket.socket(socket.AF_UNIX)
    connection.settimeout(30)
    connection.connect(relay.socket_path())
    return connection


def send(connection: socket.socket, body: bytes) -> None:
    connection.sendall(relay.LENGTH.pack(len(body)) + body)


def go(connection: socket.socket, stdout: int) -> None:
    """"go", with /dev/null for input and stdout for output and errors."""
    directory = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        socket.send_fds(connection, [relay.GO], [os.open(os.devnull, os.O_RDONLY), stdout, stdout, directory])
    finally:
        os.close(directory)


def ran_config_check(runner: subprocess.Popen[str], tmp_path) -> None:
    """The runner still runs a good request to its end."""
    with connected() as connection, open(tmp_path / "out", "w+") as out:
        send(connection, json.dumps(request()).encode())
        assert relay.read_line(connection) == "ready"
        go(connection, out.fileno())
        assert relay.read_line(connection).startswith("started ")
        assert relay.read_line(connection) == "exited 0"
        out.seek(0)
        assert out.read() == "configuration is valid\n"
    wait_for(lambda: not psutil.Process(runner.pid).children(), 10, "the watcher's end")


MALFORMED = {
    "the runner itself": json.dumps(request(argv=["runner"])).encode(),
    "a service": json.dumps(request(argv=["scheduler"])).encode(),
    "no command": json.dumps(request(argv=[])).encode(),
    "arguments as one text": json.dumps(request(argv="config check")).encode(),
    "a NUL in an argument": json.dumps(request(argv=["config", "check\0"])).encode(),
    "a list": b"[1, 2]",
    "no fields": b"{}",
    "not JSON": b"{nope",
    "an environment that is a list": json.dumps(request(env=[["A", "b"]])).encode(),
    "a variable name with =": json.dumps(request(env={"A=B": "c"})).encode(),
    "a variable name empty": json.dumps(request(env={"": "c"})).encode(),
    "a value that is a number": json.dumps(request(env={"A": 1})).encode(),
    "a umask as text": json.dumps(request(umask="022")).encode(),
    "a umask out of range": json.dumps(request(umask=0o7777)).encode(),
    "a program that is not text": json.dumps(request(program=None)).encode(),
    "no streams": json.dumps(request(streams=None)).encode(),
    "two streams": json.dumps(request(streams=[None, None])).encode(),
    "a stream in no encoding": json.dumps(request(streams=[None, ["nope", "strict", False, False], None])).encode(),
    "a stream of no errors handler": json.dumps(request(streams=[None, ["utf-8", "nope", False, False], None])).encode(),
    "a stream that is empty": json.dumps(request(streams=[None, [], None])).encode(),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_request_nasbox_would_not_send_is_refused_and_the_runner_serves_on(env, runner, tmp_path, body):
    descriptors = len(os.listdir(f"/proc/{runner.pid}/fd"))
    with connected() as connection:
        send(connection, body)
        assert relay.read_line(connection).startswith("refused ")
    wait_for(lambda: not psutil.Process(runner.pid).children(), 10, "the watcher's end")
    ran_config_check(runner, tmp_path)
    assert len(os.listdir(f"/proc/{runner.pid}/fd")) == descriptors
    runner.terminate()
    log, _ = runner.communicate(timeout=30)
    assert "runner: refused a request from pid" in log and "Traceback" not in log
    assert "`nasbox config check`" in log and log.count("`nasbox") == 1  # nothing else ran


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_sent_as_the_command_starts_reaches_it(env, runner, tmp_path, signum):
    # The watcher forwards a signal that came with "go" as soon as the command is forked, when
    # it may not have made its own session yet: it still gets it, every time.
    endings = []
    with job_lock("scrub", "docs", wait=True), open(tmp_path / "out", "w") as out:  # the commands wait
        for _ in range(15):
            with connected() as connection:
                send(connection, json.dumps(request(argv=["scrub", "docs", "--now"], env=env)).encode())
                assert relay.read_line(connection) == "ready"
                go(connection, out.fileno())
                connection.sendall(f"signal {signum}\n".encode())
                connection.settimeout(10)
                assert relay.read_line(connection).startswith("started ")
                endings.append(relay.read_line(connection))
    assert set(endings) == {f"killed {signum}"}, endings
    assert History().count("scrub", "docs") == 0


def test_a_caller_gone_as_its_command_starts_takes_it_along(env, runner, tmp_path):
    with job_lock("scrub", "docs", wait=True), open(tmp_path / "out", "w") as out:  # the commands wait
        for _ in range(15):
            with connected() as connection:
                send(connection, json.dumps(request(argv=["scrub", "docs", "--now"], env=env)).encode())
                assert relay.read_line(connection) == "ready"
                go(connection, out.fileno())
        wait_for(lambda: not forks_of(runner), 10, "the commands' end")
    assert History().count("scrub", "docs") == 0


def forks_of(runner: subprocess.Popen[str]) -> list[psutil.Process]:
    """The runner's watchers and commands, its children or not (one whose watcher ended is not):
    the processes with its command line and environment (forks keep the one they were born with)."""
    forks = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        if process.info["cmdline"] == runner.args and process.info["environ"] == psutil.Process(runner.pid).environ():
            forks.append(process)
    return [fork for fork in forks if fork.pid != runner.pid]


def test_a_second_runner_leaves_the_first_its_socket(env, runner, tmp_path):
    second = subprocess.run([sys.executable, "-P", "-m", "nasbox", "runner"], env=env, text=True,
                            capture_output=True, timeout=60)
    assert second.returncode == 1 and "another runner takes commands at" in second.stdout
    ran_config_check(runner, tmp_path)


def test_a_runner_stopping_removes_only_its_own_socket(env, runner, tmp_path):
    # The first runner's socket was removed and a second runner took the path: stopping the
    # first must leave the second reachable.
    os.unlink(relay.socket_path())
    with started_runner(env) as second:
        runner.terminate()
        runner.communicate(timeout=30)
        assert os.path.exists(relay.socket_path())
        ran_config_check(second, tmp_path)


def test_a_command_whose_watcher_is_killed_is_killed_with_it(env, runner):
    # Else it would run on unseen: holding the caller's output open (a pipe's reader waits),
    # deaf to the caller's signals, and its caller already ended.
    with job_lock("scrub", "docs", wait=True):
        caller = subprocess.Popen([sys.executable, "-P", "-m", "nasbox", "scrub", "docs", "--now"], env=env,
                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        command = waiting_command(runner)
        psutil.Process(runner.pid).children()[0].kill()  # the watcher
        out, _ = caller.communicate(timeout=30)
        assert caller.returncode == 1 and "the runner lost the command before it ended; it was killed" in out
        wait_for(lambda: not forks_of(runner), 10, "the command's end")
    assert not command.is_running() or command.status() == psutil.STATUS_ZOMBIE
    assert History().count("scrub", "docs") == 0


def stdout_closed(command: list[str]) -> list[str]:
    return ["sh", "-c", 'exec "$@" >&-', "sh", *command]


def stdout_to_a_pipe_nobody_reads() -> int:
    read, write = os.pipe()
    os.close(read)
    return write


# How the caller's standard streams are made and where they lead: the command's are the same.
STREAMS = {
    "stdout on a full disk": ({}, ["config", "show", "--json"], lambda: os.open("/dev/full", os.O_WRONLY), None),
    "stdout a pipe nobody reads": ({"PYTHONUNBUFFERED": ""}, ["config", "show", "--json"],
                                   stdout_to_a_pipe_nobody_reads, None),
    "stdout unbuffered, a pipe nobody reads": ({"PYTHONUNBUFFERED": "1"}, ["config", "show", "--json"],
                                               stdout_to_a_pipe_nobody_reads, None),
    "stdout closed": ({}, ["scrub", "nope", "--now"], None, stdout_closed),
    "stdin closed": ({}, ["scrub", "nope", "--now"], None,
                     lambda command: ["sh", "-c", 'exec "$@" <&-', "sh", *command]),
    "output in latin-1": ({"PYTHONIOENCODING": "latin-1"}, ["scrub", "nope\u00e9", "--now"], None, None),
}


@pytest.mark.parametrize(("extra", "args", "stdout", "wrap"), STREAMS.values(), ids=STREAMS.keys())
def test_the_command_writes_as_its_caller_would_alone(env, runner, tmp_path, extra, args, stdout, wrap):
    endings = []
    for relayed in (True, False):
        if not relayed:
            os.rename(relay.socket_path(), tmp_path / "aside.sock")
        command = [sys.executable, "-P", "-m", "nasbox", *args]
        out = stdout() if stdout else subprocess.PIPE
        done = subprocess.run(wrap(command) if wrap else command, env={**env, **extra}, stdout=out,
                              stderr=subprocess.PIPE, timeout=60)
        if stdout:
            os.close(out)
        endings.append((done.returncode, *(re.sub(rb"\d{4}-\d\d-\d\dT[0-9:+]+ ", b"", output or b"")
                                           for output in (done.stdout, b"\n".join(done.stderr.splitlines()[-2:])))))
    assert endings[0] == endings[1]
    assert endings[0][1] or endings[0][2], "the command said nothing"


def test_ctrl_z_stops_the_command_and_fg_goes_on_with_it(env, runner):
    with job_lock("scrub", "docs", wait=True):
        caller = subprocess.Popen([sys.executable, "-P", "-m", "nasbox", "scrub", "docs", "--now"], env=env,
                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        command = waiting_command(runner)
        caller.send_signal(signal.SIGTSTP)
        wait_for(lambda: command.status() == psutil.STATUS_STOPPED, 10, "the command stopped")
        wait_for(lambda: psutil.Process(caller.pid).status() == psutil.STATUS_STOPPED, 10, "the caller stopped")
        caller.send_signal(signal.SIGCONT)
        wait_for(lambda: command.status() != psutil.STATUS_STOPPED, 10, "the command going on")
    out, _ = caller.communicate(timeout=60)
    assert caller.returncode == 0 and "20 new" in out, out


WITHOUT_READING_ALL = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
                       "--inh-caps", "-dac_override,-dac_read_search"]  # root, that reads only what it may


def test_a_caller_in_a_directory_it_may_enter_but_not_read_has_its_command_run(env, runner, tmp_path):
    enter_only = tmp_path / "enter-only"
    enter_only.mkdir(mode=0o111)
    done = subprocess.run([*WITHOUT_READING_ALL, sys.executable, "-P", "-m", "nasbox", "config", "check"], env=env,
                          cwd=enter_only, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "configuration is valid\n"), done.stderr


def test_a_caller_with_fewer_privileges_gains_none(env, runner, tmp_path):
    # Root without the capability to read others' files: its command may not read them either.
    others = tmp_path / "nasbox.yaml"
    others.write_text("scrub: {}\n")
    os.chown(others, 1000, 1000)
    others.chmod(0o600)
    endings = []
    for relayed in (True, False):
        if not relayed:
            os.rename(relay.socket_path(), tmp_path / "aside.sock")
        done = subprocess.run([*WITHOUT_READING_ALL, sys.executable, "-P", "-m", "nasbox", "config", "check"],
                              env={**env, "NASBOX_CONFIG": str(others)}, capture_output=True, text=True, timeout=60)
        endings.append((done.returncode, done.stdout, done.stderr))
    assert endings[0] == endings[1]
    assert endings[0][0] != 0 and "Permission denied" in endings[0][1] + endings[0][2]


# A caller started with other priorities or limits than the runner's, and how to see them.
STANDINGS = {
    "nice": (["nice", "-n", "19"], lambda process: process.nice() == 19),
    "ionice": (["ionice", "-c", "3"], lambda process: process.ionice().ioclass == psutil.IOPRIO_CLASS_IDLE),
    "an idle scheduling policy": (["chrt", "-i", "0"], lambda process: os.sched_getscheduler(process.pid) == os.SCHED_IDLE),
    "one CPU": (["taskset", "-c", "0"], lambda process: process.cpu_affinity() == [0]),
    "a limit": (["prlimit", "--nofile=500"], lambda process: process.rlimit(psutil.RLIMIT_NOFILE) == (500, 500)),
}


@pytest.mark.parametrize(("wrapper", "has_it"), STANDINGS.values(), ids=STANDINGS.keys())
def test_a_job_runs_with_its_callers_priorities_and_limits(env, runner, wrapper, has_it):
    with job_lock("scrub", "docs", wait=True):
        caller = subprocess.Popen([*wrapper, sys.executable, "-P", "-m", "nasbox", "scrub", "docs", "--now"], env=env,
                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(2)  # where the job waits for its lock: in the runner or in its caller
        running = commands_of(runner) or [psutil.Process(caller.pid)]
        assert has_it(running[0])
    out, _ = caller.communicate(timeout=60)
    assert caller.returncode == 0 and "20 new" in out, out


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT])
def test_a_signal_the_caller_ignores_leaves_its_command_alone(env, runner, signum):
    # `nohup nasbox ...`, or a shell's background job (which ignores SIGINT): alone, it runs on.
    with job_lock("scrub", "docs", wait=True):
        caller = subprocess.Popen(["sh", "-c", f'trap "" {signum}; exec "$@"', "sh", sys.executable, "-P", "-m",
                                   "nasbox", "scrub", "docs", "--now"], env=env, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        command = waiting_command(runner)
        caller.send_signal(signum)
        time.sleep(1)
        assert command.is_running() and caller.poll() is None
    out, _ = caller.communicate(timeout=60)
    assert caller.returncode == 0 and "20 new" in out, out


def test_a_caller_slow_to_say_go_runs_its_command_itself_once(env, runner):
    # Held up between the runner's "ready" and its "go" longer than the runner waits (a loaded
    # machine, Ctrl-Z): the runner gives up on it, and it runs the command in its own process.
    late = ("import sys, time; from nasbox import relay; go = relay.send_go; "
            f"relay.send_go = lambda connection: (time.sleep({relay.HANDSHAKE_S + 1}), go(connection)); "
            "sys.exit(relay.main(['scrub', 'docs', '--now']))")
    done = subprocess.run([sys.executable, "-P", "-c", late], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "20 new" in done.stdout, done.stdout + done.stderr
    assert History().count("scrub", "docs") == 1
    assert not commands_of(runner)
