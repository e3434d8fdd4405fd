"""The scrub of one job: check, walk DIRECTORY, give each file what it needs, report.

Scrub.run is the whole run, in order: the guards (nasbox.scrub.guards: DATABASE, the mounts
the job depends on; nasbox.scrub.trust: DATABASE and its private folder are used only when
nobody but nasbox can write them, through descriptors), the database's lock, the catalog
(nasbox.scrub.catalog; recovered from the parity files when lost, nasbox.scrub.rebuild),
what a killed run left (nasbox.scrub.install), the walk, and then, in _settle_sets:
1. the sets of the files that need parity (new, edited, or in the per-file layout of older
   catalogs) made as the walk finds them (nasbox.scrub.sets packs them);
2. the rows of files that are gone removed (after the whole walk, only within max_delete);
3. the parity files of every set with a file verified this run checked;
4. corrupt files repaired from their sets, before any set is made again;
5. the sets some files left (edited, gone, damaged parity) made again from the files still
   in them: a member whose content is not what its row records is never put in the new set
   (nasbox.scrub.work), it is repaired from the old one first;
6. the sets no file names any more removed;
then a second read of what was recorded within a timestamp tick (nasbox.scrub.work.settle),
and the result.

Every problem with one file (a name parity cannot be given, a failed par2, a set that
cannot be put in place) is that file's problem, reported and counted, never the job's.
A set that would leave less than the job's min_free in DATABASE is not made (its files keep
what they had, the run is an error); verification and repair go on. A catalog that cannot
be written (DATABASE's disk full) ends the run as an error, its unrecorded work undone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import gc
import hashlib
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from nasbox import stop
from nasbox.config.model import Config
from nasbox.limits import deletion_limit
from nasbox.progress import Progress, human_bytes
from nasbox.result import JobResult
from nasbox.samba import recycle
from nasbox.scrub import guards, install, readers, rebuild, walk, work
from nasbox.scrub.catalog import LAYOUT_VERSION, Catalog, Entry, open_catalog, show, untrusted
from nasbox.scrub.files import NOT_THIS_FILE, open_directory, same_file, stat_file
from nasbox.scrub.install import Parity
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.report import Report
from nasbox.scrub.sets import SETS, Candidate, Packer, Plan
from nasbox.scrub.tasks import Tasks
from nasbox.scrub.trust import PRIVATE, Folders, Missing, Untrusted, open_folders
from nasbox.scrub.walk import Need
from nasbox.scrub.work import (
    Changed,
    Corrupt,
    Done,
    Intact,
    Mode,
    NoSpace,
    Problem,
    Repaired,
    Restat,
    SetChecked,
    SetMade,
    ToRead,
    Verified,
    Worker,
    read_size,
)
from nasbox.versions.store import VERSIONS_DIR

log = logging.getLogger(__name__)

EMPTY_MD5 = hashlib.md5(b"").digest()
BATCH_FILES = 1024  # files of one directory read by one task
BATCH_BYTES = 16 << 20
GC_EVERY = 50_000  # allocations between the cycle collector's passes during the walk (_rare_gc)
REPAIR_ROUNDS = 2  # a member found corrupt while its set is made again is repaired, then regrouped


@dataclass(frozen=True)
class Listed:
    """A directory as the walk found it."""

    files: dict[bytes, os.stat_result | None]  # its regular files (None: listed without metadata)
    known: dict[bytes, Entry]  # its rows, by name
    verify: Callable[[bytes], bool]  # whether this run verifies a file of it, by name


def scrub_databases(config: Config) -> tuple[str, ...]:
    """The DATABASE of every scrub job, the versions of every sync job's destination and the
    shares' recycle bins: never scrubbed, whichever job's DIRECTORY holds them (a version
    shares its files with the mirror, whose parity protects them once; what is in a recycle
    bin was deleted)."""
    versions = (os.path.join(job.destination, VERSIONS_DIR) for job in config.sync.values())
    return (*(job.database for job in config.scrub.values()), *versions, *recycle.folders(config))


class Scrub:
    """One run of a scrub job. Worker threads only read files and make parity in staging
    directories; the catalog, the counters, the progress, the packer and the parity in place
    are written by the main thread alone (_apply, and what it calls), so none of them needs a
    lock."""

    def __init__(
        self,
        job: ScrubJob,
        update_only: bool = False,
        workers: int | None = None,
        databases: Iterable[str] = (),
        force: bool = False,
    ):
        """databases: those of the other scrub jobs (scrub_databases); force: run although a
        mount point is no longer mounted or DATABASE is missing, and remove parity beyond
        max_delete."""
        self.job = job
        self.full = not update_only
        self.force = force
        self.directory = os.fsencode(job.directory)
        self.database = os.fsencode(job.database)
        self.databases = [os.fsencode(d) for d in databases]
        self.workers = workers or os.cpu_count() or 1
        self.report = Report(job.name, self.full)
        self.tree = walk.Tree(job, self.directory, self.report)
        self.parity: Parity | None = None  # DATABASE, while the run holds its lock
        self.progress = Progress("", 0, 0)  # the run's own, once the catalog is open
        self.memory = guards.Memory()
        self.protected = 0  # files with parity when the walk began
        self.database_ids: set[tuple[int, int]] = set()
        self.vanished: list[Entry] = []  # removed after the walk, within max_delete
        self.unsettled: list[Entry] = []  # recorded by this run too recently to be trusted
        self.held: str | None = None
        self.packer = Packer()
        self.plans: list[Plan] = []  # sets to make, submitted by the main thread
        self.rereads: list[ToRead] = []  # files a read found changed since their row: read again
        self.corrupt: dict[bytes, list[Corrupt]] = {}  # by set id (a LEGACY row: by its path)
        self.left: set[bytes] = set()  # sets some file left this run: made again
        self.verified_sets: set[bytes] = set()  # sets with a file verified this run
        self.unrepaired: set[bytes] = set()  # corrupt files that keep their old set
        self.repaired: list[tuple[bytes, bytes]] = []  # (relative path, MD5) of each file repaired
        self.no_space: dict[bytes, int] = {}  # files whose set was not made for lack of space: their sizes
        self.no_space_reason = ""
        self.converted = 0  # LEGACY rows given a set

    @property
    def unreadable(self) -> list[bytes]:
        """The directories the walk could not read: their parity is kept."""
        return self.tree.unreadable

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> JobResult:
        started = time.time()
        kind = "scrub" if self.full else "parity update"
        result = self.report.result
        if not os.path.isdir(self.directory):
            return result(started, "warning", f"skipped: {self.job.directory} is missing", skipped=True)
        refused = guards.database_problem(self.job.directory, self.job.database)
        if refused:
            return result(started, "error", f"DATABASE refused: {refused}; nothing was written")
        seen = self.memory.get(self.job.name, self.job.directory, self.job.database)
        why_not = self._missing_mount(seen)
        if why_not:
            return result(started, "warning", f"skipped: {why_not}", skipped=True)
        try:
            folders = self._open_folders(seen)
        except Missing as e:
            return result(started, "warning", f"skipped: {e}", skipped=True)
        except Untrusted as e:
            return result(started, "error", f"refused: {e}", skipped=True)
        with self._lock(folders) as parity:
            catalog, damage = open_catalog(os.path.join(parity.private, b"catalog.sqlite"), self._rejected)
            try:
                if damage:
                    self.report.warn(damage)
                if not catalog.totals()[0]:  # before recover, which takes the sets no row names for orphans
                    self._rebuild(catalog, parity)
                else:  # and before recover removes the sets no row names any more
                    self._recover_rows(catalog, parity)
                install.recover(catalog, parity, self.directory, self.report)
                self.protected, protected_bytes = catalog.totals()
                own = os.fstat(folders.database_fd)
                self.database_ids = {(own.st_dev, own.st_ino)} | {_identity(d) for d in self.databases} - {(-1, -1)}
                if self.protected and not self._has_data():
                    return result(
                        started,
                        "warning",
                        f"skipped: {self.job.directory} is empty but "
                        f"{self.protected} files are protected (not mounted?)",
                        skipped=True,
                    )
                if self.full and (self.job.verify_percent < 100 or self.job.verify_older_than_s):
                    catalog.select_for_verify(self.job.verify_percent, self.job.verify_older_than_s)
                self.progress = Progress(f"{kind} {self.job.name}", self.protected, protected_bytes)
                wanted = self.full and self.protected >= readers.PROCESSES_FROM
                reading = readers.Readers(self.workers, self.job.nice, self.job.ionice, wanted, parity.inherit())
                with reading, _rare_gc():
                    self._scan(catalog, Worker(self.job, self.directory, parity, self.workers, reading))
                work.settle(catalog, self.directory, self.unsettled)
                self._coverage(catalog, parity)
                self.progress.finish()
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode & 0xFF != sqlite3.SQLITE_FULL:
                    raise
                self.progress.finish()
                catalog.rollback()  # a set half recorded is no set: its files are orphans to the next run
                self.report.error(
                    f"the filesystem of DATABASE {self.job.database} is full: the catalog could not be written; "
                    "the next run with space does again what this one did not record"
                )
                return result(started, *self.report.status())
            finally:
                catalog.close()
        status, summary = self.report.status()
        if self.held:
            return result(
                started,
                status if status == "error" else "warning",
                f"held: {self.held}; {summary}",
                skipped=status != "error",
            )
        self._remember()
        return result(started, status, summary)

    def _coverage(self, catalog: Catalog, parity: Parity) -> None:
        """What the parity covers now, for the history (the dashboard shows it)."""
        stats = self.report.stats
        stats.protected, stats.oldest_verified_at = catalog.coverage()
        stats.parity_bytes = 0
        for folder, _, names in os.walk(os.path.join(parity.private, SETS)):
            for name in names:
                with contextlib.suppress(OSError):
                    stats.parity_bytes += os.lstat(os.path.join(folder, name)).st_blocks * 512

    @contextmanager
    def vouching(self) -> Iterator[None]:
        """Around a change nasbox makes to the link counts of DIRECTORY's files (a version
        linking or unlinking them), which moves their ctime and nothing else: each file as its
        row recorded it before is recorded with its new ctime after, so that a later run does
        not take the moved ctime for a possible edit (and damage found then for part of it).
        A file not as recorded before is left to the next run. The new ctimes are recorded
        however the change ends: one that stops half-way (a full disk, a file that cannot be
        unlinked) has moved some all the same. Nothing without DATABASE."""
        try:
            folders = open_folders(self.database, may_create=False)
        except (Missing, Untrusted):
            yield
            return
        with self._lock(folders) as parity:
            catalog, _ = open_catalog(os.path.join(parity.private, b"catalog.sqlite"), self._rejected)
            try:
                entries = catalog.every_entry()
                before = self._stats(entries)
                as_recorded = [e for e in entries if e.relative in before and same_file(before[e.relative], e)]
                try:
                    yield
                finally:
                    after = self._stats(as_recorded)
                    for entry in as_recorded:
                        st = after.get(entry.relative)
                        if st is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == (
                            entry.size,
                            entry.mtime_ns,
                            entry.inode,
                        ):
                            catalog.put(dataclasses.replace(entry, ctime_ns=st.st_ctime_ns))
                    catalog.commit()
            finally:
                catalog.close()

    def _stats(self, entries: list[Entry]) -> dict[bytes, os.stat_result]:
        """The metadata of the entries' files that are there, by relative path; one directory
        descriptor for each directory."""
        found: dict[bytes, os.stat_result] = {}
        by_directory: dict[bytes, list[Entry]] = {}
        for entry in entries:
            by_directory.setdefault(entry.dir, []).append(entry)
        for directory, inside in by_directory.items():
            try:
                fd = open_directory(self.directory, directory)
            except OSError:
                continue
            try:
                for entry in inside:
                    with contextlib.suppress(OSError):
                        found[entry.relative] = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
            finally:
                os.close(fd)
        return found

    # ---- guards (nasbox.scrub.guards) ---------------------------------------------------

    def _missing_mount(self, seen: guards.Seen | None) -> str | None:
        lost = guards.unmounted(seen) if seen and not self.force else []
        if not lost:
            return None
        return (
            f"{', '.join(map(show, map(os.fsencode, lost)))} was a mount point at the last scrub and is "
            f"not one now (not mounted?); parity is kept. Mount it, or if it is gone for good run "
            f"`scrub {self.job.name} --now --force`"
        )

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
            raise Missing(
                f"DATABASE {self.job.database} is missing or empty (not mounted?); earlier runs kept "
                f"parity there. Mount it, or to start a new DATABASE run "
                f"`scrub {self.job.name} --now --force`"
            ) from None

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
        inside = [os.path.join(directory, os.fsdecode(relative)) for relative in self.tree.mount_points]
        above = guards.mount_points_above(self.job.directory) + guards.mount_points_above(self.job.database)
        self.memory.put(
            self.job.name, guards.Seen(self.job.directory, self.job.database, tuple(sorted({*above, *inside})))
        )

    @contextmanager
    def _lock(self, folders: Folders) -> Iterator[Parity]:
        """The database's own lock: whoever runs the engine (nasbox.jobs coordinates runs,
        so this only waits when something else scrubs the same database, or for the par2
        processes of a killed run, which hold it too). Leaving it closes the database's
        folders, which the run is over with. Not nasbox.locks: the lock file is opened through
        the private folder's descriptor, never by a path a link could redirect, and its
        descriptor is handed to par2."""
        try:
            fd = os.open(
                b"lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folders.private_fd
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self.parity = Parity(folders, fd)
                yield self.parity
            finally:
                os.close(fd)
        finally:
            folders.close()
            self.parity = None  # its /proc/self/fd paths would now name whatever reuses the descriptors

    def _rebuild(self, catalog: Catalog, parity: Parity) -> None:
        """An empty catalog beside parity files: the catalog was lost; recover it from them."""
        recovered = 0
        claimed: set[bytes] = set()
        for row, members in rebuild.recovered_sets(parity.private):
            sound = [m for m in members if self._sound(m)]
            catalog.add_set(row, sound)
            claimed |= {m.relative for m in sound}
            recovered += len(sound)
        for entry in rebuild.legacy_entries(parity.root, PRIVATE):
            if entry.relative not in claimed and self._sound(entry):
                catalog.put(entry)
                recovered += 1
        catalog.commit()
        if recovered:
            self.report.warn(
                f"the catalog was missing or empty: {recovered} entries recovered from the parity "
                "files; each file is checked against its parity"
            )

    def _recover_rows(self, catalog: Catalog, parity: Parity) -> None:
        """Rows the catalog lost while their sets are in place (fewer rows name such a set
        than it was made for): a file such a set describes that is still there and has no
        row gets the set's row back, so it is checked against that parity rather than given
        parity of whatever it holds now. A file whose row was removed on purpose is gone."""
        lacking = sorted({row.id for row in (*catalog.short_sets(), *catalog.unused_sets())})
        recovered = 0
        for entry in rebuild.rows_of_sets(parity.private, lacking):
            if catalog.entry(entry.dir, entry.name) is not None:
                continue  # a newer set's, or now in one
            try:
                regular = stat.S_ISREG(stat_file(self.directory, entry.dir, entry.name).st_mode)
            except OSError:
                regular = False
            if regular and self._sound(entry):  # else gone, or not a file nasbox reads: no row
                catalog.put(entry)
                recovered += 1
        catalog.commit()
        if recovered:
            self.report.warn(
                f"{recovered} entries were missing from the catalog and have been recovered from their "
                "parity sets; each file is checked against its parity"
            )

    def _sound(self, entry: Entry) -> bool:
        why = untrusted(entry.row())
        if why:
            self._rejected(entry.relative, why)
        return why is None

    def _rejected(self, relative: bytes, why: str) -> None:
        self._problem(relative, f"an entry of the catalog was unsafe and has been dropped: {why}", "skipped")

    # ---- the walk (nasbox.scrub.walk) and the workers (nasbox.scrub.work) ---------------

    def _scan(self, catalog: Catalog, worker: Worker) -> None:
        self.tree.begin()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="scrub", initializer=worker.lower_priority) as pool:
            tasks = Tasks(pool, worker, partial(self._apply, catalog), 4 * self.workers)
            stack = [b""]
            while stack:
                stop.check()
                relative = stack.pop()
                listed = self._list(catalog, relative, self.database_ids, stack)
                if listed is not None:
                    self._plan_directory(catalog, relative, listed, worker, tasks)
                self._submit_queued(worker, tasks)
            stop.check()  # a stopped run must not take unlisted directories for vanished ones
            for relative in self.tree.unseen_directories(catalog):
                self.vanished += catalog.entries(relative).values()
            self._settle_sets(catalog, worker, tasks)

    def _list(
        self, catalog: Catalog, relative: bytes, database_ids: set[tuple[int, int]], stack: list[bytes]
    ) -> Listed | None:
        """The regular files of one directory and their rows; its subdirectories go on the
        stack. A file parity cannot be given loses its row at once."""
        known = catalog.entries(relative)
        verify = self._verifies(catalog, relative)
        unstated = {name for name, entry in known.items() if verify(name) and _read_unstated(entry)}
        listing = self.tree.list_directory(relative, database_ids, unstated)
        if listing is None:
            return None
        catalog.saw(relative)
        for name in listing.left_out:
            old = known.pop(name, None)
            if old is not None:
                self._remove(catalog, old)
        stack.extend(reversed(listing.subdirectories))
        return Listed(listing.files, known, verify)

    def _verifies(self, catalog: Catalog, relative: bytes) -> Callable[[bytes], bool]:
        """Whether this run verifies a file of the directory, by name."""
        if not self.full:
            return lambda _name: False
        if self.job.verify_percent < 100 or self.job.verify_older_than_s:
            return catalog.selected(relative).__contains__
        return lambda _name: True

    def _plan_directory(self, catalog: Catalog, relative: bytes, listed: Listed, worker: Worker, tasks: Tasks) -> None:
        """What each file of a directory needs; the rows of the files not there are vanished."""
        stats = self.report.stats
        known, verify = listed.known, listed.verify
        reads: list[ToRead] = []
        unchanged = 0  # files that need nothing
        for name, st in sorted(listed.files.items()):
            entry = known.pop(name, None)
            stats.files += 1
            if st is None:  # listed without its metadata, which the read checks against its row
                assert entry is not None
                stats.bytes += entry.size
                reads.append((entry, None, Mode.VERIFY))
                continue
            stats.bytes += st.st_size
            need, mode = walk.need(st, entry, verify(name))
            if need is Need.NOTHING:
                unchanged += 1
            else:
                self._take(catalog, relative, name, st, entry, need, mode, reads)
        if unchanged:
            self.progress.advance(files=unchanged)
        for batch in _batches(reads):
            tasks.submit((e.relative for e, _, _ in batch), partial(worker.check, relative, batch))
        self.vanished += known.values()

    def _take(
        self,
        catalog: Catalog,
        relative: bytes,
        name: bytes,
        st: os.stat_result,
        entry: Entry | None,
        need: Need,
        mode: Mode | None,
        reads: list[ToRead],
    ) -> None:
        """Give a listed file what walk.need says it needs; the reads it needs go on reads."""
        if entry is None:  # not in the total the progress began with
            self.progress.found(files=1, nbytes=st.st_size)
        if need is Need.NEW:
            self._give_parity(catalog, Candidate(relative, name, st, None, "new"))
        elif need is Need.EDITED:
            assert entry is not None
            self._give_parity(catalog, Candidate(relative, name, st, entry, "updated"))
        elif need is Need.CONVERT:
            assert entry is not None
            self._give_parity(catalog, Candidate(relative, name, st, entry, None, expected=entry.md5))
            self.progress.advance(files=1)
        elif need is Need.READ:
            assert entry is not None and mode is not None
            reads.append((entry, st, mode))
        else:
            self.progress.advance(files=1)

    def _give_parity(self, catalog: Catalog, candidate: Candidate) -> None:
        """Queue a file for a set (an empty file needs none: it is recorded at once)."""
        old, st = candidate.old, candidate.st
        if old is not None and old.set_id is not None:
            self.left.add(old.set_id)  # it leaves its set, which is made again without it
        if st.st_size == 0:
            entry = Entry(
                candidate.dir,
                candidate.name,
                0,
                st.st_mtime_ns,
                st.st_ino,
                EMPTY_MD5,
                parity_at=time.time(),
                ctime_ns=st.st_ctime_ns,
                settled=False,
            )
            catalog.put(entry)
            self._recorded(entry)
            self._installed(candidate)
            return
        self.plans += self.packer.add(candidate)

    def _submit_queued(self, worker: Worker, tasks: Tasks) -> None:
        """The reads and sets what the workers brought back asks for."""
        while self.rereads:
            item = self.rereads.pop(0)
            tasks.submit([item[0].relative], partial(worker.check, item[0].dir, [item]))
        while self.plans:
            plan = self.plans.pop(0)
            tasks.submit([m.relative for m in plan.members], partial(worker.make_set, plan))

    def _settle_sets(self, catalog: Catalog, worker: Worker, tasks: Tasks) -> None:
        """After the walk: steps 1 to 6 of the run (see the module's docstring)."""
        tasks.drain()  # every read of the walk applied: the sets to check are all known, and its edits queued
        self._flush(worker, tasks)
        self._remove_vanished(catalog)
        if self.full:
            for set_id in sorted(self.verified_sets):
                row = catalog.set_row(set_id)
                if row is not None:
                    recorded = catalog.recorded(set_id) if row.digest is None else []
                    tasks.submit([], partial(worker.check_set, row, recorded))
            tasks.drain()
        for _round in range(REPAIR_ROUNDS):
            self._repair(catalog, worker, tasks)
            self._regroup(catalog)
            self._flush(worker, tasks)
        removed = install.collect(catalog, self._held())
        if removed:
            log.info("scrub %s: removed %d parity sets no file needs", self.job.name, removed)
        self._retire_legacy_layout(catalog)
        if self.no_space:
            self.report.error(
                f"parity of {len(self.no_space)} files ({human_bytes(sum(self.no_space.values()))}) was not made: "
                f"{self.no_space_reason}; they keep the parity they had, if any, until a run with space"
            )

    def _flush(self, worker: Worker, tasks: Tasks) -> None:
        """Make every set the packer holds, and what their making sends back to it; first what
        is in flight is applied (a read still running may verify a file, or queue it, or queue
        a read again)."""
        while True:
            tasks.drain()
            self.plans += self.packer.flush()
            if not self.plans and not self.rereads:
                break
            self._submit_queued(worker, tasks)

    def _repair(self, catalog: Catalog, worker: Worker, tasks: Tasks) -> None:
        """Repair the corrupt files found so far, each set's from that set."""
        corrupt, self.corrupt = self.corrupt, {}
        for _set, targets in sorted(corrupt.items()):
            first = targets[0].entry
            if first.set_id is None:  # LEGACY: its own set in the per-file layout
                files, members = install.legacy_files(self._held(), first), [first]
            else:
                row = catalog.set_row(first.set_id)
                if row is None:
                    for target in targets:
                        self._problem(target.entry.relative, "corrupt, and its parity set is gone", "unrepairable")
                    continue
                files, members = self._held().set_files(row), catalog.members(row.id)
            tasks.submit([t.entry.relative for t in targets], partial(worker.repair, files, targets, members))
        tasks.drain()

    def _regroup(self, catalog: Catalog) -> None:
        """Queue the files still in the sets some file left, to be made again without it."""
        for row in catalog.short_sets():
            self.left.add(row.id)
        left, self.left = self.left, set()
        queued = self.packer.queued() | {m.relative for plan in self.plans for m in plan.members}
        for set_id in sorted(left):
            for member in catalog.members(set_id):
                if member.relative in self.unrepaired or member.relative in self.no_space or member.relative in queued:
                    continue  # it keeps the old set, or is already on its way to a new one
                try:
                    st = stat_file(self.directory, member.dir, member.name)
                except OSError as e:
                    if e.errno not in NOT_THIS_FILE:
                        raise
                    continue  # gone since the walk: the next run removes its row
                if same_file(st, member):
                    self.plans += self.packer.add(Candidate(member.dir, member.name, st, member, None, member.md5))
                else:
                    self.plans += self.packer.add(Candidate(member.dir, member.name, st, member, "updated"))
                    self.progress.found(files=1, nbytes=st.st_size)

    def _retire_legacy_layout(self, catalog: Catalog) -> None:
        if self.converted:
            log.info("scrub %s: %d files moved from per-file parity into parity sets", self.job.name, self.converted)
        if catalog.legacy_count() == 0 and catalog.layout_version < LAYOUT_VERSION:
            swept = install.sweep_legacy(self._held(), self.database_ids)
            catalog.set_layout_version()
            if swept:
                log.info("scrub %s: removed %d parity files of the per-file layout", self.job.name, swept)

    def _remove_vanished(self, catalog: Catalog) -> None:
        """Remove the rows of the files that are gone, unless there are more than max_delete
        allows: a disk that did not mount, or a subdirectory on one, looks like this. --force
        approves as many as the held run counted, no more: more may have gone since."""
        limit = deletion_limit(self.job.max_delete, self.protected)
        approved = self.memory.held_removals(self.job.name) if self.force else None
        if len(self.vanished) > limit and (not self.force or (approved is not None and len(self.vanished) > approved)):
            since = f"; the hold --force passes counted {approved}: more are gone since" if approved is not None else ""
            self.held = (
                f"{len(self.vanished)} of {self.protected} protected files are gone, more than max_delete "
                f"allows ({limit}{since}; not mounted?); their parity is kept. If they were deleted on purpose, "
                f"run `scrub {self.job.name} --now --force`"
            )
            self.memory.hold_removals(self.job.name, len(self.vanished))
            return
        for entry in self.vanished:
            self._remove(catalog, entry)
        catalog.commit()

    # ---- main thread: what the workers bring back --------------------------------------

    def _apply(self, catalog: Catalog, done: Done) -> None:
        stats = self.report.stats
        if isinstance(done, Intact):
            catalog.mark_intact(done.directory, [entry.name for entry in done.entries])
            nbytes = sum(entry.size for entry in done.entries)
            stats.verified += len(done.entries)
            stats.bytes_verified += nbytes
            self.progress.advance(files=len(done.entries), nbytes=nbytes)
            self.verified_sets.update(entry.set_id for entry in done.entries if entry.set_id is not None)
        elif isinstance(done, Restat):
            stats.bytes += done.st.st_size - done.entry.size  # counted at its row's size when listed
            need, mode = walk.need(done.st, done.entry, True)
            self._take(catalog, done.entry.dir, done.entry.name, done.st, done.entry, need, mode, self.rereads)
        elif isinstance(done, Verified):
            catalog.mark_verified(done.entry, "good")
            stats.verified += 1
            stats.bytes_verified += done.entry.size
            self.progress.advance(files=1, nbytes=done.entry.size)
            self._recorded(done.entry)
            if done.entry.set_id is not None:
                self.verified_sets.add(done.entry.set_id)
            elif done.entry.legacy:
                candidate = Candidate(done.entry.dir, done.entry.name, done.st, done.entry, None, done.entry.md5)
                self._give_parity(catalog, candidate)
        elif isinstance(done, Repaired):
            catalog.mark_verified(done.entry, "repaired")
            stats.verified += 1
            stats.repaired += 1
            self.repaired.append((done.entry.relative, done.entry.md5))
            stats.bytes_verified += done.entry.size
            self._problem(done.entry.relative, "was corrupt and has been repaired", None)
            self.progress.advance(files=1, nbytes=done.entry.size)
            self._recorded(done.entry)
            if done.entry.legacy:  # repaired from its per-file parity: now into a set
                candidate = Candidate(done.entry.dir, done.entry.name, done.st, done.entry, None, done.entry.md5)
                self._give_parity(catalog, candidate)
        elif isinstance(done, Changed):
            if done.note:
                self._problem(done.candidate.relative, done.note, None)
                self.report.warned |= done.warns
            self._give_parity(catalog, done.candidate)
        elif isinstance(done, Corrupt):
            key = done.entry.set_id or b"/" + done.entry.relative
            self.corrupt.setdefault(key, []).append(done)
        elif isinstance(done, Problem):
            self._problem(done.relative, done.detail, done.counter)
            self.progress.advance(files=1)
            if done.counter in ("unrepairable", "failed"):
                self.unrepaired.add(done.relative)
        elif isinstance(done, SetMade):
            self._install(catalog, done)
        elif isinstance(done, NoSpace):
            self.no_space_reason = done.reason
            for member in done.members:
                self.no_space[member.relative] = member.st.st_size
                if member.reason:  # counted in the progress when it would have been given parity
                    self.progress.advance(files=1, nbytes=member.st.st_size)
        elif isinstance(done, SetChecked) and done.intact and done.digest is not None:
            catalog.set_digest(done.set_id, done.digest)
        elif isinstance(done, SetChecked) and not done.intact:
            members = catalog.members(done.set_id)
            self.report.stats.parity_rebuilt += len(members)
            self.report.warn(f"the parity set {show(done.set_id)} ({len(members)} files) was damaged; it is made again")
            self.left.add(done.set_id)

    def _install(self, catalog: Catalog, made: SetMade) -> None:
        entries = [entry for entry, _ in made.members]
        try:
            install.install(catalog, self._held(), made.row, made.staging, entries)
        except OSError as e:
            for entry in entries:
                self._problem(
                    entry.relative, f"its parity could not be put in place: {e.strerror}; again next run", "failed"
                )
                self.progress.advance(files=1)
        else:
            for entry, candidate in made.members:
                if candidate.old is not None and candidate.old.legacy:
                    install.remove_legacy(self._held(), candidate.old)
                    self.converted += 1
                self._recorded(entry)
                self._installed(candidate)

    def _installed(self, candidate: Candidate) -> None:
        """A file given parity: counted as new or updated (a file only regrouped is neither)."""
        if candidate.reason:
            self.report.stats.count(candidate.reason)
            self.progress.advance(files=1, nbytes=candidate.st.st_size)

    def _recorded(self, entry: Entry) -> None:
        if not entry.settled:
            self.unsettled.append(entry)

    def _remove(self, catalog: Catalog, entry: Entry) -> None:
        try:
            install.remove(catalog, self._held(), entry)
        except OSError as e:  # kept in the catalog, so the next run tries again
            self._problem(entry.relative, f"its parity could not be removed: {e.strerror}", "failed")
            return
        if entry.set_id is not None:
            self.left.add(entry.set_id)
        self.report.stats.removed += 1

    def _held(self) -> Parity:
        """DATABASE, which only a run holding its lock writes in."""
        assert self.parity is not None, "DATABASE is written only under its lock"
        return self.parity

    def _problem(self, relative: bytes, detail: str, counter: str | None) -> None:
        self.report.problem(relative, detail, counter)


def _batches(reads: list[ToRead]) -> Iterator[list[ToRead]]:
    """Reads of one directory in tasks of up to BATCH_FILES files and BATCH_BYTES bytes (a
    large file alone), so both cores work and a task costs little beside its files."""
    batch: list[ToRead] = []
    nbytes = 0
    for item in reads:
        size = read_size(item)
        if batch and (len(batch) >= BATCH_FILES or nbytes + size > BATCH_BYTES):
            yield batch
            batch, nbytes = [], 0
        batch.append(item)
        nbytes += size
    if batch:
        yield batch


def _read_unstated(entry: Entry) -> bool:
    """Whether a file this run verifies is listed without its metadata: its read checks that
    against its row anyway, and a file not as its row records it is not read but decided as
    if listed (Restat). Rows that may need anything other than a plain verify are stated."""
    return entry.settled and not entry.legacy and entry.result != rebuild.REBUILT


@contextmanager
def _rare_gc() -> Iterator[None]:
    """The walk makes and drops a few objects for every file, none of them in a cycle; the
    cycle collector's passes over them cost about 5% of a full scrub of small files. They
    run GC_EVERY allocations apart meanwhile, not 700."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], GC_EVERY), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _identity(path: bytes) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return st.st_dev, st.st_ino
