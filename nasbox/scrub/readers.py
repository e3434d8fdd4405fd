"""Reading files to hash them, at the speed of the disk and both cores.

read_batch reads files of one directory through one descriptor of it: for each, its
metadata before and after the read and the MD5 of what was read; a file found as its row
records it (metadata, MD5, and settled) comes back as None, so that what is sent back, and
what the scrub's own process does with it, costs next to nothing for most files. A full
scrub of a tree of small files spends its time in the few system calls and the Python around
each file, and Python threads take turns at that; so a run with many files to read hands
batches to worker processes (Readers), one per core, each with the job's CPU and I/O
priority, and the check of each parity set (nasbox.scrub.setcheck) too. A run with few
reads, or a batch of large files (hashing releases the lock threads take turns at), reads
in the calling thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import queue
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import psutil

from nasbox import stop
from nasbox.descriptors import FILE_FLAGS
from nasbox.scrub import timestamps
from nasbox.scrub.files import NOT_THIS_FILE, md5_of_fd, metadata, open_directory
from nasbox.scrub.setcheck import Recorded, set_intact

PROCESSES_FROM = 10_000  # files to read in a run before worker processes are worth starting
SMALL_BATCH = 1 << 20  # average bytes per file below which a batch goes to a process
# The worker's program: this module under its own name, so what it sends back unpickles here.
SERVE = "import sys; from nasbox.scrub.readers import serve; serve(int(sys.argv[1]), sys.argv[2])"
IOPRIO_CLASSES = {
    "idle": psutil.IOPRIO_CLASS_IDLE,
    "best-effort": psutil.IOPRIO_CLASS_BE,
    "realtime": psutil.IOPRIO_CLASS_RT,
}


@dataclass(frozen=True)
class FileRead:
    name: bytes
    error: int | None = None  # errno when it could not be opened
    before: os.stat_result | None = None
    md5: bytes | None = None  # None: not read (not a regular file, or not the file expected)
    after: os.stat_result | None = None
    started_ns: int = 0


# (size, mtime, ctime, inode) a file must have to be read, and the MD5 its row records
Expected = tuple[int, int, int, int, bytes] | None


def read_batch(root: bytes, relative: bytes, names: list[bytes], expected: list[Expected]) -> list[FileRead | None]:
    """Each file root/relative/name read. With expected, a file whose metadata is not the
    expected is not read, and one whose metadata and MD5 are, and whose times prove that no
    edit hides behind them (nasbox.scrub.timestamps), is None. OSError when the directory
    cannot be reached."""
    dir_fd = open_directory(root, relative)
    try:
        return [_read_one(dir_fd, name, wanted) for name, wanted in zip(names, expected, strict=True)]
    finally:
        os.close(dir_fd)


def _read_one(dir_fd: int, name: bytes, wanted: Expected) -> FileRead | None:
    started = time.time_ns()
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno not in NOT_THIS_FILE:
            raise
        return FileRead(name, e.errno)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or (wanted is not None and metadata(before) != wanted[:4]):
            return FileRead(name, None, before)
        md5 = md5_of_fd(fd, before.st_size)
        after = os.fstat(fd)
        if (
            wanted is not None
            and md5 == wanted[4]
            and metadata(after) == wanted[:4]
            and timestamps.settled(after, started)
        ):
            return None
        return FileRead(name, None, before, md5, after, started)
    finally:
        os.close(fd)


class Readers:
    """Worker processes for read_batch and set_intact (running SERVE): when the run wants
    them, started as `with` begins (they start while the walk lists its first directory),
    and stopped when it ends. Requests and answers go as pickles over each one's own pipes;
    the processes run in /: every path they get is absolute (DIRECTORY's, as par2's are)."""

    def __init__(self, processes: int, nice: int, ionice: str, wanted: bool, inherit: tuple[int, ...] = ()):
        """wanted: whether the run has enough files to read to start processes at all;
        inherit: descriptors the processes get under the same numbers (the private folder's:
        the /proc/self/fd paths of parity files lead to the same place in them)."""
        self.processes = processes
        self.nice = nice
        self.ionice = ionice
        self.wanted = wanted
        self.inherit = inherit
        self.idle: queue.SimpleQueue[subprocess.Popen[bytes]] = queue.SimpleQueue()
        self.started: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()

    def __enter__(self) -> Readers:
        if self.wanted:
            # One that cannot start now is started on first use, where failing skips one batch.
            with self.lock, contextlib.suppress(OSError):
                for _ in range(self.processes):
                    self.idle.put(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.started:
            assert process.stdin is not None
            process.stdin.close()  # its end of input: it exits
        for process in self.started:
            process.wait()

    def read(
        self, root: bytes, relative: bytes, names: list[bytes], expected: list[Expected], nbytes: int
    ) -> list[FileRead | None]:
        if not self.wanted or nbytes >= SMALL_BATCH * len(names):
            return read_batch(root, relative, names, expected)
        return self._in_process("read", (root, relative, names, expected))

    def check_set(self, paths: list[bytes], files: int, recorded: Recorded, digest: bytes | None) -> tuple[bool, bytes]:
        """set_intact, in a process when the run has them; here when the process ends before
        it answers (killed, out of memory): a set left unchecked would pass for intact."""
        if self.wanted:
            with contextlib.suppress(OSError):
                return self._in_process("check_set", (paths, files, recorded, digest))
        return set_intact(paths, files, recorded, digest)

    def _in_process(self, task: str, args: tuple) -> Any:
        process = self._borrow()
        try:
            answer = self._ask(process, (task, args))
        except (OSError, EOFError, pickle.UnpicklingError):
            stop.check()  # ended by the stop: the run ends as stopped
            raise OSError(errno.ECHILD, "a reading process ended") from None
        if isinstance(answer, OSError):
            raise answer
        return answer

    def _ask(self, process: subprocess.Popen[bytes], request: tuple) -> Any:
        assert process.stdin is not None and process.stdout is not None
        try:
            _send(process.stdin, request)
            answer = _receive(process.stdout)
        except BaseException:
            self._retire(process)  # whatever it was doing, it is not reused
            raise
        self.idle.put(process)
        return answer

    def _retire(self, process: subprocess.Popen[bytes]) -> None:
        process.kill()
        process.wait()
        with self.lock:
            self.started.remove(process)

    def _borrow(self) -> subprocess.Popen[bytes]:
        with self.lock:
            if self.idle.empty() and len(self.started) < self.processes:  # one retired
                return self._start()
        return self.idle.get()

    def _start(self) -> subprocess.Popen[bytes]:
        """A new process, counted in started (under the lock)."""
        process = subprocess.Popen(
            # Never code from the working directory (a share, perhaps): -P leaves it out of
            # sys.path, and in / an empty entry of PYTHONPATH, which means it, finds none.
            [sys.executable, "-P", "-c", SERVE, str(self.nice), self.ionice],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=self.inherit,
            cwd="/",
        )
        self.started.append(process)
        return process


def _send(pipe: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    pipe.write(len(data).to_bytes(8, "little") + data)
    pipe.flush()


def _receive(pipe: IO[bytes]) -> Any:
    size = int.from_bytes(_exactly(pipe, 8), "little")
    return pickle.loads(_exactly(pipe, size))


def _exactly(pipe: IO[bytes], size: int) -> bytes:
    data = pipe.read(size)
    if len(data) != size:
        raise EOFError("the pipe closed")
    return data


def serve(nice: int, ionice: str) -> None:
    """A worker process: the task each request on stdin names (TASKS), until stdin closes."""
    os.nice(max(0, nice - os.nice(0)))
    psutil.Process().ionice(IOPRIO_CLASSES[ionice])
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return
        task, args = request
        try:
            answer: object = TASKS[task](*args)
        except OSError as e:
            answer = OSError(e.errno, e.strerror)
        _send(answers, answer)


TASKS: dict[str, Callable[..., object]] = {"read": read_batch, "check_set": set_intact}  # by the name a request gives
