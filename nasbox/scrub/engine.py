"""The scrub of one job: walk DIRECTORY, give each file what it needs, report.

Before anything changes, nasbox.scrub.guards checks DATABASE and the mounts the job depends
on. For each regular file (symlinks, special files, the DATABASEs of scrub jobs and excluded
names are skipped):
- no entry in the catalog: its parity set, if one is already there (a catalog lost), is
  reconciled with it (below); otherwise a new file: new parity;
- another size or mtime than recorded: an edit: new parity (never a repair);
- the same size and mtime but another inode or ctime (replaced by a copy, or written and its
  mtime set back), or recorded too recently to prove anything (nasbox.scrub.timestamps):
  hashed, and new parity only when the content differs;
- otherwise, in a full scrub: hashed and compared with the MD5 par2 recorded. A match checks
  the parity files' own checksums (damaged parity is rebuilt); a mismatch with unchanged
  metadata is corruption, repaired by nasbox.scrub.repair.
An entry recovered from its parity set (nasbox.scrub.rebuild) is reconciled: a match is
good; a mismatch in a file not changed since its parity was written is corruption; one
changed since is an edit. Entries of files that are gone lose their parity, after the whole
walk and only within max_delete. Parity is made by workers (one par2 per file, both cores),
staged, and moved into place by the main thread, which alone writes the catalog; a journal
entry lets the next run finish a move that a killed run began.
Every problem with one file (a name the parity layout cannot hold, a failed par2, a parity
set that cannot be put in place) is that file's problem, reported and counted, never the
job's. DATABASE and its private folder are used only when nobody but nasbox can write them
(nasbox.scrub.trust), through descriptors; DIRECTORY is walked through descriptors too.
"""
from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields, replace

import psutil

from nasbox import commands, stop
from nasbox.config.model import Config
from nasbox.limits import deletion_limit
from nasbox.progress import Progress, human_bytes
from nasbox.result import JobResult
from nasbox.scrub import guards, layout, par2, par2format, rebuild, timestamps
from nasbox.scrub.catalog import Catalog, Entry, open_catalog, show, untrusted_entry
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.repair import (
    NOT_THIS_FILE,
    Result,
    md5_of_fd,
    open_directory,
    read_repairing_note,
    repair,
    same_file,
)
from nasbox.scrub.trust import PRIVATE, REPAIRING, Folders, Missing, Untrusted, open_folders

log = logging.getLogger(__name__)

EMPTY_MD5 = hashlib.md5(b"").digest()
# par2 reads wildcards in parity file names, so a set is made and repaired under this name
# and renamed: <STAGED>.par2 becomes <file name>.par2, <STAGED>.vol0+1.par2 <file name>.vol0+1.par2.
STAGED = b"parity"
LARGE_FILE = 64 << 20  # from this size par2 gets every core, one file at a time
MAX_SETTLE_WAIT_S = 4.0  # longer than a coarse timestamp tick (nasbox.scrub.timestamps)
COMPACT_BELOW = 1 << 20  # recovery files smaller than this lose par2's repeated packets


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0
    new: int = 0
    updated: int = 0
    verified: int = 0
    bytes_verified: int = 0
    repaired: int = 0
    unrepairable: int = 0
    parity_rebuilt: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0


# What a worker found; the main thread applies it to the catalog and the stats.
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


@dataclass(frozen=True)
class Read:
    """A file's MD5, its metadata while it was read, and when the read began."""
    md5: bytes
    st: os.stat_result
    started_ns: int


def scrub_databases(config: Config) -> tuple[str, ...]:
    """The DATABASE of every scrub job: never scrubbed, whichever job's DIRECTORY holds it."""
    return tuple(job.database for job in config.scrub.values())


class Scrub:
    def __init__(self, job: ScrubJob, update_only: bool = False, workers: int | None = None,
                 databases: Iterable[str] = (), force: bool = False):
        """databases: those of the other scrub jobs (scrub_databases); force: run although a
        mount point is no longer mounted or DATABASE is missing, and remove parity beyond
        max_delete."""
        self.job = job
        self.full = not update_only
        self.force = force
        self.directory = os.fsencode(job.directory)
        self.database = os.fsencode(job.database)
        self.databases = [os.fsencode(d) for d in databases]
        self.private = os.path.join(self.database, PRIVATE)
        self.folders: Folders | None = None  # DATABASE and private, open once checked
        self.lock_fd = -1  # the database's lock, held while running
        self.parity_root = self.database  # DATABASE through its descriptor while running
        self.workers = workers or os.cpu_count() or 1
        self.large_file_lock = threading.Lock()
        self.stats = Stats()
        self.details: list[str] = []
        self.warned = False  # a warning outside the counted ones
        self.unreadable: list[bytes] = []
        self.progress = Progress("", 0, 0)  # the run's own, once the catalog is open
        self.memory = guards.Memory()
        self.protected = 0  # files with parity when the walk began
        self.database_ids: set[tuple[int, int]] = set()
        self.devices: dict[bytes, int] = {}  # directory -> st_dev, to find mount points
        self.mount_points: set[bytes] = set()  # inside DIRECTORY, relative
        self.vanished: list[Entry] = []  # removed after the walk, within max_delete
        self.vanished_directories: list[bytes] = []
        self.unsettled: list[Entry] = []  # recorded by this run too recently to be trusted
        self.held: str | None = None

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> JobResult:
        started = time.time()
        kind = "scrub" if self.full else "parity update"
        if not os.path.isdir(self.directory):
            return self._result(started, "warning", f"skipped: {self.job.directory} is missing", skipped=True)
        refused = guards.database_problem(self.job.directory, self.job.database)
        if refused:
            return self._result(started, "error", f"DATABASE refused: {refused}; nothing was written")
        seen = self.memory.get(self.job.name, self.job.directory, self.job.database)
        why_not = self._missing_mount(seen)
        if why_not:
            return self._result(started, "warning", f"skipped: {why_not}", skipped=True)
        try:
            self.folders = self._open_folders(seen)
        except Missing as e:
            return self._result(started, "warning", f"skipped: {e}", skipped=True)
        except Untrusted as e:
            return self._result(started, "error", f"refused: {e}", skipped=True)
        self.private, self.parity_root = self.folders.private, self.folders.database
        with self._lock():
            catalog, damage = open_catalog(os.path.join(self.private, b"catalog.sqlite"), self._rejected)
            try:
                if damage:
                    self._warn(damage)
                self._recover(catalog)
                if not catalog.totals()[0]:
                    self._rebuild(catalog)
                self.protected, protected_bytes = catalog.totals()
                own = os.fstat(self.folders.database_fd)
                self.database_ids = {(own.st_dev, own.st_ino)} | {_identity(d) for d in self.databases} - {(-1, -1)}
                if self.protected and not self._has_data():
                    return self._result(started, "warning", f"skipped: {self.job.directory} is empty but "
                                        f"{self.protected} files are protected (not mounted?)", skipped=True)
                if self.full and (self.job.verify_percent < 100 or self.job.verify_older_than_s):
                    catalog.select_for_verify(self.job.verify_percent, self.job.verify_older_than_s)
                self.progress = Progress(f"{kind} {self.job.name}", self.protected, protected_bytes)
                self._scan(catalog)
                self._settle(catalog)
                self.progress.finish()
            finally:
                catalog.close()
        status, summary = self._status()
        if self.held:
            return self._result(started, status if status == "error" else "warning",
                                f"held: {self.held}; {summary}", skipped=status != "error")
        self._remember()
        return self._result(started, status, summary)

    # ---- guards (nasbox.scrub.guards) ---------------------------------------------------

    def _missing_mount(self, seen: guards.Seen | None) -> str | None:
        lost = guards.unmounted(seen) if seen and not self.force else []
        if not lost:
            return None
        return (f"{', '.join(map(show, map(os.fsencode, lost)))} was a mount point at the last scrub and is "
                f"not one now (not mounted?); parity is kept. Mount it, or if it is gone for good run "
                f"`scrub {self.job.name} --now --force`")

    def _open_folders(self, seen: guards.Seen | None) -> Folders:
        """DATABASE and its private folder (nasbox.scrub.trust), made on a job's first run; a
        DATABASE that earlier runs made and that is gone now is on a disk that did not mount,
        and is not made again below it."""
        may_create = seen is None or self.force
        try:
            return open_folders(self.database, may_create)
        except Missing:
            if may_create:
                raise
            raise Missing(f"DATABASE {self.job.database} is missing or empty (not mounted?); earlier runs kept "
                          f"parity there. Mount it, or to start a new DATABASE run "
                          f"`scrub {self.job.name} --now --force`") from None

    def _has_data(self) -> bool:
        """Whether DIRECTORY holds anything besides scrub databases."""
        with os.scandir(self.directory) as listing:
            for item in listing:
                st = item.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) not in self.database_ids:
                    return True
        return False

    def _remember(self) -> None:
        """What this complete run saw, for the guards of the next one."""
        directory = os.path.realpath(self.job.directory)
        inside = [os.path.join(directory, os.fsdecode(relative)) for relative in self.mount_points]
        above = guards.mount_points_above(self.job.directory) + guards.mount_points_above(self.job.database)
        self.memory.put(self.job.name, guards.Seen(self.job.directory, self.job.database,
                                                   tuple(sorted({*above, *inside}))))

    def _rebuild(self, catalog: Catalog) -> None:
        """An empty catalog beside parity files: the catalog was lost; recover it from them."""
        recovered = 0
        for entry in rebuild.entries(self.parity_root, PRIVATE):
            why = untrusted_entry(entry)
            if why:
                self._rejected(os.path.join(entry.dir, entry.name), why)
                continue
            catalog.put(entry)
            recovered += 1
        catalog.commit()
        if recovered:
            self._warn(f"the catalog was missing or empty: {recovered} entries recovered from the parity files; "
                       "each file is checked against its parity")

    def _lower_worker_priority(self) -> None:
        """The job's CPU and I/O priority for a worker thread, and so for the par2 processes
        it starts; on Linux both are per thread, so the caller's own priority is untouched."""
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, max(self.job.nice, os.getpriority(os.PRIO_PROCESS, thread)))
        ioclass = {"idle": psutil.IOPRIO_CLASS_IDLE, "best-effort": psutil.IOPRIO_CLASS_BE,
                   "realtime": psutil.IOPRIO_CLASS_RT}[self.job.ionice]
        psutil.Process(thread).ionice(ioclass)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """The database's own lock: whoever runs the engine (nasbox.jobs coordinates runs,
        so this only waits when something else scrubs the same database, or for the par2
        processes of a killed run, which hold it too). Leaving it closes the database's
        folders, which the run is over with."""
        assert self.folders is not None
        try:
            fd = os.open(b"lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=self.folders.private_fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self.lock_fd = fd
                yield
            finally:
                os.close(fd)
        finally:
            self.folders.close()
            # Their /proc/self/fd paths would now name whatever reuses the descriptors.
            self.private, self.parity_root = os.path.join(self.database, PRIVATE), self.database

    def _recover(self, catalog: Catalog) -> None:
        """Finish the moves a killed run began (a move that cannot be finished is dropped),
        take note of the repairs it began, and drop what it left half-done."""
        assert self.folders is not None
        for staging_name, entry in catalog.pending():
            staging = os.path.join(self.private, b"staging", staging_name)
            old = catalog.entries(entry.dir).get(entry.name)
            try:
                self._move_into_place(staging, entry, old)
            except OSError as e:
                catalog.abandon_move(entry)
                self._problem(os.path.join(entry.dir, entry.name), "the parity a stopped run made could not be "
                              f"installed ({e.strerror}) and was dropped; made again when needed", "skipped")
                continue
            catalog.end_move(entry)
            log.info("scrub %s: finished installing the parity of %s", self.job.name,
                     show(os.path.join(entry.dir, entry.name)))
        self._recover_repairs(catalog)
        for leftover in (b"staging", b"repair"):
            shutil.rmtree(leftover, ignore_errors=True, dir_fd=self.folders.private_fd)
            os.makedirs(os.path.join(self.private, leftover), 0o700, exist_ok=True)

    def _recover_repairs(self, catalog: Catalog) -> None:
        """A repair a killed run began wrote part of the file and so moved its ctime; while the
        file keeps its recorded size, mtime and inode, that ctime is the repair's, and the
        rest of the damage is repaired when it is next verified."""
        journal = os.path.join(self.private, REPAIRING)
        try:
            notes = os.listdir(journal)
        except FileNotFoundError:
            return
        for note in notes:
            path = os.path.join(journal, note)
            try:
                named = read_repairing_note(path)
            except OSError:
                named = None
            if named is None:
                self._warn(f"{show(os.path.join(PRIVATE, REPAIRING, note))}: not a note nasbox writes; removed")
            else:
                self._repair_was_begun(catalog, *named)
            with suppress(OSError):
                os.unlink(path)
        catalog.commit()

    def _repair_was_begun(self, catalog: Catalog, relative: bytes, name: bytes) -> None:
        entry = catalog.entries(relative).get(name)
        if entry is None:
            return
        try:
            st = _stat_file(self.directory, relative, name)
        except OSError:
            return  # gone, or a link now: the walk finds out
        if (st.st_size, st.st_mtime_ns, st.st_ino) == (entry.size, entry.mtime_ns, entry.inode):
            catalog.put(replace(entry, ctime_ns=st.st_ctime_ns))
            log.info("scrub %s: a stopped run began repairing %s; finished when it is next verified",
                     self.job.name, show(os.path.join(relative, name)))

    def _rejected(self, relative: bytes, why: str) -> None:
        self._problem(relative, f"an entry of the catalog was unsafe and has been dropped: {why}", "skipped")

    # ---- walking ---------------------------------------------------------------------

    def _scan(self, catalog: Catalog) -> None:
        self.devices[b""] = os.stat(self.directory).st_dev
        in_flight: set[Future[Done]] = set()

        def submit(path: bytes, task: Callable[..., Done], *args: object) -> None:
            stop.check()
            while len(in_flight) >= 4 * self.workers:  # bounded memory
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    in_flight.discard(future)
                    self._apply(catalog, future.result())
            in_flight.add(pool.submit(self._guarded, path, task, *args))

        with ThreadPoolExecutor(self.workers, thread_name_prefix="scrub",
                                initializer=self._lower_worker_priority) as pool:
            stack = [b""]
            while stack:
                stop.check()
                relative = stack.pop()
                files = self._list(catalog, relative, self.database_ids, stack)
                if files is not None:
                    self._plan_directory(catalog, relative, files, submit)
            for future in in_flight:
                self._apply(catalog, future.result())
        stop.check()  # a stopped run must not take unlisted directories for vanished ones
        self._find_vanished_directories(catalog)
        self._remove_vanished(catalog)

    def _list(self, catalog: Catalog, relative: bytes, database_ids: set[tuple[int, int]],
              stack: list[bytes]) -> dict[bytes, os.stat_result] | None:
        """The regular files of one directory; its subdirectories go on the stack."""
        try:
            entries = _read_directory(self.directory, relative)
        except OSError as e:
            if e.errno in NOT_THIS_FILE:
                return None  # gone, or a link now, since its parent was listed: its entries lose their parity
            self.unreadable.append(relative)
            self._problem(relative, f"cannot read the directory: {e.strerror}; its parity is kept", "skipped")
            return None
        catalog.saw(relative)
        files: dict[bytes, os.stat_result] = {}
        subdirectories: set[bytes] = set()
        for name, st in entries:
            path = os.path.join(relative, name)
            if stat.S_ISDIR(st.st_mode):
                # Never scrub parity: this job's DATABASE, nor another job's; known by identity.
                is_database = (st.st_dev, st.st_ino) in database_ids
                if not is_database and not self._excluded(path, True):
                    subdirectories.add(name)
                    if st.st_dev != self.devices.get(relative, st.st_dev):
                        self.mount_points.add(path)
                    self.devices[path] = st.st_dev
            elif stat.S_ISREG(st.st_mode) and not self._excluded(path, False):
                files[name] = st
        self._leave_out_unprotectable(catalog, relative, files, subdirectories)
        stack.extend(os.path.join(relative, name) for name in sorted(subdirectories, reverse=True))
        return files

    def _leave_out_unprotectable(self, catalog: Catalog, relative: bytes, files: dict[bytes, os.stat_result],
                                 subdirectories: set[bytes]) -> None:
        """Drop the files and subdirectories the parity layout cannot hold, each with a warning;
        a directory left out keeps whatever parity it has, a file left out loses its parity at
        once (not a file gone, within max_delete: its parity's name is another's now)."""
        for name in sorted(subdirectories):
            path = os.path.join(relative, name)
            why = layout.directory_problem(self.directory, path)
            if why:
                subdirectories.discard(name)
                self.unreadable.append(path)
                self._problem(path, why, "skipped")
        taken = layout.taken_parity_names(subdirectories)
        for name in sorted(files):
            why = layout.file_problem(self.directory, relative, name, files[name].st_size, self.job.redundancy,
                                      files, taken)
            if why:
                del files[name]
                self._problem(os.path.join(relative, name), why, "skipped")
                old = catalog.entries(relative).get(name)
                if old is not None:
                    self._remove(catalog, old)

    def _excluded(self, relative: bytes, is_dir: bool) -> bool:
        """rsync-like: a pattern without '/' matches a name at any depth, one with '/' the
        path from DIRECTORY; a trailing '/' matches directories only."""
        path = os.fsdecode(relative)
        name = path.rsplit("/", 1)[-1]
        for pattern in self.job.exclude:
            if pattern.endswith("/"):
                if not is_dir:
                    continue
                pattern = pattern[:-1]
            if fnmatch.fnmatchcase(path if "/" in pattern else name, pattern.lstrip("/")):
                return True
        return False

    def _plan_directory(self, catalog: Catalog, relative: bytes, files: dict[bytes, os.stat_result],
                        submit: Callable[..., None]) -> None:
        known = catalog.entries(relative)
        sampled = self.full and (self.job.verify_percent < 100 or self.job.verify_older_than_s)
        selected = catalog.selected(relative) if sampled else None
        for name, st in sorted(files.items()):
            path = os.path.join(relative, name)
            entry = known.pop(name, None)
            self.stats.files += 1
            self.stats.bytes += st.st_size
            if entry is None:
                submit(path, self._create_new, relative, name, st)
            elif entry.result == rebuild.REBUILT:
                submit(path, self._reconcile, entry, st)
            elif (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
                submit(path, self._create, relative, name, st, entry, "updated")
            elif (st.st_ino, st.st_ctime_ns) != (entry.inode, entry.ctime_ns) or not entry.settled:
                submit(path, self._check_copy, entry, st)
            elif self.full and (selected is None or name in selected):
                submit(path, self._verify, entry)
            else:
                self.progress.advance(files=1)
        self.vanished += known.values()

    def _find_vanished_directories(self, catalog: Catalog) -> None:
        for relative in catalog.unseen_directories():
            if any(_within(relative, bad) for bad in self.unreadable):
                continue
            self.vanished += catalog.entries(relative).values()
            self.vanished_directories.append(relative)

    def _remove_vanished(self, catalog: Catalog) -> None:
        """Remove the parity of the files that are gone, unless there are more than max_delete
        allows: a disk that did not mount, or a subdirectory on one, looks like this."""
        limit = deletion_limit(self.job.max_delete, self.protected)
        if len(self.vanished) > limit and not self.force:
            self.held = (f"{len(self.vanished)} of {self.protected} protected files are gone, more than max_delete "
                         f"allows ({limit}; not mounted?); their parity is kept. If they were deleted on purpose, "
                         f"run `scrub {self.job.name} --now --force`")
            return
        for entry in self.vanished:
            self._remove(catalog, entry)
        for relative in self.vanished_directories:
            try:
                self._parity_dir(relative)  # and so its parents: none is a link
            except OSError:
                continue
            _remove_empty_directories(self.parity_root, relative)

    # ---- workers ---------------------------------------------------------------------

    def _guarded(self, relative: bytes, task: Callable[..., Done], *args: object) -> Done:
        """Run a task; a file that became unreadable (or a link) is skipped, never fatal."""
        if stop.requested.is_set():
            return None  # queued before the stop: left for the next run
        try:
            return task(*args)
        except (OSError, par2format.DamagedParity) as e:
            return Problem(relative, f"skipped: {getattr(e, 'strerror', None) or e}", "skipped")

    def _create(self, relative: bytes, name: bytes, st: os.stat_result, old: Entry | None, reason: str) -> Done:
        read_started = time.time_ns()
        entry = Entry(relative, name, st.st_size, st.st_mtime_ns, st.st_ino, EMPTY_MD5, (), parity_at=time.time(),
                      ctime_ns=st.st_ctime_ns, settled=timestamps.settled(st, read_started))
        if st.st_size == 0:
            return Created(entry, None, old, reason)  # par2 cannot protect nothing
        staging_name = uuid.uuid4().hex.encode()
        staging = os.path.join(self.private, b"staging", staging_name)
        os.mkdir(staging, 0o700)
        data = os.path.join(self.directory, relative, name)
        large = st.st_size >= LARGE_FILE
        argv = par2.create(self.directory, STAGED + b".par2", data, st.st_size, self.job.redundancy,
                           self.workers if large else 1)  # into its working directory, staging
        with self.large_file_lock if large else _no_lock():
            result = commands.run(argv, check=False, timeout=None, cwd=staging, pass_fds=self._inherit())
        # par2 opened the file by its path: it must have read the file that was walked.
        try:
            after, head = _stat_and_head(self.directory, relative, name)
        except OSError as e:
            if e.errno not in NOT_THIS_FILE:
                raise
            after, head = None, b""
        if after is None or _metadata(after) != _metadata(st):
            shutil.rmtree(staging)
            return Problem(os.path.join(relative, name), "changed while its parity was made; again next run", "skipped")
        if result.returncode != 0:
            shutil.rmtree(staging)
            tail = result.stdout.strip().splitlines()[-1:] or [""]
            return Problem(os.path.join(relative, name), f"par2 create exited {result.returncode}: {tail[0]}", "failed")
        index = par2format.read_packets(os.path.join(staging, STAGED + b".par2"))
        if par2format.file_names(index) != {os.path.join(relative, name)} or par2format.head_md5(index) != head:
            shutil.rmtree(staging)
            return Problem(os.path.join(relative, name), "par2 read other files than this one; again next run",
                           "skipped")
        md5, length = par2format.file_md5(index)
        staged_volumes = sorted(v for v in os.listdir(staging) if v != STAGED + b".par2")
        for volume in staged_volumes:
            path = os.path.join(staging, volume)
            if os.path.getsize(path) < COMPACT_BELOW:  # beyond, the repeats cost under 1%
                par2format.compact(path)
        volumes = tuple(name + v[len(STAGED):] for v in staged_volumes)
        return Created(replace(entry, md5=md5, volumes=volumes, size=length), staging_name, old, reason)

    def _create_new(self, relative: bytes, name: bytes, st: os.stat_result) -> Done:
        """A file without an entry: new parity, unless a parity set of it is already there
        (an entry the catalog lost), which must not be overwritten unseen."""
        self._parity_dir(relative)  # no link on the way
        existing = rebuild.parity_entry(self.parity_root, relative, name)
        if existing is None or untrusted_entry(existing):
            return self._create(relative, name, st, None, "new")
        return self._reconcile(existing, st)

    def _check_copy(self, entry: Entry, st: os.stat_result) -> Done:
        """Same size and mtime, but another inode (a copy: a restore, rsync's rename) or ctime
        (written, and its mtime set back), or recorded too recently to prove anything: the
        content decides; a mismatch is an edit, never corruption."""
        read = _read(self.directory, entry.dir, entry.name)
        if read is not None and read.md5 == entry.md5 and _metadata(read.st) == _metadata(st):
            return Verified(_recorded(entry, read), st.st_ino)
        return self._create(entry.dir, entry.name, st, entry, "updated")

    def _verify(self, entry: Entry) -> Done:
        read_started = time.time_ns()
        try:
            fd = _open_file(self.directory, entry.dir, entry.name)
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
            return self._create(entry.dir, entry.name, st, entry, "updated")
        if md5 == entry.md5:
            if self._parity_intact(entry):
                return Verified(_recorded(entry, Read(md5, st, read_started)), entry.inode)
            return self._create(entry.dir, entry.name, st, entry, "parity_rebuilt")
        if not same_file(after, entry):
            return self._create(entry.dir, entry.name, after, entry, "updated")
        return self._repair(entry, read_started)

    def _reconcile(self, entry: Entry, st: os.stat_result) -> Done:
        """A file known only from its parity set (nasbox.scrub.rebuild), whose entry holds the
        time the parity was written as its mtime: the content and the file's times decide."""
        relative = os.path.join(entry.dir, entry.name)
        read = _read(self.directory, entry.dir, entry.name)
        if read is None:
            return Problem(relative, "changed while it was checked against its parity; again next run", "skipped")
        if (read.md5, read.st.st_size) == (entry.md5, entry.size):
            if self._parity_intact(entry):
                return Verified(_recorded(entry, read), read.st.st_ino)
            return self._create(entry.dir, entry.name, read.st, entry, "parity_rebuilt")
        if timestamps.settled_at(read.st.st_mtime_ns, read.st.st_ctime_ns) >= entry.mtime_ns:
            done = self._create(entry.dir, entry.name, read.st, entry, "updated")
            note = "differs from its parity set, which is older than its last change: taken for an edit"
            return replace(done, note=note, warns=True) if isinstance(done, Created) else done
        if read.st.st_size != entry.size:
            return Problem(relative, f"its size ({read.st.st_size}) differs from the {entry.size} bytes its parity "
                           "records, though it has not changed since its parity was written: left as it is, "
                           "parity kept (if this is an edit, touch the file)", "unrepairable")
        return self._repair(replace(entry, mtime_ns=read.st.st_mtime_ns, inode=read.st.st_ino,
                                    ctime_ns=read.st.st_ctime_ns), read.started_ns)

    def _repair(self, entry: Entry, read_started: int) -> Done:
        """Corruption: a mismatch in a file whose recorded metadata proves it unchanged. A
        repair writes into the file, so the entry records its metadata afterwards."""
        relative = os.path.join(entry.dir, entry.name)
        outcome = repair(self.directory, self._parity_dir(entry.dir), self.private, entry, self._inherit())
        if outcome.result is Result.REPAIRED and outcome.st is not None:
            return Repaired(_recorded(entry, Read(entry.md5, outcome.st, read_started)), outcome.st.st_ino)
        if outcome.result is Result.CHANGED:
            done = self._create(entry.dir, entry.name, _stat_file(self.directory, entry.dir, entry.name), entry,
                                "updated")
            return replace(done, note=outcome.detail) if isinstance(done, Created) else done
        return Problem(relative, outcome.detail, "unrepairable" if outcome.result is Result.BEYOND_REPAIR else "failed")

    def _inherit(self) -> tuple[int, ...]:
        """What a par2 process needs to reach the private folder through its descriptor, and
        the lock: a par2 outliving a killed run holds it, so the next run waits for it rather
        than clean up the directories it still writes in."""
        assert self.folders is not None
        return (self.folders.private_fd, self.lock_fd)

    def _parity_intact(self, entry: Entry) -> bool:
        if entry.size == 0:
            return True  # an empty file has no parity
        described = {os.path.join(entry.dir, entry.name)}
        try:
            parity_dir = self._parity_dir(entry.dir)
            index = par2format.read_packets(os.path.join(parity_dir, entry.name + b".par2"))
            for volume in entry.volumes:
                if par2format.file_names(par2format.read_packets(os.path.join(parity_dir, volume))) - described:
                    return False
            return par2format.file_names(index) == described and par2format.file_md5(index)[0] == entry.md5
        except (OSError, par2format.DamagedParity):
            return False

    def _parity_dir(self, relative: bytes) -> bytes:
        """DATABASE/relative, proven to have no link on the way (OSError otherwise): only
        nasbox writes in DATABASE, but a link planted before it was nasbox's must not lead
        parity out of it."""
        with suppress(FileNotFoundError):  # what is missing holds no link; makedirs makes real ones
            os.close(open_directory(self.parity_root, relative))
        return os.path.join(self.parity_root, relative)

    # ---- main thread: catalog and parity files -------------------------------------

    def _apply(self, catalog: Catalog, done: Done) -> None:
        if isinstance(done, (Created, Verified, Repaired)) and not done.entry.settled:
            self.unsettled.append(done.entry)
        if isinstance(done, Created):
            relative = os.path.join(done.entry.dir, done.entry.name)
            try:
                self._install(catalog, done)
            except OSError as e:
                self._problem(relative, f"its parity could not be put in place: {e.strerror}; again next run", "failed")
                self.progress.advance(files=1)
                return
            setattr(self.stats, done.reason, getattr(self.stats, done.reason) + 1)
            if done.reason == "parity_rebuilt":
                self._problem(relative, "parity was damaged and was rebuilt", None)
            if done.note:
                self._problem(relative, done.note, None)
                self.warned |= done.warns
            self.progress.advance(files=1, nbytes=done.entry.size)
        elif isinstance(done, Verified):
            catalog.mark_verified(done.entry, "good", done.inode)
            self.stats.verified += 1
            self.stats.bytes_verified += done.entry.size
            self.progress.advance(files=1, nbytes=done.entry.size)
        elif isinstance(done, Repaired):
            catalog.mark_verified(done.entry, "repaired", done.inode)
            self.stats.verified += 1
            self.stats.repaired += 1
            self.stats.bytes_verified += done.entry.size
            self._problem(os.path.join(done.entry.dir, done.entry.name), "was corrupt and has been repaired", None)
            self.progress.advance(files=1, nbytes=done.entry.size)
        elif isinstance(done, Problem):
            self._problem(done.relative, done.detail, done.counter)
            self.progress.advance(files=1)

    def _install(self, catalog: Catalog, done: Created) -> None:
        """Put a new parity set in place under a journal entry; one that cannot be is
        dropped, the file keeping its old entry (so the next run tries again)."""
        if done.staging is None:
            self._move_into_place(None, done.entry, done.old)
            catalog.put(done.entry)
            return
        staging = os.path.join(self.private, b"staging", done.staging)
        catalog.begin_move(done.staging, done.entry)
        try:
            self._move_into_place(staging, done.entry, done.old)
        except OSError:
            catalog.abandon_move(done.entry)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        catalog.end_move(done.entry)

    def _move_into_place(self, staging: bytes | None, entry: Entry, old: Entry | None) -> None:
        """Install a new parity set (or none, for an empty file) over the old one. Safe to
        repeat after a crash: what was moved already is skipped."""
        parity_dir = self._parity_dir(entry.dir)
        os.makedirs(parity_dir, exist_ok=True)
        index = entry.name + b".par2"
        if staging is not None:
            for name in entry.volumes:
                staged = STAGED + name[len(entry.name):]
                _replace_if_present(os.path.join(staging, staged), os.path.join(parity_dir, name))
        stale = set(old.volumes if old else ()) - set(entry.volumes)
        for name in stale | ({index} if staging is None else set()):
            _unlink_if_present(os.path.join(parity_dir, name))
        if staging is not None:
            _replace_if_present(os.path.join(staging, STAGED + b".par2"), os.path.join(parity_dir, index))
            shutil.rmtree(staging, ignore_errors=True)

    def _remove(self, catalog: Catalog, entry: Entry) -> None:
        try:
            parity_dir = self._parity_dir(entry.dir)
            for name in (entry.name + b".par2", *entry.volumes):
                _unlink_if_present(os.path.join(parity_dir, name))
        except OSError as e:  # kept in the catalog, so the next run tries again
            self._problem(os.path.join(entry.dir, entry.name), f"its parity could not be removed: {e.strerror}",
                          "failed")
            return
        catalog.delete(entry.dir, entry.name)
        self.stats.removed += 1

    def _settle(self, catalog: Catalog) -> None:
        """Files this run recorded within a timestamp tick of reading them: once the tick is
        over, read again; a match proves no edit hid behind unchanged times, and the entry is
        trusted. A mismatch leaves it untrusted: the next run takes it for an edit."""
        if not self.unsettled:
            return
        latest = max(timestamps.settled_at(e.mtime_ns, e.ctime_ns or 0) for e in self.unsettled)
        wait_s = (latest - time.time_ns()) / 1e9
        if 0 < wait_s <= MAX_SETTLE_WAIT_S:
            stop.requested.wait(wait_s)
        for entry in self.unsettled:
            stop.check()
            read = _read(self.directory, entry.dir, entry.name)
            if (read is not None and read.md5 == entry.md5 and same_file(read.st, entry)
                    and timestamps.settled(read.st, read.started_ns)):
                catalog.mark_settled(entry)

    # ---- report ----------------------------------------------------------------------

    def _warn(self, line: str) -> None:
        """A warning that no counter carries."""
        self.details.append(line)
        log.warning("scrub %s: %s", self.job.name, line)
        self.warned = True

    def _problem(self, relative: bytes, detail: str, counter: str | None) -> None:
        line = f"{show(relative)}: {detail}"
        self.details.append(line)
        log.warning("scrub %s: %s", self.job.name, line)
        if counter:
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)

    def _status(self) -> tuple[str, str]:
        s = self.stats
        if s.unrepairable or s.failed:
            status = "error"
        elif s.repaired or s.parity_rebuilt or s.skipped or self.warned:
            status = "warning"
        elif s.new or s.updated or s.removed:
            status = "info"
        else:
            status = "good"
        parts = [f"{s.files} files ({human_bytes(s.bytes)})", f"{s.new} new", f"{s.updated} updated"]
        if self.full:
            parts.append(f"{s.verified} verified")
        parts += [f"{s.repaired} repaired", f"{s.unrepairable} beyond repair", f"{s.removed} removed"]
        for name in ("parity_rebuilt", "skipped", "failed"):
            if getattr(s, name):
                parts.append(f"{getattr(s, name)} {name.replace('_', ' ')}")
        return status, ", ".join(parts)

    def _result(self, started: float, status: str, summary: str, skipped: bool = False) -> JobResult:
        finished = time.time()
        stats: dict[str, int | float] = {f.name: getattr(self.stats, f.name) for f in fields(Stats)}
        stats["duration_s"] = round(finished - started, 3)
        stats["verify_bytes_per_s"] = round(self.stats.bytes_verified / max(finished - started, 1e-6))
        return JobResult(job=self.job.name, kind="scrub", status=status, summary=summary, started=started,
                         finished=finished, details=self.details, stats=stats, skipped=skipped)


def _metadata(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is written, replaced, or has its mtime set back."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _read(root: bytes, relative: bytes, name: bytes) -> Read | None:
    """The file's MD5 and metadata; None when it changed while it was read."""
    started = time.time_ns()
    fd = _open_file(root, relative, name)
    try:
        before = os.fstat(fd)
        md5 = md5_of_fd(fd)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    return Read(md5, after, started) if _metadata(before) == _metadata(after) else None


def _recorded(entry: Entry, read: Read) -> Entry:
    """entry with the metadata of the file as it was read."""
    return replace(entry, size=read.st.st_size, mtime_ns=read.st.st_mtime_ns, inode=read.st.st_ino,
                   ctime_ns=read.st.st_ctime_ns, settled=timestamps.settled(read.st, read.started_ns))


def _identity(path: bytes) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return st.st_dev, st.st_ino


def _read_directory(root: bytes, relative: bytes) -> list[tuple[bytes, os.stat_result]]:
    """The names in root/relative with their lstat, reached through descriptors without
    following any link: a link swapped in for a directory is never entered."""
    fd = open_directory(root, relative)
    try:
        found = []
        with os.scandir(fd) as listing:
            for item in listing:
                try:
                    found.append((os.fsencode(item.name), item.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue
        return found
    finally:
        os.close(fd)


def _within(path: bytes, directory: bytes) -> bool:
    return directory == b"" or path == directory or path.startswith(directory + b"/")


def _open_file(root: bytes, relative: bytes, name: bytes) -> int:
    """root/relative/name for reading, reached without following any link."""
    dir_fd = open_directory(root, relative)
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _stat_file(root: bytes, relative: bytes, name: bytes) -> os.stat_result:
    """The metadata of root/relative/name, reached without following any link."""
    return _stat_and_head(root, relative, name)[0]


def _stat_and_head(root: bytes, relative: bytes, name: bytes) -> tuple[os.stat_result, bytes]:
    """The file's metadata and the MD5 of its first 16 KiB, as par2 records it."""
    fd = _open_file(root, relative, name)
    try:
        return os.fstat(fd), hashlib.md5(os.pread(fd, par2format.HEAD_BYTES, 0)).digest()
    finally:
        os.close(fd)


def _replace_if_present(source: bytes, target: bytes) -> None:
    with suppress(FileNotFoundError):
        os.replace(source, target)


def _unlink_if_present(path: bytes) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def _remove_empty_directories(database: bytes, relative: bytes) -> None:
    """Remove the parity directory of a vanished directory, and its parents, while empty."""
    while relative:
        try:
            os.rmdir(os.path.join(database, relative))
        except OSError:
            return
        relative = os.path.dirname(relative)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield
