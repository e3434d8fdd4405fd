"""Putting parity sets in place in DATABASE, taking away those of files that are gone, and
finishing what a killed run left.

A worker makes a file's parity set in a staging directory of the private folder (under the
name STAGED: par2 reads wildcards in parity file names); the main thread moves it into
place under a journal entry in the catalog, so that the next run finishes a move a killed
run began (recover). A repair a killed run began left a note (nasbox.scrub.repair), which
recover takes in. Every directory in DATABASE is reached through Parity.dir, proven to have
no link on the way.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace

from nasbox.scrub.catalog import Catalog, Entry, show
from nasbox.scrub.files import open_directory, stat_file
from nasbox.scrub.repair import RepairNote, interrupted_write_back, read_repairing_note, repaired_copy
from nasbox.scrub.report import Report
from nasbox.scrub.trust import PRIVATE, REPAIRING, Folders

log = logging.getLogger(__name__)

# A set is made and repaired under this name and renamed: <STAGED>.par2 becomes
# <file name>.par2, <STAGED>.vol0+1.par2 <file name>.vol0+1.par2.
STAGED = b"parity"

# Puts a staged set (or none, for an empty file) in place of an entry's old one.
Move = Callable[[bytes | None, Entry, Entry | None], None]


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
        with suppress(FileNotFoundError):  # what is missing holds no link; makedirs makes real ones
            os.close(open_directory(self.root, relative))
        return os.path.join(self.root, relative)

    def inherit(self) -> tuple[int, ...]:
        """What a par2 process needs to reach the private folder through its descriptor, and
        the lock: a par2 outliving a killed run holds it, so the next run waits for it rather
        than clean up the directories it still writes in."""
        return (self.folders.private_fd, self.lock_fd)


def move_into_place(parity: Parity, staging: bytes | None, entry: Entry, old: Entry | None) -> None:
    """Install a new parity set (or none, for an empty file) over the old one. Safe to
    repeat after a crash: what was moved already is skipped."""
    parity_dir = parity.dir(entry.dir)
    os.makedirs(parity_dir, exist_ok=True)
    index = entry.name + b".par2"
    if staging is not None:
        for name in entry.volumes:
            staged = STAGED + name[len(entry.name) :]
            _replace_if_present(os.path.join(staging, staged), os.path.join(parity_dir, name))
    stale = set(old.volumes if old else ()) - set(entry.volumes)
    for name in stale | ({index} if staging is None else set()):
        _unlink_if_present(os.path.join(parity_dir, name))
    if staging is not None:
        _replace_if_present(os.path.join(staging, STAGED + b".par2"), os.path.join(parity_dir, index))
        shutil.rmtree(staging, ignore_errors=True)


def install(
    catalog: Catalog, parity: Parity, staging_name: bytes | None, entry: Entry, old: Entry | None, move: Move
) -> None:
    """Put a new parity set in place under a journal entry; one that cannot be is dropped
    (OSError), the file keeping its old entry (so the next run tries again)."""
    if staging_name is None:
        move(None, entry, old)
        catalog.put(entry)
        return
    staging = parity.staging(staging_name)
    catalog.begin_move(staging_name, entry)
    try:
        move(staging, entry, old)
    except OSError:
        catalog.abandon_move(entry)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    catalog.end_move(entry)


def remove(catalog: Catalog, parity: Parity, entry: Entry) -> None:
    """Remove a file's parity set, then its entry (kept on OSError, so the next run tries again)."""
    parity_dir = parity.dir(entry.dir)
    for name in (entry.name + b".par2", *entry.volumes):
        _unlink_if_present(os.path.join(parity_dir, name))
    catalog.delete(entry.dir, entry.name)


def remove_empty_directories(parity: Parity, relative: bytes) -> None:
    """Remove the parity directory of a vanished directory, and its parents, while empty."""
    try:
        parity.dir(relative)  # and so its parents: none is a link
    except OSError:
        return
    while relative:
        try:
            os.rmdir(os.path.join(parity.root, relative))
        except OSError:
            return
        relative = os.path.dirname(relative)


def recover(catalog: Catalog, parity: Parity, directory: bytes, move: Move, report: Report) -> None:
    """Finish the moves a killed run began (a move that cannot be finished is dropped),
    take note of the repairs it began, and drop what it left half-done."""
    for staging_name, entry in catalog.pending():
        old = catalog.entries(entry.dir).get(entry.name)
        try:
            move(parity.staging(staging_name), entry, old)
        except OSError as e:
            catalog.abandon_move(entry)
            report.problem(
                os.path.join(entry.dir, entry.name),
                "the parity a stopped run made could not be "
                f"installed ({e.strerror}) and was dropped; made again when needed",
                "skipped",
            )
            continue
        catalog.end_move(entry)
        log.info(
            "scrub %s: finished installing the parity of %s", report.job, show(os.path.join(entry.dir, entry.name))
        )
    _recover_repairs(catalog, parity, directory, report)
    for leftover in (b"staging", b"repair"):
        shutil.rmtree(leftover, ignore_errors=True, dir_fd=parity.folders.private_fd)
        os.makedirs(os.path.join(parity.private, leftover), 0o700, exist_ok=True)


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
    entry = catalog.entries(note.dir).get(note.name)
    if entry is None:
        return
    try:
        st: os.stat_result | None = stat_file(directory, note.dir, note.name)
        if repaired_copy(private, note) is not None:  # it proves which writes were the repair's
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


def _replace_if_present(source: bytes, target: bytes) -> None:
    with suppress(FileNotFoundError):
        os.replace(source, target)


def _unlink_if_present(path: bytes) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
