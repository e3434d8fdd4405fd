"""The `nasbox` and `scrub` programs: hand the command to the resident runner (nasbox.runner)
when one is up, else run it in this process.

A command handed over starts its work without paying for Python's imports of nasbox and its
libraries (about 0.3 s, more with a cold cache): this module imports only what it takes to
talk to the runner. The command runs there with this process's standard input, output and
error, working directory, umask, environment and arguments; this process stays until it ends,
passes on the signals it receives (Ctrl-C, the scheduler stopping a job) and exits as the
command did. Whatever keeps the runner from taking a command (no runner, not allowed, another
nasbox, no answer within HANDSHAKE_S) runs it here instead, so a command never depends on
the runner being up.

The exchange, one connection per command (lines of text after the request):
    caller: request (4-byte length, JSON)
    runner: "ready" | "refused WHY"
    caller: "go", with 4 descriptors: stdin, stdout, stderr, working directory
    runner: "started PID" | "refused WHY"  caller: "signal N" (any number of times)
    runner: "exited CODE" | "killed SIGNAL"
The descriptors go only to a runner that answered: one that hangs must not hold the caller's
output open (a pipe to `tee` would never end).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from typing import TextIO

SOCKET_NAME = "runner.sock"  # in the run directory (nasbox.state.run_dir)
HANDSHAKE_S = 5.0
MAX_REQUEST_BYTES = 4 << 20
LENGTH = struct.Struct("!I")
GO = b"go\n"
# Ctrl-C, the scheduler stopping a job, a hang-up, Ctrl-\, and Ctrl-Z with the `fg` or `bg` after it.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP, signal.SIGCONT)
# The commands the runner takes: people's and the scheduler's. The services (run, scheduler,
# web, smbd, the mount keeper, the watchdog) and the health check run in their own processes.
RELAYED = frozenset({"sync", "scrub", "offsite", "config", "versions", "restore", "status", "notify"})


def socket_path() -> str:
    from nasbox.state import run_dir

    return str(run_dir() / SOCKET_NAME)


def package_identity() -> dict[str, str]:
    """What the runner must share with a caller to run its command: the same nasbox package
    on the same Python."""
    return {"package": os.path.dirname(os.path.abspath(__file__)), "python": sys.executable}


def main(argv: list[str] | None = None) -> int:
    """`nasbox ...`"""
    argv = sys.argv[1:] if argv is None else argv
    code = relayed(argv)
    if code is None:
        from nasbox.cli import main as run_here

        return run_here(argv)
    return code


def scrub_main() -> int:
    """`scrub ...`: the same as `nasbox scrub ...`."""
    return main(["scrub", *sys.argv[1:]])


def relayed(argv: list[str]) -> int | None:
    """The command's exit code when the runner ran it; None when it did not take it."""
    if not argv or argv[0] not in RELAYED:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as connection:
        try:
            connection.settimeout(HANDSHAKE_S)
            connection.connect(socket_path())
            send_request(connection, argv)
            if read_line(connection) != "ready":
                return None
            connection.settimeout(None)
        except OSError:  # no runner, not ours to use (EACCES), or it did not answer
            return None
        return follow(connection)


def send_request(connection: socket.socket, argv: list[str]) -> None:
    request = {
        "argv": argv,
        "program": sys.argv[0],
        "env": dict(os.environ),
        "umask": current_umask(),
        "streams": [stream_settings(stream) for stream in (sys.stdin, sys.stdout, sys.stderr)],
        **package_identity(),
    }
    body = json.dumps(request).encode("ascii")  # names that are not UTF-8 travel as \udcXX escapes
    connection.sendall(LENGTH.pack(len(body)) + body)


def stream_settings(stream: TextIO | None) -> list[object] | None:
    """How Python made this standard stream (by the locale, PYTHONIOENCODING, PYTHONUNBUFFERED,
    -u, a terminal or not), for the command's to be the same; None when it has none."""
    if stream is None:
        return None
    return [stream.encoding, stream.errors, stream.line_buffering, getattr(stream, "write_through", False)]


def send_go(connection: socket.socket) -> None:
    """Say go, with this process's standard descriptors and working directory."""
    descriptors = [standard_descriptor(fd) for fd in (0, 1, 2)]
    # O_PATH: a directory this process may enter but not read (no read permission needed).
    descriptors.append(os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
    try:
        socket.send_fds(connection, [GO], descriptors)
    finally:
        for fd in descriptors:
            if fd > 2:
                os.close(fd)


def standard_descriptor(fd: int) -> int:
    """fd, or /dev/null in its place (a descriptor of its own) when this process was started
    without it."""
    try:
        os.fstat(fd)
        return fd
    except OSError:
        return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)


def current_umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def read_line(connection: socket.socket) -> str:
    """One line from the runner ("" when it closed the connection), read a byte at a time so
    that nothing after it is taken from the socket."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = connection.recv(1)
        if not byte:
            return ""
        line += byte
    return line.decode("ascii", "replace").strip()


def follow(connection: socket.socket) -> int | None:
    """Send "go", pass on signals until the command ends, and return its exit code (or end
    this process by the signal that ended it); None when the runner refused the go (it had
    waited too long for it)."""

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):  # the command has ended: its end is on its way
            connection.sendall(f"signal {signum}\n".encode())
        if signum == signal.SIGTSTP:  # this process stops too, as its command has, until SIGCONT
            os.kill(os.getpid(), signal.SIGSTOP)

    # Not those this process ignores (`nohup`, a shell's background job): they would not end it.
    heeded = [signum for signum in FORWARDED_SIGNALS if signal.getsignal(signum) != signal.SIG_IGN]
    previous = {signum: signal.signal(signum, forward) for signum in heeded}
    try:
        with contextlib.suppress(OSError):  # a runner that refused it closed the connection: its answer is there
            send_go(connection)
        command = None
        while True:
            word, _, value = read_line(connection).partition(" ")
            if word == "refused":
                return None
            elif word == "started":
                command = int(value)
            elif word == "exited":
                return int(value)
            elif word == "killed":
                return end_by_signal(int(value))
            else:  # its watcher is gone: nothing would pass the command this process's signals or end
                if command is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(command, signal.SIGKILL)
                killed = "" if command is None else "; it was killed"
                print(f"nasbox: the runner lost the command before it ended{killed}", file=sys.stderr)
                return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def end_by_signal(signum: int) -> int:
    """End as the command ended, so that a shell or the scheduler sees the same status."""
    if signum != signal.SIGKILL:  # whose handler cannot be set
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum  # a signal this process does not die of
