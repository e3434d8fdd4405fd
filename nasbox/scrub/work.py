"""What the worker threads do to one file, and what they bring back.

Each task reads one file and returns what it found (Done): new parity made in a staging
directory (Created), its content matching its parity (Verified), a corruption repaired
(Repaired) or that file's problem (Problem). No task writes the catalog or the counters:
the main thread applies what they bring back (nasbox.scrub.engine). Tasks:
- create: a new parity set, staged (nasbox.scrub.install puts it in place);
- create_new: a file without an entry, reconciled instead when a parity set of it is
  already there (a catalog lost);
- check_copy: the same size and mtime but another inode or ctime: the content decides;
- verify: hashed and compared with the MD5 par2 recorded. A match checks the parity files'
  own checksums (damaged parity is rebuilt); a mismatch with unchanged metadata is
  corruption, repaired (nasbox.scrub.repair);
- reconcile: a file known only from its parity set (nasbox.scrub.rebuild): a match is good;
  a mismatch in a file not changed since its parity was written is corruption, one changed
  since is an edit.
settle reads again, once a timestamp tick is over, what was recorded within one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import psutil

from nasbox import commands, stop
from nasbox.scrub import par2, par2format, rebuild, timestamps
from nasbox.scrub.catalog import Catalog, Entry, untrusted_entry
from nasbox.scrub.files import (
    NOT_THIS_FILE,
    Read,
    md5_of_fd,
    metadata,
    open_file,
    read,
    same_file,
    stat_and_head,
    stat_file,
)
from nasbox.scrub.install import STAGED, Parity
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.repair import Result, repair

EMPTY_MD5 = hashlib.md5(b"").digest()
LARGE_FILE = 64 << 20  # from this size par2 gets every core, one file at a time
MAX_SETTLE_WAIT_S = 4.0  # longer than a coarse timestamp tick (nasbox.scrub.timestamps)
COMPACT_BELOW = 1 << 20  # recovery files smaller than this lose par2's repeated packets


@dataclass(frozen=True)
class Created:
    entry: Entry
    staging: bytes | None  # the staging directory's name; None for an empty file: no parity
    old: Entry | None
    reason: str  # new, updated, parity_rebuilt
    note: str | None = None  # a detail line to report with it
    warns: bool = False  # the note makes the run a warning


@dataclass(frozen=True)
class Verified:
    entry: Entry
    inode: int


@dataclass(frozen=True)
class Repaired:
    entry: Entry
    inode: int


@dataclass(frozen=True)
class Problem:
    relative: bytes
    detail: str
    counter: str  # the Stats field it counts in


Done = Created | Verified | Repaired | Problem | None
Task = Callable[[], Done]  # one of Worker's tasks, given its file


class Worker:
    """The tasks of one run, for its pool's threads: par2 gets one core per file, a large
    file every core, one large file at a time."""

    def __init__(self, job: ScrubJob, directory: bytes, parity: Parity, cores: int):
        self.job = job
        self.directory = directory
        self.parity = parity
        self.cores = cores
        self.large_file_lock = threading.Lock()

    def lower_priority(self) -> None:
        """The job's CPU and I/O priority for a worker thread, and so for the par2 processes
        it starts; on Linux both are per thread, so the caller's own priority is untouched."""
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, max(self.job.nice, os.getpriority(os.PRIO_PROCESS, thread)))
        ioclass = {
            "idle": psutil.IOPRIO_CLASS_IDLE,
            "best-effort": psutil.IOPRIO_CLASS_BE,
            "realtime": psutil.IOPRIO_CLASS_RT,
        }[self.job.ionice]
        psutil.Process(thread).ionice(ioclass)

    def guarded(self, relative: bytes, task: Task) -> Done:
        """Run a task; a file that became unreadable (or a link) is skipped, never fatal."""
        if stop.requested.is_set():
            return None  # queued before the stop: left for the next run
        try:
            return task()
        except (OSError, par2format.DamagedParity) as e:
            return Problem(relative, f"skipped: {getattr(e, 'strerror', None) or e}", "skipped")

    def create(self, relative: bytes, name: bytes, st: os.stat_result, old: Entry | None, reason: str) -> Done:
        read_started = time.time_ns()
        entry = Entry(
            relative,
            name,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            EMPTY_MD5,
            (),
            parity_at=time.time(),
            ctime_ns=st.st_ctime_ns,
            settled=timestamps.settled(st, read_started),
        )
        if st.st_size == 0:
            return Created(entry, None, old, reason)  # par2 cannot protect nothing
        staging_name = uuid.uuid4().hex.encode()
        staging = self.parity.staging(staging_name)
        os.mkdir(staging, 0o700)
        data = os.path.join(self.directory, relative, name)
        large = st.st_size >= LARGE_FILE
        argv = par2.create(
            self.directory, STAGED + b".par2", data, st.st_size, self.job.redundancy, self.cores if large else 1
        )  # into its working directory, staging
        with self.large_file_lock if large else _no_lock():
            result = commands.run(argv, check=False, timeout=None, cwd=staging, pass_fds=self.parity.inherit())
        # par2 opened the file by its path: it must have read the file that was walked.
        try:
            after, head = stat_and_head(self.directory, relative, name)
        except OSError as e:
            if e.errno not in NOT_THIS_FILE:
                raise
            after, head = None, b""
        if after is None or metadata(after) != metadata(st):
            shutil.rmtree(staging)
            return Problem(os.path.join(relative, name), "changed while its parity was made; again next run", "skipped")
        if result.returncode != 0:
            shutil.rmtree(staging)
            tail = result.stdout.strip().splitlines()[-1:] or [""]
            return Problem(os.path.join(relative, name), f"par2 create exited {result.returncode}: {tail[0]}", "failed")
        index = par2format.read_packets(os.path.join(staging, STAGED + b".par2"))
        if par2format.file_names(index) != {os.path.join(relative, name)} or par2format.head_md5(index) != head:
            shutil.rmtree(staging)
            return Problem(
                os.path.join(relative, name), "par2 read other files than this one; again next run", "skipped"
            )
        md5, length = par2format.file_md5(index)
        staged_volumes = sorted(v for v in os.listdir(staging) if v != STAGED + b".par2")
        for volume in staged_volumes:
            path = os.path.join(staging, volume)
            if os.path.getsize(path) < COMPACT_BELOW:  # beyond, the repeats cost under 1%
                par2format.compact(path)
        volumes = tuple(name + v[len(STAGED) :] for v in staged_volumes)
        return Created(replace(entry, md5=md5, volumes=volumes, size=length), staging_name, old, reason)

    def create_new(self, relative: bytes, name: bytes, st: os.stat_result) -> Done:
        """A file without an entry: new parity, unless a parity set of it is already there
        (an entry the catalog lost), which must not be overwritten unseen."""
        self.parity.dir(relative)  # no link on the way
        existing = rebuild.parity_entry(self.parity.root, relative, name)
        if existing is None or untrusted_entry(existing):
            return self.create(relative, name, st, None, "new")
        return self.reconcile(existing, st)

    def check_copy(self, entry: Entry, st: os.stat_result) -> Done:
        """Same size and mtime, but another inode (a copy: a restore, rsync's rename) or ctime
        (written, and its mtime set back), or recorded too recently to prove anything: the
        content decides; a mismatch is an edit, never corruption."""
        found = read(self.directory, entry.dir, entry.name)
        if found is not None and found.md5 == entry.md5 and metadata(found.st) == metadata(st):
            return Verified(recorded(entry, found), st.st_ino)
        return self.create(entry.dir, entry.name, st, entry, "updated")

    def verify(self, entry: Entry) -> Done:
        read_started = time.time_ns()
        try:
            fd = open_file(self.directory, entry.dir, entry.name)
        except OSError as e:
            if e.errno not in NOT_THIS_FILE:
                raise
            return Problem(os.path.join(entry.dir, entry.name), "vanished during the scrub", "skipped")
        try:
            st = os.fstat(fd)
            md5 = md5_of_fd(fd) if same_file(st, entry) else None
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if md5 is None:  # edited since the walk
            return self.create(entry.dir, entry.name, st, entry, "updated")
        if md5 == entry.md5:
            if self._parity_intact(entry):
                return Verified(recorded(entry, Read(md5, st, read_started)), entry.inode)
            return self.create(entry.dir, entry.name, st, entry, "parity_rebuilt")
        if not same_file(after, entry):
            return self.create(entry.dir, entry.name, after, entry, "updated")
        return self._repair(entry, read_started)

    def reconcile(self, entry: Entry, st: os.stat_result) -> Done:
        """A file known only from its parity set (nasbox.scrub.rebuild), whose entry holds the
        time the parity was written as its mtime: the content and the file's times decide."""
        relative = os.path.join(entry.dir, entry.name)
        found = read(self.directory, entry.dir, entry.name)
        if found is None:
            return Problem(relative, "changed while it was checked against its parity; again next run", "skipped")
        if (found.md5, found.st.st_size) == (entry.md5, entry.size):
            if self._parity_intact(entry):
                return Verified(recorded(entry, found), found.st.st_ino)
            return self.create(entry.dir, entry.name, found.st, entry, "parity_rebuilt")
        if timestamps.settled_at(found.st.st_mtime_ns, found.st.st_ctime_ns) >= entry.mtime_ns:
            done = self.create(entry.dir, entry.name, found.st, entry, "updated")
            note = "differs from its parity set, which is older than its last change: taken for an edit"
            return replace(done, note=note, warns=True) if isinstance(done, Created) else done
        if found.st.st_size != entry.size:
            return Problem(
                relative,
                f"its size ({found.st.st_size}) differs from the {entry.size} bytes its parity "
                "records, though it has not changed since its parity was written: left as it is, "
                "parity kept (if this is an edit, touch the file)",
                "unrepairable",
            )
        return self._repair(
            replace(entry, mtime_ns=found.st.st_mtime_ns, inode=found.st.st_ino, ctime_ns=found.st.st_ctime_ns),
            found.started_ns,
        )

    def _repair(self, entry: Entry, read_started: int) -> Done:
        """Corruption: a mismatch in a file whose recorded metadata proves it unchanged. A
        repair writes into the file, so the entry records its metadata afterwards."""
        relative = os.path.join(entry.dir, entry.name)
        outcome = repair(self.directory, self.parity.dir(entry.dir), self.parity.private, entry, self.parity.inherit())
        if outcome.result is Result.REPAIRED and outcome.st is not None:
            return Repaired(recorded(entry, Read(entry.md5, outcome.st, read_started)), outcome.st.st_ino)
        if outcome.result is Result.CHANGED:
            done = self.create(
                entry.dir, entry.name, stat_file(self.directory, entry.dir, entry.name), entry, "updated"
            )
            return replace(done, note=outcome.detail) if isinstance(done, Created) else done
        return Problem(relative, outcome.detail, "unrepairable" if outcome.result is Result.BEYOND_REPAIR else "failed")

    def _parity_intact(self, entry: Entry) -> bool:
        if entry.size == 0:
            return True  # an empty file has no parity
        described = {os.path.join(entry.dir, entry.name)}
        try:
            parity_dir = self.parity.dir(entry.dir)
            index = par2format.read_packets(os.path.join(parity_dir, entry.name + b".par2"))
            for volume in entry.volumes:
                if par2format.file_names(par2format.read_packets(os.path.join(parity_dir, volume))) - described:
                    return False
            return par2format.file_names(index) == described and par2format.file_md5(index)[0] == entry.md5
        except (OSError, par2format.DamagedParity):
            return False


def recorded(entry: Entry, found: Read) -> Entry:
    """entry with the metadata of the file as it was read."""
    return replace(
        entry,
        size=found.st.st_size,
        mtime_ns=found.st.st_mtime_ns,
        inode=found.st.st_ino,
        ctime_ns=found.st.st_ctime_ns,
        settled=timestamps.settled(found.st, found.started_ns),
    )


def settle(catalog: Catalog, directory: bytes, unsettled: list[Entry]) -> None:
    """Files a run recorded within a timestamp tick of reading them: once the tick is over,
    read again; a match proves no edit hid behind unchanged times, and the entry is trusted.
    A mismatch leaves it untrusted: the next run takes it for an edit. On the main thread."""
    if not unsettled:
        return
    latest = max(timestamps.settled_at(e.mtime_ns, e.ctime_ns or 0) for e in unsettled)
    wait_s = (latest - time.time_ns()) / 1e9
    if 0 < wait_s <= MAX_SETTLE_WAIT_S:
        stop.requested.wait(wait_s)
    for entry in unsettled:
        stop.check()
        found = read(directory, entry.dir, entry.name)
        if (
            found is not None
            and found.md5 == entry.md5
            and same_file(found.st, entry)
            and timestamps.settled(found.st, found.started_ns)
        ):
            catalog.mark_settled(entry)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield
