"""The runner: a resident process, supervised, that runs the commands `nasbox` processes hand
it (nasbox.relay), so that people's commands and the scheduler's jobs start their work with
nasbox and its libraries already imported.

It listens on a Unix socket in the run directory, mode 0600 in a 0700 directory, and refuses
a peer that is not its own user, or whose standing (privileges, namespaces, priorities,
limits) is not its own, and any request a `nasbox` process would not send: the caller then
runs its command itself. For each command it forks a watcher, which forks the command:

    runner (imports done once) -> watcher (one per command) -> command (a session of its own)

The command takes the caller's standard input, output and error (made as the caller's
Python made its own), working directory, umask, environment and arguments, and runs as it
would in a process of its own (nasbox.cli.main):
it loads the configuration as it is at that moment, takes the same locks and writes the same
history. Nothing of one command outlives it in the runner: each runs in a fork.

The watcher is the caller's stand-in. It passes the signals the caller receives to the
command's process group (rsync, par2 and restic included, as a terminal's Ctrl-C would), and
the command's exit status back. When the caller disappears (kill -9), the command's group is
killed, as if the command had been the caller's own process. Stopping the runner stops the
commands it runs as the scheduler stops its jobs: SIGTERM, and SIGKILL after STOP_WAIT_S.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import gc
import importlib
import io
import json
import logging
import os
import pkgutil
import select
import shlex
import signal
import socket
import stat
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import psutil

import nasbox
from nasbox.relay import (
    FORWARDED_SIGNALS,
    GO,
    HANDSHAKE_S,
    LENGTH,
    MAX_REQUEST_BYTES,
    RELAYED,
    package_identity,
    socket_path,
)
from nasbox.stop import STOP_WAIT_S

log = logging.getLogger(__name__)

TICK_S = 1.0
BACKLOG = 64
# Not imported ahead: the module that runs the command line, and the services' own modules.
NOT_WARMED = ("nasbox.__main__", "nasbox.web", "nasbox.discovery")
# Libraries nasbox imports only when a command needs them.
LIBRARIES = ("croniter", "smtplib", "apprise", "requests")
STREAM_NAMES = ("<stdin>", "<stdout>", "<stderr>")
# A caller whose standing (below) is not the runner's runs its command itself: run here, the
# command would have the runner's (a root without some capability would gain it, `nice` be lost).
STATUS_STANDING = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Cpus_allowed_list")
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")


class Refused(Exception):
    """A request the runner does not take; the caller runs the command itself."""


@dataclass(frozen=True)
class Stream:
    """How the caller's Python made one of its standard streams."""

    encoding: str
    errors: str
    line_buffering: bool
    write_through: bool


@dataclass(frozen=True)
class Request:
    """A caller's command: `nasbox ARGV`, started as PROGRAM, with its environment, umask and
    standard streams (stdin, stdout, stderr)."""

    argv: list[str]
    program: str
    env: dict[str, str]
    umask: int
    streams: list[Stream | None]


def serve() -> int:
    """`nasbox runner`: import ahead, then run commands until SIGTERM."""
    warm()
    keep_standard_descriptors()
    path = socket_path()
    if answering(path):
        log.error("runner: another runner takes commands at %s", path)
        return 1
    listener = listen(path)
    ours = os.stat(path).st_ino
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    watchers: set[int] = set()
    log.info("runner: taking commands at %s", path)
    gc.freeze()  # what the imports made is shared with every fork, not copied by the collector
    try:
        while not stopping.is_set():
            if select.select([listener], [], [], TICK_S)[0]:
                accept(listener, watchers)
            reap(watchers)
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == ours:  # not a socket another runner made since
                os.unlink(path)
        stop_all(watchers)
    return 0


def warm() -> None:
    """Import every module a command may need, nasbox's and the libraries it loads on demand."""
    for module in pkgutil.walk_packages(nasbox.__path__, "nasbox."):
        if not module.name.startswith(NOT_WARMED):
            importlib.import_module(module.name)
    for library in LIBRARIES:
        importlib.import_module(library)


def keep_standard_descriptors() -> None:
    """Descriptors 0-2 open (on /dev/null when not given), so that none a caller sends lands
    on one of them."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)


def answering(path: str) -> bool:
    """Whether a runner takes commands at path (one killed leaves a socket nobody answers on)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        try:
            probe.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return False
    return True


def listen(path: str) -> socket.socket:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a runner that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(BACKLOG)
    return listener


def accept(listener: socket.socket, watchers: set[int]) -> None:
    try:
        connection, _ = listener.accept()
    except OSError:
        return
    with connection:
        pid, uid, _ = peer(connection)
        if uid != os.geteuid():
            log.warning(
                "runner: refused a command from pid %d (uid %d): only uid %d may use it", pid, uid, os.geteuid()
            )
            return
        watcher = os.fork()
        if watcher == 0:
            watch(connection, listener, pid)
        watchers.add(watcher)


def peer(connection: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel saw it connect."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid, uid, gid = (int.from_bytes(credentials[i : i + 4], sys.byteorder, signed=True) for i in (0, 4, 8))
    return pid, uid, gid


def reap(watchers: set[int]) -> None:
    for watcher in list(watchers):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(watcher, os.WNOHANG)[0] == watcher:
                watchers.discard(watcher)


def stop_all(watchers: set[int]) -> None:
    """SIGTERM to each command (through its watcher); SIGKILL to what is left after STOP_WAIT_S."""
    for watcher in watchers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(watcher, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while watchers and time.monotonic() < deadline:
        reap(watchers)
        time.sleep(0.1)
    for watcher in watchers:
        log.warning("runner: a command did not stop in %d s; killed", STOP_WAIT_S)
        with contextlib.suppress(psutil.NoSuchProcess):
            for process in [*psutil.Process(watcher).children(recursive=True), psutil.Process(watcher)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
    reap(watchers)


# ---- the watcher: one per command, in a fork of the runner -----------------------------


def watch(connection: socket.socket, listener: socket.socket, caller: int) -> NoReturn:
    command = None
    try:
        listener.close()
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)  # until the command's pid is known
        command = take(connection, caller)
        if command is not None:
            relay(connection, command)
    except Exception:
        log.exception("runner: a command's watcher failed")
        if command is not None:  # nobody would pass it its caller's signals or departure
            signal_command(command, signal.SIGKILL)
    finally:
        os._exit(0)


def take(connection: socket.socket, caller: int) -> int | None:
    """Read the request, answer it, start the command on "go": its pid."""
    connection.settimeout(HANDSHAKE_S)
    try:
        request = receive(connection)
        if standing(caller) != standing(os.getpid()):  # its command would have the runner's
            raise Refused("a caller with other privileges, namespaces, priorities or limits than the runner's")
        connection.sendall(b"ready\n")
        descriptors = received_go(connection)
    except (OSError, psutil.Error, ValueError, Refused) as e:  # the caller runs its command itself
        log.warning("runner: refused a request from pid %d: %s", caller, e)
        with contextlib.suppress(OSError):
            connection.sendall(f"refused {e}\n".encode("ascii", "replace"))
        return None
    try:
        connection.settimeout(None)
        command = os.fork()
        if command == 0:
            run_command(request, descriptors, connection)
    finally:
        for fd in descriptors:
            os.close(fd)
    with contextlib.suppress(OSError):  # a caller already gone is seen as such by relay()
        connection.sendall(f"started {command}\n".encode())
    log.info("runner: `nasbox %s` for pid %d, as pid %d", shlex.join(request.argv), caller, command)
    return command


def receive(connection: socket.socket) -> Request:
    (length,) = LENGTH.unpack(exactly(connection, LENGTH.size))
    if length > MAX_REQUEST_BYTES:
        raise Refused(f"a request of {length} bytes")
    return request_from(json.loads(exactly(connection, length)))


def request_from(fields: object) -> Request:
    """The request a caller sent, checked: no field of it reaches a command unless it is what a
    `nasbox` process sends (text without NUL, a command the runner takes)."""
    if not isinstance(fields, dict):
        raise Refused("a request that is not a JSON object")
    if {key: fields.get(key) for key in ("package", "python")} != package_identity():
        raise Refused("another nasbox package or Python")
    argv, program, env, umask = (fields.get(key) for key in ("argv", "program", "env", "umask"))
    if not (isinstance(argv, list) and texts(*argv) and argv and argv[0] in RELAYED):
        raise Refused("a command the runner does not take")
    if not (isinstance(env, dict) and texts(program, *env.values()) and all(map(variable_name, env))):
        raise Refused("a malformed program name or environment")
    if not (type(umask) is int and 0 <= umask <= 0o777):
        raise Refused("a malformed umask")
    streams = fields.get("streams")
    if not (isinstance(streams, list) and len(streams) == 3):
        raise Refused("malformed standard streams")
    return Request(
        argv, str(program), env, umask, [None if stream is None else stream_from(stream) for stream in streams]
    )


def stream_from(fields: object) -> Stream:
    if isinstance(fields, list) and len(fields) == 4 and texts(*fields[:2]) and {*map(type, fields[2:])} <= {bool}:
        with contextlib.suppress(LookupError):
            codecs.lookup(fields[0]), codecs.lookup_error(fields[1])
            return Stream(*fields)
    raise Refused("malformed standard streams")


def texts(*values: object) -> bool:
    return all(isinstance(value, str) and "\0" not in value for value in values)


def variable_name(name: object) -> bool:
    return texts(name) and name != "" and "=" not in str(name)


def standing(pid: int) -> list[object]:
    """What the kernel gives a process besides its user: privileges (capabilities, no_new_privs,
    seccomp), namespaces, CPUs, scheduling and I/O priorities, resource limits."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return [
        *(line for line in status if line.partition(":")[0] in STATUS_STANDING),
        *(os.readlink(f"/proc/{pid}/ns/{name}") for name in NAMESPACES),
        os.sched_getscheduler(pid),
        os.getpriority(os.PRIO_PROCESS, pid),
        tuple(psutil.Process(pid).ionice()),
        Path(f"/proc/{pid}/limits").read_text(),
    ]


def exactly(connection: socket.socket, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = connection.recv(size - len(received))
        if not chunk:
            raise Refused("the request ended early")
        received += chunk
    return bytes(received)


def received_go(connection: socket.socket) -> list[int]:
    """The caller's 4 descriptors, sent with its "go"."""
    go, descriptors, _, _ = socket.recv_fds(connection, len(GO), 4)
    if go == GO and len(descriptors) == 4 and stat.S_ISDIR(os.fstat(descriptors[3]).st_mode):
        return descriptors
    for fd in descriptors:
        os.close(fd)
    raise Refused("no go with standard input, output, error and a directory")


def relay(connection: socket.socket, command: int) -> None:
    """Pass the caller's signals on to the command's group until it ends; then its status."""

    def forward(signum: int, _frame: object) -> None:
        # The kernel does not stop a group whose parents are all in other sessions (as the
        # command's, whose watcher is in the runner's) on SIGTSTP: SIGSTOP does it.
        signal_command(command, signal.SIGSTOP if signum == signal.SIGTSTP else signum)

    for signum in FORWARDED_SIGNALS:  # the runner stopping sends SIGTERM here
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    ended = os.pidfd_open(command)
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    poller.register(ended, select.POLLIN)
    pending = b""
    while True:
        for fd, _ in poller.poll():
            if fd == ended:
                for signum in FORWARDED_SIGNALS:  # its pid, once reaped, may be another's
                    signal.signal(signum, signal.SIG_IGN)
                _, status = os.waitpid(command, 0)
                with contextlib.suppress(OSError):
                    connection.sendall(outcome(status).encode())
                return
            try:
                data = connection.recv(4096)
            except OSError:  # reset: the caller went with a reply unread
                data = b""
            if not data:  # the caller is gone: so is its command
                signal_command(command, signal.SIGKILL)
                poller.unregister(connection)
                continue
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                word, _, value = line.decode("ascii", "replace").partition(" ")
                if word == "signal" and value.isdigit() and int(value) in FORWARDED_SIGNALS:
                    forward(int(value), None)


def signal_command(command: int, signum: int) -> None:
    """signum to the command's process group; to the command alone while it has not yet made
    its session (it blocks these signals until then: they wait for it)."""
    try:
        os.killpg(command, signum)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(command, signum)


def outcome(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed {os.WTERMSIG(status)}\n"
    return f"exited {os.waitstatus_to_exitcode(status)}\n"


# ---- the command: in a fork of the watcher ------------------------------------------------


def run_command(request: Request, descriptors: list[int], connection: socket.socket) -> NoReturn:
    """Become the caller's command and run it: never returns."""
    code = 1
    try:
        os.setsid()
        connection.close()
        for target, fd in zip((0, 1, 2), descriptors[:3], strict=True):
            os.dup2(fd, target)
        os.fchdir(descriptors[3])
        for fd in descriptors:
            os.close(fd)
        os.umask(request.umask)
        os.environ.clear()
        os.environ.update(request.env)
        time.tzset()  # TZ as the caller has it
        sys.argv = [request.program, *request.argv]
        standard_streams(request.streams)
        for signum in (*FORWARDED_SIGNALS, signal.SIGCHLD):
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        code = exit_code(request.argv)
    except BaseException:  # noqa: BLE001 - whatever it is, the caller is told (on its stderr once in place)
        traceback.print_exc()
    finally:
        # As the interpreter ends: wait for the command's threads, run its exit handlers, flush.
        for ending in (threading._shutdown, atexit._run_exitfuncs):  # type: ignore[attr-defined]
            with contextlib.suppress(BaseException):
                ending()
        os._exit(code if flushed() else 120)


def standard_streams(streams: list[Stream | None]) -> None:
    """sys.stdin, stdout and stderr on the caller's descriptors, made as the caller's Python
    made its own (encoding, errors, buffering); None where it had none (closed when it started:
    print() then writes nothing, and logging writes to stderr)."""
    sys.stdin, sys.stdout, sys.stderr = (text_stream(fd, stream) for fd, stream in enumerate(streams))


def text_stream(fd: int, stream: Stream | None) -> io.TextIOWrapper | None:
    if stream is None:
        return None
    mode = "r" if fd == 0 else "w"
    raw = io.FileIO(fd, mode + "b", closefd=False)
    raw.name = STREAM_NAMES[fd]  # as Python names its own, for messages
    # Python reads stdin through a buffer always; writes through none when unbuffered (-u).
    buffer = io.BufferedReader(raw) if fd == 0 else raw if stream.write_through else io.BufferedWriter(raw)
    text = io.TextIOWrapper(
        buffer,
        stream.encoding,
        stream.errors,
        "\n",
        stream.line_buffering,
        stream.write_through,
    )
    text.mode = mode  # type: ignore[misc]
    return text


def flushed() -> bool:
    """Flush stdout and stderr as the interpreter does on its way out, reporting a failure as
    it does (whose exit status is then 120)."""
    ok = True
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and not stream.closed:
            try:
                stream.flush()
            except Exception as e:  # noqa: BLE001 - any failure to write out is the command's failure
                ok = False
                if stream is sys.stdout and sys.stderr is not None:
                    with contextlib.suppress(Exception):
                        sys.stderr.write(f"Exception ignored in: {stream!r}\n{traceback.format_exception_only(e)[-1]}")
                        sys.stderr.flush()
    return ok


def exit_code(argv: list[str]) -> int:
    """Run `nasbox ARGV` and say how it ended, as the interpreter would for a program."""
    from nasbox.cli import main

    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)  # what came meanwhile acts here
        ended: object = main(argv)
    except SystemExit as e:
        ended = e.code
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:  # noqa: BLE001 - as the interpreter reports an uncaught exception
        traceback.print_exc()
        return 1
    if ended is None:
        return 0
    if isinstance(ended, int):
        return ended & 0xFF
    print(ended, file=sys.stderr)
    return 1
