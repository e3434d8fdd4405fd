"""Putting parity sets in place in DATABASE, taking away those no file needs, and finishing
what a killed run left.

A worker makes a set in a staging directory of the private folder (under the name STAGED:
par2 reads wildcards in parity file names); the main thread moves its files into the
private folder's sets/ under the set's new id, then records the set and its members in one
transaction. A run killed before that transaction leaves set files no row names (orphans,
removed by the next run); one killed after it leaves the sets its members left behind,
which no row names any more (removed by collect, as every run does). A repair a killed run
began left a note (nasbox.scrub.repair), which recover takes in. Every directory outside the
private folder is reached through Parity.dir, proven to have no link on the way.

Catalogs made before sets kept each file's parity beside its mirrored path in DATABASE
(LEGACY rows); that parity goes once the file is in a set, and sweep_legacy takes away what
is left of that layout once no row uses it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from contextlib import suppress
from dataclasses import dataclass, replace

from nasbox.scrub import par2format, sets
from nasbox.scrub.catalog import STAGING_NAME, VOLUME_SUFFIX, Catalog, Entry, SetRow, show
from nasbox.scrub.files import open_directory, stat_file
from nasbox.scrub.repair import RepairNote, interrupted_write_back, read_repairing_note, repaired_copy
from nasbox.scrub.report import Report
from nasbox.scrub.trust import PRIVATE, REPAIRING, Folders

log = logging.getLogger(__name__)

# A set is made under this name and renamed: <STAGED>.par2 becomes <id>.par2,
# <STAGED>.vol0+1.par2 <id>.vol0+1.par2.
STAGED = b"parity"


@dataclass(frozen=True)
class Parity:
    """DATABASE while a run holds its lock, reached through its checked folders' descriptors."""

    folders: Folders
    lock_fd: int

    @property
    def root(self) -> bytes:
        return self.folders.database

    @property
    def private(self) -> bytes:
        return self.folders.private

    def staging(self, name: bytes) -> bytes:
        return os.path.join(self.private, b"staging", name)

    def dir(self, relative: bytes) -> bytes:
        """DATABASE/relative, proven to have no link on the way (OSError otherwise): only
        nasbox writes in DATABASE, but a link planted before it was nasbox's must not lead
        parity out of it."""
        with suppress(FileNotFoundError):  # what is missing holds no link
            os.close(open_directory(self.root, relative))
        return os.path.join(self.root, relative)

    def private_dir(self, relative: bytes) -> bytes:
        """The private folder's relative, proven to have no link on the way (OSError
        otherwise): a link planted in it before it was nasbox's must not lead parity out."""
        with suppress(FileNotFoundError):  # what is missing holds no link
            os.close(open_directory(self.private, relative))
        return os.path.join(self.private, relative)

    def set_files(self, row: SetRow) -> list[bytes]:
        self.private_dir(os.path.join(sets.SETS, row.id[:2]))
        return sets.set_files(self.private, row.id, row.volumes)

    def inherit(self) -> tuple[int, ...]:
        """What a par2 process needs to reach the private folder through its descriptor, and
        the lock: a par2 outliving a killed run holds it, so the next run waits for it rather
        than clean up the directories it still writes in."""
        return (self.folders.private_fd, self.lock_fd)


def legacy_files(parity: Parity, entry: Entry) -> list[bytes]:
    """The parity files of a LEGACY row, index first."""
    parity_dir = parity.dir(entry.dir)
    return [os.path.join(parity_dir, name) for name in (entry.name + b".par2", *entry.volumes)]


def install(catalog: Catalog, parity: Parity, row: SetRow, staging_name: bytes, members: list[Entry]) -> None:
    """Move a staged set into place and record it with its members; on OSError nothing is
    recorded (the members keep their rows and old parity; the next run tries again)."""
    staging = parity.staging(staging_name)
    target = parity.private_dir(os.path.join(sets.SETS, row.id[:2]))
    placed = []
    try:
        os.makedirs(target, 0o700, exist_ok=True)
        for staged, final in [(STAGED + v[len(row.id) :], v) for v in row.volumes] + [
            (STAGED + sets.INDEX_SUFFIX, row.id + sets.INDEX_SUFFIX)
        ]:  # the index last: an index is never in place without its recovery file
            os.replace(os.path.join(staging, staged), os.path.join(target, final))
            placed.append(os.path.join(target, final))
    except OSError:
        for path in placed:
            _unlink_if_present(path)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    catalog.add_set(row, members)


def remove_legacy(parity: Parity, entry: Entry) -> None:
    """The per-file parity of a row that no longer needs it."""
    if entry.legacy:
        for path in legacy_files(parity, entry):
            _unlink_if_present(path)


def remove(catalog: Catalog, parity: Parity, entry: Entry) -> None:
    """A file that is gone: its row goes (its set is made again without it), and its parity
    when it had its own (the row is kept on OSError, so the next run tries again)."""
    remove_legacy(parity, entry)
    catalog.delete(entry.dir, entry.name)


def collect(catalog: Catalog, parity: Parity) -> int:
    """Remove the sets no file names any more; how many went."""
    removed = 0
    for row in catalog.unused_sets():
        try:
            for path in parity.set_files(row):
                _unlink_if_present(path)
        except OSError as e:
            log.warning("cannot remove the parity set %s: %s; again next run", show(row.id), e.strerror)
            continue
        catalog.delete_set(row.id)
        removed += 1
    catalog.commit()
    return removed


def remove_orphans(catalog: Catalog, parity: Parity) -> None:
    """Set files that no set row names: left by a run killed before it recorded its set."""
    known = catalog.set_ids()
    top = parity.private_dir(sets.SETS)
    os.makedirs(top, 0o700, exist_ok=True)
    with os.scandir(top) as fanout:
        folders = [f.name for f in fanout if f.is_dir(follow_symlinks=False)]
    for folder in folders:
        where = os.path.join(top, os.fsencode(folder))
        for name in os.listdir(where):
            set_id = name[:32]
            if STAGING_NAME.fullmatch(set_id) and set_id not in known and _is_set_file(name[32:]):
                _unlink_if_present(os.path.join(where, name))
        with suppress(OSError):
            os.rmdir(where)  # only when empty


def _is_set_file(suffix: bytes) -> bool:
    return suffix == sets.INDEX_SUFFIX or VOLUME_SUFFIX.fullmatch(suffix) is not None


def sweep_legacy(parity: Parity, databases: set[tuple[int, int]]) -> int:
    """Remove what is left of the per-file layout outside the private folder: regular files
    named *.par2 that begin like a PAR2 file, then the directories left empty. Anything else
    stays, and so does every directory that is a scrub job's DATABASE (databases: their
    (st_dev, st_ino)): another job's may lie inside this one. How many files went."""
    removed = 0
    stack: list[tuple[bytes, bool]] = [(b"", False)]
    while stack:
        relative, listed = stack.pop()
        if listed:  # its subdirectories were swept: it goes when empty
            with suppress(OSError):
                os.rmdir(os.path.join(parity.dir(os.path.dirname(relative)), os.path.basename(relative)))
            continue
        try:
            fd = open_directory(parity.root, relative)
        except OSError:
            continue
        try:
            if relative:
                stack.append((relative, True))
            for name in map(os.fsencode, os.listdir(fd)):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    ours = relative == b"" and name == PRIVATE
                    if not ours and (st.st_dev, st.st_ino) not in databases:
                        stack.append((os.path.join(relative, name), False))
                elif stat.S_ISREG(st.st_mode) and name.endswith(b".par2") and _begins_like_par2(fd, name):
                    os.unlink(name, dir_fd=fd)
                    removed += 1
        finally:
            os.close(fd)
    return removed


def _begins_like_par2(dir_fd: int, name: bytes) -> bool:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        return os.read(fd, len(par2format.MAGIC)) == par2format.MAGIC
    finally:
        os.close(fd)


def recover(catalog: Catalog, parity: Parity, directory: bytes, report: Report) -> None:
    """Finish the moves of per-file parity a killed run of a catalog before sets journalled,
    take note of the repairs a killed run began, and drop what it left half-done: its
    working directories, set files it never recorded, and sets it left unused."""
    _finish_journalled_moves(catalog, parity, report)
    _recover_repairs(catalog, parity, directory, report)
    for leftover in (b"staging", b"repair"):
        shutil.rmtree(leftover, ignore_errors=True, dir_fd=parity.folders.private_fd)
        os.makedirs(os.path.join(parity.private, leftover), 0o700, exist_ok=True)
    remove_orphans(catalog, parity)
    collect(catalog, parity)


def _finish_journalled_moves(catalog: Catalog, parity: Parity, report: Report) -> None:
    """The staged parity of a journalled move is whole (the journal was written once par2 had
    made it) and may be all that can repair the file (its parity was made again because the
    old one was damaged): it is put in place as that run would have, recovery files first,
    and the file's row names it, until the walk gives the file a set. A staging directory
    that is missing or a link, or a staged file that is not a regular file, is never used."""
    for staging_name, entry in catalog.journalled_moves():
        old = catalog.entry(entry.dir, entry.name)
        if old is not None and not old.legacy:
            continue
        try:
            staging_fd = open_directory(parity.private, os.path.join(b"staging", staging_name))
        except OSError:
            continue  # the file keeps its row and parity
        try:
            parity_dir = parity.dir(entry.dir)
            os.makedirs(parity_dir, exist_ok=True)
            staged = [(STAGED + v[len(entry.name) :], v) for v in entry.volumes]
            for name, final in [*staged, (STAGED + sets.INDEX_SUFFIX, entry.name + sets.INDEX_SUFFIX)]:
                with suppress(FileNotFoundError):
                    if stat.S_ISREG(os.stat(name, dir_fd=staging_fd, follow_symlinks=False).st_mode):
                        os.replace(name, os.path.join(parity_dir, final), src_dir_fd=staging_fd)
        except OSError as e:
            report.problem(
                entry.relative,
                f"the parity a stopped run made could not be installed ({e.strerror}) and was dropped; "
                "made again when needed",
                "skipped",
            )
            continue
        finally:
            os.close(staging_fd)
        catalog.put(entry)
    catalog.drop_journal()


def _recover_repairs(catalog: Catalog, parity: Parity, directory: bytes, report: Report) -> None:
    """A repair a killed run began wrote part of the file and so moved its ctime (and its
    mtime, when killed before it set the times back); while the file holds nothing but the
    damage and the repair's own writes (nasbox.scrub.repair.interrupted_write_back), that
    ctime is the repair's, and the rest of the damage is repaired when it is next verified."""
    journal = os.path.join(parity.private, REPAIRING)
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
            report.warn(f"{show(os.path.join(PRIVATE, REPAIRING, note))}: not a note nasbox writes; removed")
        else:
            _repair_was_begun(catalog, directory, parity.private, named, job=report.job)
        with suppress(OSError):
            os.unlink(path)
    catalog.commit()


def _repair_was_begun(catalog: Catalog, directory: bytes, private: bytes, note: RepairNote, job: str) -> None:
    entry = catalog.entry(note.dir, note.name)
    if entry is None:
        return
    try:
        st: os.stat_result | None = stat_file(directory, note.dir, note.name)
        if note.repaired or repaired_copy(private, note) is not None:  # proves which writes were the repair's
            st = interrupted_write_back(directory, private, note, entry)
        elif st is not None and (st.st_size, st.st_mtime_ns, st.st_ino) != (entry.size, entry.mtime_ns, entry.inode):
            st = None
    except OSError:
        return  # gone, or a link now: the walk finds out
    if st is not None:
        catalog.put(replace(entry, ctime_ns=st.st_ctime_ns))
        log.info(
            "scrub %s: a stopped run began repairing %s; finished when it is next verified",
            job,
            show(os.path.join(note.dir, note.name)),
        )


def _unlink_if_present(path: bytes) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
