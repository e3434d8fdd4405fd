"""Catalog entries recovered from the parity files, when the catalog is lost or damaged.

Each index file (<DATABASE>/<path>.par2) records the name par2 gave its file, the file's
length and its MD5, so the parity itself says what the file was when it was protected. An
entry recovered this way knows no mtime, ctime or inode of the file: its mtime_ns holds the
index file's own mtime (when par2 wrote it, after reading the file), its result is REBUILT,
and the engine reconciles it with the file before anything else (nasbox.scrub.work,
Worker.reconcile).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator

from nasbox.scrub import par2, par2format
from nasbox.scrub.catalog import Entry

log = logging.getLogger(__name__)

REBUILT = "rebuilt"
INDEX_SUFFIX = b".par2"


def parity_entry(database: bytes, directory: bytes, name: bytes, siblings: list[bytes] | None = None) -> Entry | None:
    """The entry the parity set of DIRECTORY/directory/name records; None when it has no
    index, or one that is damaged, a recovery file, or made for another file."""
    parity_dir = os.path.join(database, directory)
    index = os.path.join(parity_dir, name + INDEX_SUFFIX)
    try:
        st = os.lstat(index)
        if not stat.S_ISREG(st.st_mode) or par2format.first_packet(index)[0] == par2format.RECOVERY_SLICE:
            return None
        packets = par2format.read_packets(index)
        described = par2format.file_description(packets)
    except (FileNotFoundError, NotADirectoryError, par2format.DamagedParity):
        return None
    if described.name != par2.path_as_par2_reads_it(os.path.join(directory, name)):
        return None  # not the parity of this file
    if siblings is None:
        siblings = os.listdir(parity_dir)
    set_id = packets[0].set_id
    # A recovery file of another set is a leftover; a damaged one is kept, to be found and rebuilt.
    volumes = tuple(
        sorted(v for v in siblings if _is_volume_of(v, name) and _set_of(os.path.join(parity_dir, v)) in (set_id, None))
    )
    return Entry(
        directory,
        name,
        described.length,
        st.st_mtime_ns,
        0,
        described.md5,
        volumes,
        parity_at=st.st_mtime,
        result=REBUILT,
        ctime_ns=None,
        settled=False,
    )


def entries(database: bytes, private: bytes) -> Iterator[Entry]:
    """Every entry the parity files in DATABASE record (its private folder left out)."""
    stack = [b""]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(os.path.join(database, directory)) as listing:
                items = [(i.name, i.is_dir(follow_symlinks=False)) for i in listing]
        except OSError as e:
            log.warning("cannot read %s: %s", os.fsdecode(os.path.join(database, directory)), e.strerror)
            continue
        names = [n for n, is_dir in items if not is_dir]
        for name, is_dir in items:
            path = os.path.join(directory, name)
            if is_dir and path != private:
                stack.append(path)
            elif not is_dir and name.endswith(INDEX_SUFFIX):
                entry = parity_entry(database, directory, name[: -len(INDEX_SUFFIX)], names)
                if entry is not None:
                    yield entry


def _is_volume_of(candidate: bytes, name: bytes) -> bool:
    if not candidate.endswith(INDEX_SUFFIX):
        return False
    match = par2.VOLUME_NAME.fullmatch(candidate[: -len(INDEX_SUFFIX)])
    return match is not None and match.group(1) == name


def _set_of(path: bytes) -> bytes | None:
    """The set id of a recovery file; None when its first packet cannot be read."""
    try:
        kind, set_id = par2format.first_packet(path)
    except par2format.DamagedParity:
        return None
    return set_id if kind == par2format.RECOVERY_SLICE else b""
