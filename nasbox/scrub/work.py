"""What the worker threads do, and what they bring back.

No task writes the catalog or the counters: the main thread applies what they bring back
(nasbox.scrub.engine). Tasks:
- check: files of one directory read and compared with their rows (Mode says what a
  mismatch means): a match is Verified (the files found exactly as recorded together,
  Intact); a mismatch is an edit (Changed: new parity) or, in a file whose recorded
  metadata proves it unchanged, corruption (Corrupt: to repair); a file the walk listed
  without its metadata and the read found other than its row records goes back to the
  walk's rule (Restat);
- make_set: a parity set for a Plan of files, staged (SetMade; nasbox.scrub.install puts it
  in place), unless it would leave less than the job's min_free in DATABASE (NoSpace). par2
  reads each file by its path, so afterwards every member must still be the file that was
  walked; a member whose content par2 found other than its row says (Candidate
  .expected) is left out of the set (Mismatch): a corrupt neighbour is never blessed;
- check_set: a set's parity files read and their packets checked, and every member
  described as its row says;
- repair: corrupt members of one set repaired (nasbox.scrub.repair).
settle reads again, once a timestamp tick is over, what was recorded within one.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import Enum

import psutil

from nasbox import commands, space, stop
from nasbox.scrub import par2, par2format, setcheck, sets, timestamps
from nasbox.scrub.catalog import Catalog, Entry, SetRow, show
from nasbox.scrub.files import (
    NOT_THIS_FILE,
    Read,
    metadata,
    read,
    same_file,
    stat_and_head,
)
from nasbox.scrub.install import STAGED, Parity
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.readers import IOPRIO_CLASSES, FileRead, Readers
from nasbox.scrub.repair import Outcome, Result, repair
from nasbox.scrub.setcheck import Recorded
from nasbox.scrub.sets import Candidate, Plan

LARGE_FILE = 64 << 20  # from this size par2 gets every core, one file at a time
MAX_SETTLE_WAIT_S = 4.0  # longer than a coarse timestamp tick (nasbox.scrub.timestamps)
ATTEMPTS = 2  # a set is made again once without the members that changed while it was made


class Mode(Enum):
    VERIFY = "verify"  # a mismatch in a file whose metadata is as recorded: corruption
    COPY = "copy"  # another inode or ctime, or recorded too recently: a mismatch is an edit
    RECONCILE = "reconcile"  # a row recovered from its parity set (nasbox.scrub.rebuild)


# A file to read: its row, its metadata as listed (None: listed without it), and its Mode
ToRead = tuple[Entry, os.stat_result | None, Mode]


@dataclass(frozen=True)
class Verified:
    entry: Entry  # with the metadata the file had when it was read
    st: os.stat_result


@dataclass(frozen=True)
class Intact:
    """Files of one directory read and found as their rows record them, metadata and MD5: only
    their verified time changes."""

    directory: bytes
    entries: list[Entry]


@dataclass(frozen=True)
class Restat:
    """A file listed without its metadata (its row's stood in), which the read found other
    than its row records, and did not read: what it needs is decided as for a listed file."""

    entry: Entry
    st: os.stat_result


@dataclass(frozen=True)
class Changed:
    candidate: Candidate
    note: str | None = None  # a detail line to report with it
    warns: bool = False  # the note makes the run a warning


@dataclass(frozen=True)
class Corrupt:
    entry: Entry  # the row, with the metadata the file has
    read_started: int


@dataclass(frozen=True)
class Repaired:
    entry: Entry
    st: os.stat_result


@dataclass(frozen=True)
class Problem:
    relative: bytes
    detail: str
    counter: str | None  # the Stats field it counts in


@dataclass(frozen=True)
class SetMade:
    row: SetRow
    staging: bytes  # the staging directory's name
    members: tuple[tuple[Entry, Candidate], ...]


@dataclass(frozen=True)
class SetChecked:
    set_id: bytes
    intact: bool
    digest: bytes | None = None  # of the files of an intact set whose row kept none


@dataclass(frozen=True)
class NoSpace:
    """A set not made: it would leave less than min_free in DATABASE. Its members keep what
    they had (an old set, or no parity yet) until a run with space."""

    members: tuple[Candidate, ...]
    reason: str


Done = Verified | Intact | Restat | Changed | Corrupt | Repaired | Problem | SetMade | SetChecked | NoSpace
Task = Callable[[], list[Done]]


class Worker:
    """The tasks of one run, for its pool's threads: par2 gets one core per set, a large
    file every core, one large file at a time."""

    def __init__(self, job: ScrubJob, directory: bytes, parity: Parity, cores: int, readers: Readers):
        self.job = job
        self.directory = directory
        self.parity = parity
        self.cores = cores
        self.readers = readers
        self.large_file_lock = threading.Lock()
        self.space = space.Budget(job.database, job.min_free)  # shared by the sets made at once

    def lower_priority(self) -> None:
        """The job's CPU and I/O priority for a worker thread, and so for the par2 processes
        it starts; on Linux both are per thread, so the caller's own priority is untouched."""
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, max(self.job.nice, os.getpriority(os.PRIO_PROCESS, thread)))
        psutil.Process(thread).ionice(IOPRIO_CLASSES[self.job.ionice])

    def guarded(self, relatives: Iterable[bytes], task: Task) -> list[Done]:
        """Run a task; files that became unreadable (or links) are skipped, never fatal."""
        if stop.requested.is_set():
            return []  # queued before the stop: left for the next run
        try:
            return task()
        except (OSError, par2format.DamagedParity) as e:
            why = f"skipped: {getattr(e, 'strerror', None) or e}"
            return [Problem(relative, why, "skipped") for relative in relatives]

    # ---- reading files against their rows ------------------------------------------------

    def check(self, directory: bytes, items: list[ToRead]) -> list[Done]:
        """Files of one directory, read (nasbox.scrub.readers) and judged against their rows. A
        file listed without its metadata (None) is read in Mode.VERIFY."""
        names = [entry.name for entry, _, _ in items]
        expected = [_expected(entry) if mode is Mode.VERIFY else None for entry, _, mode in items]
        nbytes = sum(read_size(item) for item in items)
        try:
            reads = self.readers.read(self.directory, directory, names, expected, nbytes)
        except OSError as e:
            if e.errno not in NOT_THIS_FILE:
                raise
            return [Problem(entry.relative, "vanished during the scrub", "skipped") for entry, _, _ in items]
        intact: list[Entry] = []
        done: list[Done] = []
        for (entry, walked, mode), found in zip(items, reads, strict=True):
            if found is None:  # as its row records it
                if entry.legacy:  # its Verified carries the metadata its new set needs
                    assert walked is not None, "a LEGACY row's file is listed with its metadata"
                    done.append(Verified(entry, walked))
                else:
                    intact.append(entry)
            elif walked is None and found.md5 is None and found.before and stat.S_ISREG(found.before.st_mode):
                done.append(Restat(entry, found.before))
            else:
                done.append(_judge(entry, walked, mode, found))
        return [Intact(directory, intact), *done] if intact else done

    # ---- making a set --------------------------------------------------------------------

    def make_set(self, plan: Plan) -> list[Done]:
        with self.space.claim(sets.parity_bytes(plan, self.job.redundancy), inodes=3) as short:
            if short:
                return [NoSpace(plan.members, short)]
            return self._make_set(plan)

    def _make_set(self, plan: Plan) -> list[Done]:
        members, left_out = _one_per_par2_path(plan.members)
        for _attempt in range(ATTEMPTS):
            made, dropped = self._try_set(members, plan.slice_size)
            left_out += dropped
            if made is not None:
                return [made, *left_out]
            gone = {done_relative(d) for d in dropped}
            members = [m for m in members if m.relative not in gone]
            if not members:
                break
        return [*left_out, *(_again(m, "changed while its parity was made; again next run") for m in members)]

    def _try_set(self, members: list[Candidate], slice_size: int | None) -> tuple[SetMade | None, list[Done]]:
        """A set of members, staged; or None and the members to leave out before trying again
        (all of them, with the reason, when par2 failed for another reason)."""
        read_started = time.time_ns()
        set_id = sets.new_id()
        staging = self.parity.staging(set_id)
        os.mkdir(staging, 0o700)
        try:
            made, dropped = self._create(staging, set_id, members, slice_size, read_started)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if made is None:
            shutil.rmtree(staging, ignore_errors=True)
        return made, dropped

    def _create(
        self, staging: bytes, set_id: bytes, members: list[Candidate], slice_size: int | None, read_started: int
    ) -> tuple[SetMade | None, list[Done]]:
        slice_size, _slices, recovery = sets.shape(members, slice_size, self.job.redundancy)
        large = sum(m.st.st_size for m in members) >= LARGE_FILE
        data = [os.path.join(self.directory, m.relative) for m in members]
        argv = par2.create(
            self.directory, STAGED + b".par2", data, slice_size, recovery, self.cores if large else 1
        )  # into its working directory, staging
        unvouched = [m for m in members if m.expected is None]
        with self.large_file_lock if large else _no_lock(), ThreadPoolExecutor(1) as reading:
            # The files no row vouches for are read while par2 reads them: the two reads overlap.
            whole = reading.submit(self._read_whole, unvouched)
            result = commands.run(argv, check=False, timeout=None, cwd=staging, pass_fds=self.parity.inherit())
            read = whole.result()
        # par2 opened each file by its path: it must have read the file that was walked.
        read_now, changed = self._read_again(members, read)
        if changed:
            return None, changed
        if result.returncode != 0:
            tail = (result.stdout.strip().splitlines() or [""])[-1]
            why = f"par2 create exited {result.returncode}: {tail}"
            failed: list[Done] = [Problem(m.relative, why, "failed") for m in members]
            return None, failed
        index = par2format.read_packets(os.path.join(staging, STAGED + b".par2"))
        described = par2.as_par2_reads_them(par2format.descriptions(index))
        kept: list[tuple[Entry, Candidate]] = []
        dropped: list[Done] = []
        for member in members:
            found = described.get(par2.path_as_par2_reads_it(member.relative))
            if (
                found is None
                or found.length != member.st.st_size
                or read_now[member.relative] != (found.md5 if member.expected is None else found.head)
            ):
                dropped.append(_again(member, "par2 read another file than this one; again next run"))
            elif member.expected is not None and found.md5 != member.expected:
                dropped.append(self._mismatch(member))
            else:
                kept.append((self._entry(member, found.md5, set_id, read_started), member))
        if dropped or len(described) != len(members):
            return None, dropped or [_again(m, "par2 described other files; again next run") for m in members]
        staged = sorted(v for v in os.listdir(staging) if v != STAGED + b".par2")
        for volume in staged:
            par2format.strip(os.path.join(staging, volume))
        volumes = tuple(set_id + v[len(STAGED) :] for v in staged)
        digest = setcheck.digest_of([os.path.join(staging, name) for name in [STAGED + b".par2", *staged]])
        return SetMade(SetRow(set_id, volumes, len(members), time.time(), digest), set_id, tuple(kept)), []

    def _read_whole(self, members: list[Candidate]) -> dict[bytes, Read | None]:
        """{relative: MD5 and metadata} of each member, read through descriptors (None: it
        changed while it was read, or is gone or a link now)."""
        found: dict[bytes, Read | None] = {}
        for member in members:
            try:
                found[member.relative] = read(self.directory, member.dir, member.name)
            except OSError as e:
                if e.errno not in NOT_THIS_FILE:
                    raise
                found[member.relative] = None
        return found

    def _read_again(
        self, members: list[Candidate], whole: dict[bytes, Read | None]
    ) -> tuple[dict[bytes, bytes], list[Done]]:
        """{relative: MD5} of the members that are still the files the walk saw, and what to do
        instead with the others. The MD5 of the whole file (read while par2 ran, whole) for a
        member no row vouches for (a link swapped in while par2 ran could have shown it another
        file with the same first bytes); of its first 16 KiB for the others (the MD5 par2
        recorded must then be their row's, which _create checks)."""
        found: dict[bytes, bytes] = {}
        changed: list[Done] = []
        for member in members:
            try:
                now, digest = stat_and_head(self.directory, member.dir, member.name)
            except OSError as e:
                if e.errno not in NOT_THIS_FILE:
                    raise
                changed.append(Problem(member.relative, "vanished while its parity was made", "skipped"))
                continue
            read_then = whole.get(member.relative)
            if member.expected is None and read_then is not None:
                digest = read_then.md5
            unread = member.expected is None and (read_then is None or metadata(read_then.st) != metadata(member.st))
            if unread or metadata(now) != metadata(member.st):
                changed.append(_again(member, "changed while its parity was made; again next run"))
            else:
                found[member.relative] = digest
        return found, changed

    def _mismatch(self, member: Candidate) -> Done:
        """par2 read other content than the member's row records, with its metadata unchanged."""
        old = member.old
        if old is not None and old.settled and same_file(member.st, old):
            return Corrupt(old, time.time_ns())
        return Changed(replace(member, expected=None, reason=member.reason or "updated"))

    def _entry(self, member: Candidate, md5: bytes, set_id: bytes, read_started: int) -> Entry:
        st = member.st
        return Entry(
            member.dir,
            member.name,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            md5,
            parity_at=time.time(),
            verified_at=member.old.verified_at if member.old else None,
            result=member.old.result if member.old and member.expected else "created",
            ctime_ns=st.st_ctime_ns,
            settled=timestamps.settled(st, read_started),
            set_id=set_id,
        )

    # ---- parity ------------------------------------------------------------------------

    def check_set(self, row: SetRow, recorded: Recorded) -> list[Done]:
        """Whether the set's files are whole and describe the files whose rows name it as
        those rows say (nasbox.scrub.setcheck; recorded: needed only when its row keeps no
        digest, which it then gets)."""
        try:
            paths = self.parity.set_files(row)
        except OSError:  # a link on the way
            return [SetChecked(row.id, False)]
        intact, digest = self.readers.check_set(paths, row.files, recorded, row.digest)
        return [SetChecked(row.id, intact, digest if intact and row.digest is None else None)]

    def repair(self, parity_files: list[bytes], targets: list[Corrupt], members: list[Entry]) -> list[Done]:
        """Corrupt files that share the parity set parity_files (index first), which protects members."""
        entries = [t.entry for t in targets]
        outcomes = repair(self.directory, parity_files, self.parity.private, entries, members, self.parity.inherit())
        return [self._repaired(t, outcomes[t.entry.relative]) for t in targets]

    def _repaired(self, target: Corrupt, outcome: Outcome) -> Done:
        entry = target.entry
        if outcome.result is Result.REPAIRED and outcome.st is not None:
            started = outcome.read_started_ns or target.read_started
            return Repaired(recorded(entry, Read(entry.md5, outcome.st, started)), outcome.st)
        if outcome.result is Result.CHANGED:
            try:
                now = stat_and_head(self.directory, entry.dir, entry.name)[0]
            except OSError as e:
                if e.errno not in NOT_THIS_FILE:
                    raise
                return Problem(entry.relative, "vanished during its repair", "skipped")
            if same_file(now, entry):  # not written since it was found corrupt: no edit to keep
                why = "corrupt, and it was not where it was found when the repair opened it; again next run"
                return Problem(entry.relative, why, "failed")
            return replace(_edited(entry, now), note=outcome.detail)
        counter = "unrepairable" if outcome.result is Result.BEYOND_REPAIR else "failed"
        return Problem(entry.relative, outcome.detail, counter)


def read_size(item: ToRead) -> int:
    """The size of a file to read, as listed (or as its row records, listed without)."""
    entry, walked, _ = item
    return entry.size if walked is None else walked.st_size


def _expected(entry: Entry) -> tuple[int, int, int, int, bytes]:
    return entry.size, entry.mtime_ns, entry.ctime_ns or 0, entry.inode, entry.md5


def _judge(entry: Entry, walked: os.stat_result | None, mode: Mode, found: FileRead) -> Done:
    """What reading a file found, taken as mode says (walked: only None in Mode.VERIFY)."""
    if found.error is not None or found.before is None:
        return Problem(entry.relative, "vanished during the scrub", "skipped")
    if not stat.S_ISREG(found.before.st_mode):
        return Problem(entry.relative, "skipped: no longer a regular file", "skipped")
    if found.md5 is None or found.after is None:
        return _edited(entry, found.before)  # not as recorded: edited since the walk
    after = found.after
    if metadata(found.before) != metadata(after):
        return _edited(entry, after)
    if found.md5 == entry.md5 and after.st_size == entry.size:
        if mode is Mode.COPY and (walked is None or metadata(after) != metadata(walked)):
            return _edited(entry, after)
        return Verified(recorded(entry, Read(found.md5, after, found.started_ns)), after)
    if mode is Mode.COPY:
        return _edited(entry, after)
    if mode is Mode.RECONCILE:
        return _reconcile_mismatch(entry, Read(found.md5, after, found.started_ns))
    return Corrupt(entry, found.started_ns)


def _one_per_par2_path(members: tuple[Candidate, ...]) -> tuple[list[Candidate], list[Done]]:
    """par2 reads a name with a backslash or a control character as another path (a\\b as
    a/b), where a repair puts its copy: a member whose path so read is another member's, or
    a directory or file on another's way, is left out of the set (which could not be made,
    or repaired, with both)."""
    files: set[bytes] = set()
    directories: set[bytes] = set()
    kept: list[Candidate] = []
    clashes: list[Done] = []
    odd = [m for m in members if par2.path_as_par2_reads_it(m.relative) != m.relative]
    for member in [*(m for m in members if m not in odd), *odd]:  # names as par2 reads them first
        path = par2.path_as_par2_reads_it(member.relative)
        above = {path[:i] for i in range(len(path)) if path[i : i + 1] == b"/"}
        if path in files or path in directories or above & files:
            why = f"par2 would take it for {show(path)}, which another file of its parity set is in the way of"
            clashes.append(_again(member, f"{why}; again next run"))
        else:
            kept.append(member)
            files.add(path)
            directories |= above
    return [m for m in members if m in kept], clashes


def done_relative(done: Done) -> bytes:
    if isinstance(done, Changed):
        return done.candidate.relative
    if isinstance(done, Problem):
        return done.relative
    if isinstance(done, (Corrupt, Verified, Repaired)):
        return done.entry.relative
    raise TypeError(done)


def _edited(entry: Entry, now: os.stat_result) -> Changed:
    return Changed(Candidate(entry.dir, entry.name, now, entry, "updated"))


def _again(member: Candidate, why: str) -> Problem:
    return Problem(member.relative, why, "skipped")


def _reconcile_mismatch(entry: Entry, found: Read) -> Done:
    """A file known only from its parity set, whose row holds the time the parity was written
    as its mtime, differs from it: its times decide between an edit and corruption."""
    st = found.st
    if timestamps.settled_at(st.st_mtime_ns, st.st_ctime_ns) >= entry.mtime_ns:
        note = "differs from its parity set, which is older than its last change: taken for an edit"
        return Changed(Candidate(entry.dir, entry.name, st, entry, "updated"), note, warns=True)
    if st.st_size != entry.size:
        return Problem(
            entry.relative,
            f"its size ({st.st_size}) differs from the {entry.size} bytes its parity "
            "records, though it has not changed since its parity was written: left as it is, "
            "parity kept (if this is an edit, touch the file)",
            "unrepairable",
        )
    return Corrupt(replace(entry, mtime_ns=st.st_mtime_ns, inode=st.st_ino, ctime_ns=st.st_ctime_ns), found.started_ns)


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
