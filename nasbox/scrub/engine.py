"""The scrub of one job: check, walk DIRECTORY, give each file what it needs, report.

Scrub.run is the whole run, in order: the guards (nasbox.scrub.guards: DATABASE, the mounts
the job depends on; nasbox.scrub.trust: DATABASE and its private folder are used only when
nobody but nasbox can write them, through descriptors), the database's lock, the catalog
(nasbox.scrub.catalog; recovered from the parity files when lost, nasbox.scrub.rebuild),
what a killed run left (nasbox.scrub.install), the walk, the removal of the parity of files
that are gone (after the whole walk and only within max_delete), a second read of what was
recorded within a timestamp tick (nasbox.scrub.work.settle), and the result.

Where the rest lives: nasbox.scrub.walk lists DIRECTORY and decides what each file needs;
nasbox.scrub.work holds the tasks the worker threads run (create, verify, check a copy,
reconcile, repair: one par2 per file, both cores); nasbox.scrub.install moves parity into
place under a journal, removes it, and finishes a killed run's moves and repairs;
nasbox.scrub.report keeps the counters and detail lines and makes the status and summary.

Every problem with one file (a name the parity layout cannot hold, a failed par2, a parity
set that cannot be put in place) is that file's problem, reported and counted, never the
job's.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager

from nasbox import stop
from nasbox.config.model import Config
from nasbox.limits import deletion_limit
from nasbox.progress import Progress
from nasbox.result import JobResult
from nasbox.scrub import guards, install, rebuild, walk, work
from nasbox.scrub.catalog import Catalog, Entry, open_catalog, show, untrusted_entry
from nasbox.scrub.install import Parity
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.report import Report
from nasbox.scrub.trust import PRIVATE, Folders, Missing, Untrusted, open_folders
from nasbox.scrub.work import Created, Problem, Repaired, Task, Verified, Worker


def scrub_databases(config: Config) -> tuple[str, ...]:
    """The DATABASE of every scrub job: never scrubbed, whichever job's DIRECTORY holds it."""
    return tuple(job.database for job in config.scrub.values())


class Scrub:
    """One run of a scrub job. Worker threads only read files and make parity in staging
    directories; the catalog, the counters, the progress and the parity in place are written
    by the main thread alone (_apply, and what it calls), so none of them needs a lock."""

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
        self.vanished_directories: list[bytes] = []
        self.unsettled: list[Entry] = []  # recorded by this run too recently to be trusted
        self.held: str | None = None

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
                install.recover(catalog, parity, self.directory, self._move_into_place, self.report)
                if not catalog.totals()[0]:
                    self._rebuild(catalog, parity)
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
                self._scan(catalog, Worker(self.job, self.directory, parity, self.workers))
                work.settle(catalog, self.directory, self.unsettled)
                self.progress.finish()
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
        for entry in rebuild.entries(parity.root, PRIVATE):
            why = untrusted_entry(entry)
            if why:
                self._rejected(os.path.join(entry.dir, entry.name), why)
                continue
            catalog.put(entry)
            recovered += 1
        catalog.commit()
        if recovered:
            self.report.warn(
                f"the catalog was missing or empty: {recovered} entries recovered from the parity "
                "files; each file is checked against its parity"
            )

    def _rejected(self, relative: bytes, why: str) -> None:
        self._problem(relative, f"an entry of the catalog was unsafe and has been dropped: {why}", "skipped")

    # ---- the walk (nasbox.scrub.walk) and the workers (nasbox.scrub.work) ---------------

    def _scan(self, catalog: Catalog, worker: Worker) -> None:
        self.tree.begin()
        in_flight: set[Future[work.Done]] = set()

        def submit(path: bytes, task: Task) -> None:
            stop.check()
            while len(in_flight) >= 4 * self.workers:  # bounded memory
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    in_flight.discard(future)
                    self._apply(catalog, future.result())
            in_flight.add(pool.submit(worker.guarded, path, task))

        with ThreadPoolExecutor(self.workers, thread_name_prefix="scrub", initializer=worker.lower_priority) as pool:
            stack = [b""]
            while stack:
                stop.check()
                relative = stack.pop()
                files = self._list(catalog, relative, self.database_ids, stack)
                if files is not None:
                    self._plan_directory(catalog, relative, files, worker, submit)
            for future in in_flight:
                self._apply(catalog, future.result())
        stop.check()  # a stopped run must not take unlisted directories for vanished ones
        for relative in self.tree.unseen_directories(catalog):
            self.vanished += catalog.entries(relative).values()
            self.vanished_directories.append(relative)
        self._remove_vanished(catalog)

    def _list(
        self, catalog: Catalog, relative: bytes, database_ids: set[tuple[int, int]], stack: list[bytes]
    ) -> dict[bytes, os.stat_result] | None:
        """The regular files of one directory; its subdirectories go on the stack. A file the
        parity layout cannot hold loses its parity at once."""
        listing = self.tree.list_directory(relative, database_ids)
        if listing is None:
            return None
        catalog.saw(relative)
        for name in listing.left_out:
            old = catalog.entries(relative).get(name)
            if old is not None:
                self._remove(catalog, old)
        stack.extend(reversed(listing.subdirectories))
        return listing.files

    def _plan_directory(
        self,
        catalog: Catalog,
        relative: bytes,
        files: dict[bytes, os.stat_result],
        worker: Worker,
        submit: Callable[[bytes, Task], None],
    ) -> None:
        known = catalog.entries(relative)
        sampled = self.full and (self.job.verify_percent < 100 or self.job.verify_older_than_s)
        selected = catalog.selected(relative) if sampled else None
        for name, st in sorted(files.items()):
            entry = known.pop(name, None)
            self.report.stats.files += 1
            self.report.stats.bytes += st.st_size
            if entry is None:  # not in the total the progress began with
                self.progress.found(files=1, nbytes=st.st_size)
            task = walk.need(worker, relative, name, st, entry, self.full and (selected is None or name in selected))
            if task is None:
                self.progress.advance(files=1)
            else:
                submit(os.path.join(relative, name), task)
        self.vanished += known.values()

    def _remove_vanished(self, catalog: Catalog) -> None:
        """Remove the parity of the files that are gone, unless there are more than max_delete
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
        for relative in self.vanished_directories:
            install.remove_empty_directories(self._held(), relative)

    # ---- main thread: catalog and parity in place (nasbox.scrub.install) ------------------

    def _apply(self, catalog: Catalog, done: work.Done) -> None:
        """What a worker brought back, into the catalog, the parity in place and the counters."""
        stats = self.report.stats
        if isinstance(done, (Created, Verified, Repaired)) and not done.entry.settled:
            self.unsettled.append(done.entry)
        if isinstance(done, Created):
            relative = os.path.join(done.entry.dir, done.entry.name)
            try:
                install.install(catalog, self._held(), done.staging, done.entry, done.old, self._move_into_place)
            except OSError as e:
                self._problem(relative, f"its parity could not be put in place: {e.strerror}; again next run", "failed")
                self.progress.advance(files=1)
                return
            stats.count(done.reason)
            if done.reason == "parity_rebuilt":
                self._problem(relative, "parity was damaged and was rebuilt", None)
            if done.note:
                self._problem(relative, done.note, None)
                self.report.warned |= done.warns
            self.progress.advance(files=1, nbytes=done.entry.size)
        elif isinstance(done, Verified):
            catalog.mark_verified(done.entry, "good", done.inode)
            stats.verified += 1
            stats.bytes_verified += done.entry.size
            self.progress.advance(files=1, nbytes=done.entry.size)
        elif isinstance(done, Repaired):
            catalog.mark_verified(done.entry, "repaired", done.inode)
            stats.verified += 1
            stats.repaired += 1
            stats.bytes_verified += done.entry.size
            self._problem(os.path.join(done.entry.dir, done.entry.name), "was corrupt and has been repaired", None)
            self.progress.advance(files=1, nbytes=done.entry.size)
        elif isinstance(done, Problem):
            self._problem(done.relative, done.detail, done.counter)
            self.progress.advance(files=1)

    def _move_into_place(self, staging: bytes | None, entry: Entry, old: Entry | None) -> None:
        """Every move of a parity set into place, by the run or by the recovery of a killed one."""
        install.move_into_place(self._held(), staging, entry, old)

    def _remove(self, catalog: Catalog, entry: Entry) -> None:
        try:
            install.remove(catalog, self._held(), entry)
        except OSError as e:  # kept in the catalog, so the next run tries again
            self._problem(
                os.path.join(entry.dir, entry.name), f"its parity could not be removed: {e.strerror}", "failed"
            )
            return
        self.report.stats.removed += 1

    def _held(self) -> Parity:
        """DATABASE, which only a run holding its lock writes in."""
        assert self.parity is not None, "DATABASE is written only under its lock"
        return self.parity

    def _problem(self, relative: bytes, detail: str, counter: str | None) -> None:
        self.report.problem(relative, detail, counter)


def _identity(path: bytes) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return st.st_dev, st.st_ino
