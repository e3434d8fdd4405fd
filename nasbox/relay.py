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

from nasbox import places

SOCKET_NAME = "runner.sock"  # in the run directory
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
    return os.path.join(places.run_dir(), SOCKET_NAME)


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
    """The command's exit code when the runner ran it (this process passing on its signals
    meanwhile); None when it did not take it. A command ended by a signal ends this process
    by the same signal, so that a shell or the scheduler sees the same status."""
    if not argv or argv[0] not in RELAYED:
        return None
    handed = Handed.offer(argv)
    if handed is None:
        return None

    def forward(signum: int, _frame: object) -> None:
        handed.send_signal(signum)
        if signum == signal.SIGTSTP:  # this process stops too, as its command has, until SIGCONT
            os.kill(os.getpid(), signal.SIGSTOP)

    # Not those this process ignores (`nohup`, a shell's background job): they would not end it.
    heeded = [signum for signum in FORWARDED_SIGNALS if signal.getsignal(signum) != signal.SIG_IGN]
    with handed:
        previous = {signum: signal.signal(signum, forward) for signum in heeded}
        try:
            if not handed.start():
                return None
            code = handed.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    if handed.lost:
        killed = "; it was killed" if handed.pid else ""
        print(f"nasbox: the runner lost the command before it ended{killed}", file=sys.stderr)
    if code < 0:
        if code != -signal.SIGKILL:  # whose handler cannot be set
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code  # a signal this process does not die of
    return code


class Handed:
    """A command the runner runs for this process. Like a child process it has a pid, a
    returncode once it has ended (negative: the signal that ended it) and takes signals;
    they go to its process group, as a terminal's do. The runner kills that group when this
    end of the connection closes."""

    def __init__(self, connection: socket.socket):
        self.connection = connection
        self.pid = 0
        self.returncode: int | None = None
        self.lost = False  # the connection ended before the command's status came
        self.refused = False
        self._pending = b""

    @classmethod
    def offer(cls, argv: list[str]) -> Handed | None:
        """`nasbox ARGV` offered to the runner: taken, to be started; None when there is no
        runner, it is not ours to use (EACCES), it refused, or it did not answer in time."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        with contextlib.suppress(OSError):
            connection.settimeout(HANDSHAKE_S)
            connection.connect(socket_path())
            send_request(connection, argv)
            if read_line(connection) == "ready":
                connection.settimeout(None)
                return cls(connection)
        connection.close()
        return None

    def __enter__(self) -> Handed:
        return self

    def __exit__(self, *_: object) -> None:
        self.connection.close()

    def start(self) -> bool:
        """Go, with this process's standard descriptors and working directory; False when the
        runner refused it after all (it had waited too long for it) and nothing started."""
        with contextlib.suppress(OSError):  # a runner that refused it closed the connection: its answer is there
            send_go(self.connection)
        while not self.pid and self.returncode is None and not self.refused:
            self._read(block=True)
        return not self.refused

    def poll(self) -> int | None:
        """The returncode once the command has ended (the connection closed then), else None."""
        if self.returncode is None:
            self._read(block=False)
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None:
            self._read(block=True)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """signum to the command's process group; SIGKILL by closing this end."""
        with contextlib.suppress(OSError):  # the command has ended: its status is on its way
            if signum == signal.SIGKILL:
                self.connection.shutdown(socket.SHUT_WR)
            else:
                self.connection.sendall(f"signal {signum}\n".encode())

    def _read(self, block: bool) -> None:
        try:
            data = self.connection.recv(4096, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.returncode, self.lost = 1, True
            self.connection.close()
            if self.pid:  # its watcher is gone: nothing would pass it signals or end it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
            return
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            word, _, value = line.decode("ascii", "replace").partition(" ")
            if word == "refused":
                self.refused = True
                self.connection.close()
                return
            if word == "started":
                self.pid = int(value)
            elif word == "exited":
                self.returncode = int(value)
            elif word == "killed":
                self.returncode = -int(value)
        if self.returncode is not None:
            self.connection.close()


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
    # A stream put in its place (a test's capture) may leave these unset: Python's defaults then.
    return [
        stream.encoding or "utf-8",
        stream.errors or "strict",
        bool(stream.line_buffering),
        bool(getattr(stream, "write_through", False)),
    ]


def send_go(connection: socket.socket) -> None:
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
