"""The scrub state kept inside DATABASE, so that parity and its state travel together.

<DATABASE>/.nasbox-scrub/ holds catalog.sqlite (a row per protected file), the lock, and the
staging and repair working directories. Paths are bytes (Linux names need not be UTF-8);
`dir` is the directory relative to DIRECTORY, b"" for the top.

Nothing read from the catalog is acted upon before `untrusted` has passed it: a row whose
paths could leave DIRECTORY or DATABASE is deleted with a warning, never used.

A catalog that sqlite finds damaged is renamed aside (catalog.sqlite.damaged-<time>) and a
new one is made; the engine then recovers the entries from the parity files, whose rows
pass the same rule.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from nasbox.scrub.trust import PRIVATE

_COMPONENT = rb"(?!\.\.?(?:/|\Z))[^/\0]+"  # not '.' or '..', no '/' or NUL
NAME = re.compile(_COMPONENT)
RELATIVE = re.compile(_COMPONENT + rb"(?:/" + _COMPONENT + rb")*")
STAGING_NAME = re.compile(rb"[0-9a-f]{32}")  # a staging directory's name: a uuid4's hex
VOLUME_SUFFIX = re.compile(rb"\.vol[0-9]+\+[0-9]+\.par2")  # after the file's name

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    dir BLOB NOT NULL,
    name BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    md5 BLOB NOT NULL,              -- of the whole file, as par2 recorded it
    volumes BLOB NOT NULL,          -- recovery file names, '/'-separated (b'' for empty files)
    parity_at REAL NOT NULL,
    verified_at REAL,
    result TEXT NOT NULL,
    ctime_ns INTEGER,               -- NULL: unknown (a row of an older catalog, or rebuilt)
    settled INTEGER NOT NULL DEFAULT 0,  -- 1: size, mtime and ctime prove the content unchanged
    PRIMARY KEY (dir, name)
) WITHOUT ROWID;
-- A new parity set staged and about to be moved into place: finished by the next run
-- when a run dies while moving it.
CREATE TABLE IF NOT EXISTS pending (
    dir BLOB NOT NULL,
    name BLOB NOT NULL,
    staging BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    md5 BLOB NOT NULL,
    volumes BLOB NOT NULL,
    ctime_ns INTEGER,
    settled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dir, name)
) WITHOUT ROWID;
"""
# Columns added since the first catalogs; an older catalog gets them with the defaults, so
# its rows count as unsettled: hashed once, and a mismatch taken for an edit.
ADDED_COLUMNS = {"ctime_ns": "INTEGER", "settled": "INTEGER NOT NULL DEFAULT 0"}
FILE_COLUMNS = "dir, name, size, mtime_ns, inode, md5, volumes, parity_at, verified_at, result, ctime_ns, settled"
PENDING_COLUMNS = "dir, name, staging, size, mtime_ns, inode, md5, volumes, ctime_ns, settled"


DAMAGE_ERRORS = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


class CatalogDamaged(Exception):
    """sqlite cannot read the catalog, or finds it inconsistent."""


@dataclass(frozen=True)
class Entry:
    dir: bytes
    name: bytes
    size: int
    mtime_ns: int
    inode: int
    md5: bytes
    volumes: tuple[bytes, ...]
    parity_at: float = 0.0
    verified_at: float | None = None
    result: str = "created"
    ctime_ns: int | None = None  # None: unknown
    # The recorded size, mtime and ctime were taken when no edit could hide behind them (see
    # nasbox.scrub.work.settle); only then is a content mismatch taken for corruption.
    settled: bool = True


def show(path: bytes) -> str:
    """A path for a log line: undecodable bytes escaped, newlines visible."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode().replace("\n", "\\n")


def _volumes(raw: bytes) -> tuple[bytes, ...]:
    return tuple(raw.split(b"/")) if raw else ()


def _as_bytes(value: object) -> bytes:
    """A value read where a path belongs, whatever its type, for a message."""
    return value if isinstance(value, bytes) else str(value).encode()


def is_name(name: bytes) -> bool:
    """One component of a path: never empty, '.', '..', or holding '/' or NUL."""
    return NAME.fullmatch(name) is not None


def is_relative(path: bytes) -> bool:
    """A normalised relative path (b"" is the top): no leading '/', no empty, '.' or '..'
    component, so joined to a directory it stays inside it."""
    return path == b"" or RELATIVE.fullmatch(path) is not None


def untrusted(row: tuple, staging: object = None) -> str | None:
    """What makes a catalog or journal row (dir, name, size, mtime_ns, inode, md5, volumes,
    ctime_ns, settled) unsafe to act upon, or None when it is sound."""
    directory, name, size, mtime_ns, inode, md5, raw_volumes, ctime_ns, settled = row
    if (
        not all(isinstance(v, bytes) for v in (directory, name, md5, raw_volumes))
        or not all(isinstance(v, int) for v in (size, mtime_ns, inode))
        or not isinstance(staging, (bytes, type(None)))
        or (not isinstance(ctime_ns, (int, type(None))) or settled not in (0, 1))
    ):
        return "it holds values of the wrong type"
    volumes = _volumes(raw_volumes)
    if not is_relative(directory):
        return "its directory is not a relative path inside the job"
    if directory.split(b"/")[0] == PRIVATE:
        return "its parity would be inside nasbox's private folder"
    if not is_name(name):
        return "its name is not a plain file name"
    if not all(v.startswith(name) and VOLUME_SUFFIX.fullmatch(v[len(name) :]) for v in volumes):
        return "its recovery files are not named after it"
    if staging is not None and not STAGING_NAME.fullmatch(staging):
        return "its staging directory is not one nasbox makes"
    return None


def untrusted_entry(entry: Entry) -> str | None:
    """untrusted() for an entry made outside the catalog (one recovered from parity files)."""
    return untrusted(
        (
            entry.dir,
            entry.name,
            entry.size,
            entry.mtime_ns,
            entry.inode,
            entry.md5,
            b"/".join(entry.volumes),
            entry.ctime_ns,
            int(entry.settled),
        )
    )


class Catalog:
    def __init__(self, path: str | bytes, reject: Callable[[bytes, str], None]):
        """reject(path, why) hears of every row deleted as unsafe."""
        self.reject = reject
        self.db = sqlite3.connect(path, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if self.db.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
                raise CatalogDamaged("sqlite's quick_check failed")
            self.db.executescript(SCHEMA)
            for table in ("files", "pending"):
                present = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                for column, kind in ADDED_COLUMNS.items():
                    if column not in present:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except sqlite3.DatabaseError as e:
            self.db.close()
            # Only what sqlite calls corrupt: a busy, unreadable or full disk is not damage.
            if (e.sqlite_errorname or "").startswith(DAMAGE_ERRORS):
                raise CatalogDamaged(str(e)) from e
            raise
        except CatalogDamaged:
            self.db.close()
            raise
        self.db.execute("CREATE TEMP TABLE seen (dir BLOB PRIMARY KEY) WITHOUT ROWID")
        self.db.execute("CREATE TEMP TABLE selected (dir BLOB, name BLOB, PRIMARY KEY (dir, name)) WITHOUT ROWID")
        self._batch = 0

    def close(self) -> None:
        self.commit()
        self.db.close()

    # Writes are batched in transactions of up to 1,000 changes; commit() ends one.
    def _write(self, sql: str, args: tuple) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        self.db.execute(sql, args)
        self._batch += 1
        if self._batch >= 1000:
            self.commit()

    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self._batch = 0

    def entries(self, directory: bytes) -> dict[bytes, Entry]:
        rows = self.db.execute(f"SELECT {FILE_COLUMNS} FROM files WHERE dir = ?", (directory,)).fetchall()
        found = {}
        for r in rows:
            why = untrusted((*r[:7], *r[10:]))
            if why is None:
                found[r[1]] = Entry(
                    r[0], r[1], r[2], r[3], r[4], r[5], _volumes(r[6]), r[7], r[8], r[9], r[10], bool(r[11])
                )
            else:
                self._drop("files", r[0], r[1], why)
        return found

    def _drop(self, table: str, directory: object, name: object, why: str) -> None:
        self._write(f"DELETE FROM {table} WHERE dir = ? AND name = ?", (directory, name))
        self.reject(os.path.join(_as_bytes(directory), _as_bytes(name)), why)

    def put(self, entry: Entry) -> None:
        self._write(
            f"INSERT OR REPLACE INTO files ({FILE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                entry.dir,
                entry.name,
                entry.size,
                entry.mtime_ns,
                entry.inode,
                entry.md5,
                b"/".join(entry.volumes),
                entry.parity_at,
                entry.verified_at,
                entry.result,
                entry.ctime_ns,
                entry.settled,
            ),
        )

    def mark_verified(self, entry: Entry, result: str, inode: int | None = None) -> None:
        """The content matched (or was repaired): entry's metadata is what was found."""
        self._write(
            "UPDATE files SET verified_at = ?, result = ?, inode = ?, mtime_ns = ?, ctime_ns = ?, "
            "settled = ? WHERE dir = ? AND name = ?",
            (
                time.time(),
                result,
                entry.inode if inode is None else inode,
                entry.mtime_ns,
                entry.ctime_ns,
                entry.settled,
                entry.dir,
                entry.name,
            ),
        )

    def mark_settled(self, entry: Entry) -> None:
        self._write("UPDATE files SET settled = 1 WHERE dir = ? AND name = ?", (entry.dir, entry.name))

    def delete(self, directory: bytes, name: bytes) -> None:
        self._write("DELETE FROM files WHERE dir = ? AND name = ?", (directory, name))

    # The journal of parity sets being moved into place; committed at once, not batched.
    def begin_move(self, staging: bytes, entry: Entry) -> None:
        self.commit()
        self.db.execute(
            f"INSERT OR REPLACE INTO pending ({PENDING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                entry.dir,
                entry.name,
                staging,
                entry.size,
                entry.mtime_ns,
                entry.inode,
                entry.md5,
                b"/".join(entry.volumes),
                entry.ctime_ns,
                entry.settled,
            ),
        )

    def end_move(self, entry: Entry) -> None:
        self.db.execute("BEGIN")
        self.put(entry)
        self.db.execute("DELETE FROM pending WHERE dir = ? AND name = ?", (entry.dir, entry.name))
        self.commit()

    def abandon_move(self, entry: Entry) -> None:
        """Forget a move that cannot be finished: the file keeps its old entry, if any."""
        self.db.execute("DELETE FROM pending WHERE dir = ? AND name = ?", (entry.dir, entry.name))

    def pending(self) -> list[tuple[bytes, Entry]]:
        """(staging directory name, entry) of each move a killed run began."""
        found = []
        for r in self.db.execute(f"SELECT {PENDING_COLUMNS} FROM pending").fetchall():
            why = untrusted((r[0], r[1], *r[3:]), r[2])
            if why is None:
                found.append(
                    (
                        r[2],
                        Entry(
                            r[0],
                            r[1],
                            r[3],
                            r[4],
                            r[5],
                            r[6],
                            _volumes(r[7]),
                            parity_at=time.time(),
                            ctime_ns=r[8],
                            settled=bool(r[9]),
                        ),
                    )
                )
            else:
                self._drop("pending", r[0], r[1], why)
        self.commit()
        return found

    # Directories seen by this run, to find the entries of directories that are gone.
    def saw(self, directory: bytes) -> None:
        self._write("INSERT OR IGNORE INTO seen VALUES (?)", (directory,))

    def unseen_directories(self) -> Iterator[bytes]:
        self.commit()
        rows = self.db.execute("SELECT DISTINCT dir FROM files WHERE dir NOT IN (SELECT dir FROM seen)").fetchall()
        for (directory,) in rows:
            if isinstance(directory, bytes) and is_relative(directory):
                yield directory
            else:
                self._write("DELETE FROM files WHERE dir = ?", (directory,))
                self.reject(_as_bytes(directory), "its directory is not a relative path inside the job")

    def totals(self) -> tuple[int, int]:
        count, size = self.db.execute("SELECT count(*), coalesce(sum(size), 0) FROM files").fetchone()
        return count, size

    # Sampled verification: the least recently verified first.
    def select_for_verify(self, percent: int, older_than_s: int) -> None:
        """Choose the files a full scrub verifies; all of them when percent is 100 and
        older_than_s is 0 (then is_selected is not consulted)."""
        count = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
        limit = -(-count * percent // 100)
        self.db.execute(
            "INSERT INTO selected SELECT dir, name FROM files WHERE verified_at IS NULL OR verified_at < ? "
            "ORDER BY verified_at IS NOT NULL, verified_at LIMIT ?",
            (time.time() - older_than_s, limit),
        )

    def selected(self, directory: bytes) -> set[bytes]:
        return {r[0] for r in self.db.execute("SELECT name FROM selected WHERE dir = ?", (directory,))}


def open_catalog(path: bytes, reject: Callable[[bytes, str], None]) -> tuple[Catalog, str | None]:
    """The catalog at path, and what became of a damaged one (None when it was sound): it is
    renamed aside, with its journal files, and a new catalog is made."""
    try:
        return Catalog(path, reject), None
    except CatalogDamaged as e:
        aside = path + time.strftime(".damaged-%Y%m%d-%H%M%S").encode()
        for suffix in (b"", b"-wal", b"-shm"):
            if os.path.lexists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        shown = os.fsdecode(os.path.basename(aside))
        return Catalog(path, reject), f"the catalog was damaged ({e}); set aside as {shown}"
