"""The scrub of one job: walk DIRECTORY, give each file what it needs, report.

For each regular file (symlinks, special files, DATABASE and excluded names are skipped):
- no entry in the catalog, or another size or mtime than recorded: a new file or an edit:
  new parity (never a repair);
- the same size and mtime but another inode: replaced by a copy; hashed, and new parity
  only when the content differs;
- otherwise, in a full scrub: hashed and compared with the MD5 par2 recorded. A match checks
  the parity files' own checksums (damaged parity is rebuilt); a mismatch with unchanged
  metadata is corruption, repaired by nasbox.scrub.repair.
Entries of files that are gone lose their parity. Parity is made by workers (one par2 per
file, both cores), staged, and moved into place by the main thread, which alone writes the
catalog; a journal entry lets the next run finish a move that a killed run began.
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
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

import psutil

from nasbox import commands, stop
from nasbox.config.model import ScrubJob
from nasbox.progress import Progress, human_bytes
from nasbox.result import JobResult
from nasbox.scrub import layout, par2, par2format
from nasbox.scrub.catalog import Catalog, Entry, show
from nasbox.scrub.repair import (
    NOT_THIS_FILE,
    Result,
    md5_of_fd,
    open_directory,
    repair,
    same_file,
)
from nasbox.scrub.trust import PRIVATE, Folders, Untrusted, open_folders

log = logging.getLogger(__name__)

EMPTY_MD5 = hashlib.md5(b"").digest()
# par2 reads wildcards in parity file names, so a set is made and repaired under this name
# and renamed: <STAGED>.par2 becomes <file name>.par2, <STAGED>.vol0+1.par2 <file name>.vol0+1.par2.
STAGED = b"parity"
LARGE_FILE = 64 << 20  # from this size par2 gets every core, one file at a time
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


class Scrub:
    def __init__(self, job: ScrubJob, update_only: bool = False, workers: int | None = None):
        self.job = job
        self.full = not update_only
        self.directory = os.fsencode(job.directory)
        self.database = os.fsencode(job.database)
        self.private = os.path.join(self.database, PRIVATE)
        self.folders: Folders | None = None  # DATABASE and private, open once checked
        self.lock_fd = -1  # the database's lock, held while running
        self.parity_root = self.database  # DATABASE through its descriptor while running
        self.workers = workers or os.cpu_count() or 1
        self.large_file_lock = threading.Lock()
        self.stats = Stats()
        self.details: list[str] = []
        self.unreadable: list[bytes] = []
        self.progress: Progress | None = None

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> JobResult:
        started = time.time()
        kind = "scrub" if self.full else "parity update"
        if not os.path.isdir(self.directory):
            return self._result(started, "warning", f"skipped: {self.job.directory} is missing", skipped=True)
        try:
            self.folders = open_folders(self.database)
        except Untrusted as e:
            return self._result(started, "error", f"refused: {e}", skipped=True)
        self.private, self.parity_root = self.folders.private, self.folders.database
        with self._lock():
            catalog = Catalog(os.path.join(self.private, b"catalog.sqlite"), reject=self._rejected)
            try:
                self._recover(catalog)
                protected, protected_bytes = catalog.totals()
                if protected and not [e for e in os.listdir(self.directory)
                                      if os.path.join(self.directory, e) != self.database]:
                    return self._result(started, "warning", f"skipped: {self.job.directory} is empty but "
                                        f"{protected} files are protected (not mounted?)", skipped=True)
                if self.full and (self.job.verify_percent < 100 or self.job.verify_older_than_s):
                    catalog.select_for_verify(self.job.verify_percent, self.job.verify_older_than_s)
                self.progress = Progress(f"{kind} {self.job.name}", protected, protected_bytes)
                self._scan(catalog)
                self.progress.finish()
            finally:
                catalog.close()
        return self._result(started, *self._status())

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
        and drop what it left half-done."""
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
        for leftover in (b"staging", b"repair"):
            shutil.rmtree(leftover, ignore_errors=True, dir_fd=self.folders.private_fd)
            os.makedirs(os.path.join(self.private, leftover), 0o700, exist_ok=True)

    def _rejected(self, relative: bytes, why: str) -> None:
        self._problem(relative, f"an entry of the catalog was unsafe and has been dropped: {why}", "skipped")

    # ---- walking ---------------------------------------------------------------------

    def _scan(self, catalog: Catalog) -> None:
        database_id = _identity(self.database)
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
                files = self._list(catalog, relative, database_id, stack)
                if files is not None:
                    self._plan_directory(catalog, relative, files, submit)
            for future in in_flight:
                self._apply(catalog, future.result())
        stop.check()  # a stopped run must not take unlisted directories for vanished ones
        self._remove_vanished_directories(catalog)

    def _list(self, catalog: Catalog, relative: bytes, database_id: tuple[int, int],
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
                # Never scrub parity: this job's DATABASE, nor another job's (it holds .nasbox-scrub).
                is_database = (st.st_dev, st.st_ino) == database_id or os.path.isdir(
                    os.path.join(self.directory, path, PRIVATE))
                if not is_database and not self._excluded(path, True):
                    subdirectories.add(name)
            elif stat.S_ISREG(st.st_mode) and not self._excluded(path, False):
                files[name] = st
        self._leave_out_unprotectable(relative, files, subdirectories)
        stack.extend(os.path.join(relative, name) for name in sorted(subdirectories, reverse=True))
        return files

    def _leave_out_unprotectable(self, relative: bytes, files: dict[bytes, os.stat_result],
                                 subdirectories: set[bytes]) -> None:
        """Drop the files and subdirectories the parity layout cannot hold, each with a warning;
        a directory left out keeps whatever parity it has."""
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
                submit(path, self._create, relative, name, st, None, "new")
            elif (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
                submit(path, self._create, relative, name, st, entry, "updated")
            elif st.st_ino != entry.inode:
                submit(path, self._check_copy, entry, st)
            elif self.full and (selected is None or name in selected):
                submit(path, self._verify, entry)
            else:
                self.progress.advance(files=1)
        for entry in known.values():
            self._remove(catalog, entry)

    def _remove_vanished_directories(self, catalog: Catalog) -> None:
        for relative in catalog.unseen_directories():
            if any(_within(relative, bad) for bad in self.unreadable):
                continue
            for entry in catalog.entries(relative).values():
                self._remove(catalog, entry)
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
        entry = Entry(relative, name, st.st_size, st.st_mtime_ns, st.st_ino, EMPTY_MD5, (), parity_at=time.time())
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
            after, head = _lstat_and_head(self.directory, relative, name)
        except OSError as e:
            if e.errno not in NOT_THIS_FILE:
                raise
            after, head = None, b""
        if after is None or (after.st_size, after.st_mtime_ns, after.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino):
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

    def _check_copy(self, entry: Entry, st: os.stat_result) -> Done:
        """Same size and mtime, another inode: a copy (a restore, rsync's rename) or a new file."""
        fd = _open_file(self.directory, entry.dir, entry.name)
        try:
            md5 = md5_of_fd(fd)
        finally:
            os.close(fd)
        if md5 == entry.md5:
            return Verified(entry, st.st_ino)
        return self._create(entry.dir, entry.name, st, entry, "updated")

    def _verify(self, entry: Entry) -> Done:
        path = os.path.join(self.directory, entry.dir, entry.name)
        try:
            fd = _open_file(self.directory, entry.dir, entry.name)
        except OSError as e:
            if e.errno not in NOT_THIS_FILE:
                raise
            return Problem(os.path.join(entry.dir, entry.name), "vanished during the scrub", "skipped")
        try:
            st = os.fstat(fd)
            md5 = md5_of_fd(fd) if same_file(st, entry) else None
        finally:
            os.close(fd)
        if md5 is None:  # edited since the walk
            return self._create(entry.dir, entry.name, st, entry, "updated")
        if md5 == entry.md5:
            if self._parity_intact(entry):
                return Verified(entry, entry.inode)
            return self._create(entry.dir, entry.name, st, entry, "parity_rebuilt")
        if not same_file(os.lstat(path), entry):
            return self._create(entry.dir, entry.name, os.lstat(path), entry, "updated")
        outcome = repair(self.directory, self._parity_dir(entry.dir),
                         os.path.join(self.private, b"repair"), entry, self._inherit())
        relative = os.path.join(entry.dir, entry.name)
        if outcome.result is Result.REPAIRED:
            return Repaired(entry, os.lstat(path).st_ino)
        if outcome.result is Result.CHANGED:
            done = self._create(entry.dir, entry.name, os.lstat(path), entry, "updated")
            return replace(done, note=outcome.detail) if isinstance(done, Created) else done
        return Problem(relative, outcome.detail, "unrepairable" if outcome.result is Result.BEYOND_REPAIR else "failed")

    def _inherit(self) -> tuple[int, ...]:
        """What a par2 process needs to reach the private folder through its descriptor, and
        the lock: a par2 outliving a killed run holds it, so the next run waits for it rather
        than clean up the directories it still writes in."""
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
        try:
            os.close(open_directory(self.parity_root, relative))
        except FileNotFoundError:
            pass  # what is missing holds no link; makedirs makes real directories
        return os.path.join(self.parity_root, relative)

    # ---- main thread: catalog and parity files -------------------------------------

    def _apply(self, catalog: Catalog, done: Done) -> None:
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

    # ---- report ----------------------------------------------------------------------

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
        elif s.repaired or s.parity_rebuilt or s.skipped:
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


def _lstat_and_head(root: bytes, relative: bytes, name: bytes) -> tuple[os.stat_result, bytes]:
    """The file's metadata and the MD5 of its first 16 KiB, as par2 records it."""
    fd = _open_file(root, relative, name)
    try:
        return os.fstat(fd), hashlib.md5(os.pread(fd, par2format.HEAD_BYTES, 0)).digest()
    finally:
        os.close(fd)


def _replace_if_present(source: bytes, target: bytes) -> None:
    try:
        os.replace(source, target)
    except FileNotFoundError:
        pass


def _unlink_if_present(path: bytes) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


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
