"""Catalog rows recovered from the parity files, when the catalog is lost or damaged.

Each set's index file (nasbox.scrub.sets) records, for every file it protects, the name par2
gave it, its length and its MD5, so the parity itself says what the files were when they
were protected. A row recovered this way knows no mtime, ctime or inode of the file: its
mtime_ns holds the index file's own mtime (when par2 wrote it, after reading the files), its
result is REBUILT, and the engine reconciles it with the file before anything else
(nasbox.scrub.work, Mode.RECONCILE). A file two sets describe (a killed run made the newer)
belongs to the newer.

Parity in the per-file layout of catalogs made before sets (<DATABASE>/<path>.par2) is
recovered as LEGACY rows, for files no set describes.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator

from nasbox.scrub import par2, par2format, sets
from nasbox.scrub.catalog import STAGING_NAME, Entry, SetRow

log = logging.getLogger(__name__)

REBUILT = "rebuilt"
INDEX_SUFFIX = b".par2"


def recovered_sets(private: bytes) -> Iterator[tuple[SetRow, list[Entry]]]:
    """Every set in the private folder's sets/ with the rows of the files it protects, the
    newest first; a file is given to the first set that describes it."""
    found = []
    top = os.path.join(private, sets.SETS)
    for folder in _listing(top) if _is_directory(top) else []:
        where = os.path.join(top, folder)
        if not _is_directory(where):
            continue  # a link leads to parity nasbox did not make
        names = _listing(where)
        for name in names:
            set_id = name[: -len(INDEX_SUFFIX)]
            if name.endswith(INDEX_SUFFIX) and STAGING_NAME.fullmatch(set_id):
                recovered = _set_of_index(where, set_id, names)
                if recovered is not None:
                    found.append(recovered)
    claimed: set[bytes] = set()
    for row, described in sorted(found, key=lambda pair: -pair[0].made_at):
        members = []
        for description in described:
            if description.name not in claimed:
                claimed.add(description.name)
                members.append(_row(description, row))
        yield row, members


def rows_of_sets(private: bytes, set_ids: Iterable[bytes]) -> Iterator[Entry]:
    """The rows the index files of the given sets record (each as a recovered row of the set
    as its index describes it), the newest set first: for files a catalog lost the rows of
    while their sets are still in place."""
    found = []
    for set_id in set_ids:
        where = sets.set_dir(private, set_id)
        recovered = _set_of_index(where, set_id, _listing(where))
        if recovered is not None:
            found.append(recovered)
    for row, described in sorted(found, key=lambda pair: -pair[0].made_at):
        for description in described:
            yield _row(description, row)


def _set_of_index(
    where: bytes, set_id: bytes, siblings: list[bytes]
) -> tuple[SetRow, list[par2format.FileDescription]] | None:
    index = os.path.join(where, set_id + INDEX_SUFFIX)
    try:
        st = os.lstat(index)
        if not stat.S_ISREG(st.st_mode) or par2format.first_packet(index)[0] == par2format.RECOVERY_SLICE:
            return None
        packets = par2format.read_packets(index)
    except (OSError, par2format.DamagedParity):
        return None
    described = list(par2format.descriptions(packets).values())
    if not described:
        return None
    volumes = tuple(sorted(v for v in siblings if _is_volume_of(v, set_id)))
    return SetRow(set_id, volumes, len(described), st.st_mtime), described


def _row(description: par2format.FileDescription, row: SetRow) -> Entry:
    return Entry(
        os.path.dirname(description.name),
        os.path.basename(description.name),
        description.length,
        int(row.made_at * 1e9),
        0,
        description.md5,
        parity_at=row.made_at,
        result=REBUILT,
        ctime_ns=None,
        settled=False,
        set_id=row.id,
    )


def _is_directory(path: bytes) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _listing(path: bytes) -> list[bytes]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _legacy_entry(database: bytes, directory: bytes, name: bytes, siblings: list[bytes]) -> Entry | None:
    """The LEGACY row the per-file parity of DIRECTORY/directory/name records; None when it has no
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
    if described.name != os.path.join(directory, name):
        return None  # not the parity of this file
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


def legacy_entries(database: bytes, private: bytes) -> Iterator[Entry]:
    """Every LEGACY row the per-file parity in DATABASE records (its private folder left out)."""
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
                entry = _legacy_entry(database, directory, name[: -len(INDEX_SUFFIX)], names)
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
