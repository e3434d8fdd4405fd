"""The scrub state kept inside DATABASE, so that parity and its state travel together.

<DATABASE>/.nasbox-scrub/ holds catalog.sqlite (a row per protected file), the lock, and the
staging and repair working directories. Paths are bytes (Linux names need not be UTF-8);
`dir` is the directory relative to DIRECTORY, b"" for the top.

A catalog that sqlite finds damaged is renamed aside (catalog.sqlite.damaged-<time>) and a
new one is made; the engine then recovers the entries from the parity files.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass

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
    # nasbox.scrub.engine); only then is a content mismatch taken for corruption.
    settled: bool = True


def _volumes(raw: bytes) -> tuple[bytes, ...]:
    return tuple(raw.split(b"/")) if raw else ()


class Catalog:
    def __init__(self, path: str | bytes):
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
        rows = self.db.execute(f"SELECT {FILE_COLUMNS} FROM files WHERE dir = ?", (directory,))
        return {r[1]: Entry(r[0], r[1], r[2], r[3], r[4], r[5], _volumes(r[6]), r[7], r[8], r[9], r[10], bool(r[11]))
                for r in rows}

    def put(self, entry: Entry) -> None:
        self._write(f"INSERT OR REPLACE INTO files ({FILE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (entry.dir, entry.name, entry.size, entry.mtime_ns, entry.inode, entry.md5,
                     b"/".join(entry.volumes), entry.parity_at, entry.verified_at, entry.result,
                     entry.ctime_ns, entry.settled))

    def mark_verified(self, entry: Entry, result: str, inode: int | None = None) -> None:
        """The content matched (or was repaired): entry's metadata is what was found."""
        self._write("UPDATE files SET verified_at = ?, result = ?, inode = ?, mtime_ns = ?, ctime_ns = ?, "
                    "settled = ? WHERE dir = ? AND name = ?",
                    (time.time(), result, entry.inode if inode is None else inode, entry.mtime_ns,
                     entry.ctime_ns, entry.settled, entry.dir, entry.name))

    def mark_settled(self, entry: Entry) -> None:
        self._write("UPDATE files SET settled = 1 WHERE dir = ? AND name = ?", (entry.dir, entry.name))

    def delete(self, directory: bytes, name: bytes) -> None:
        self._write("DELETE FROM files WHERE dir = ? AND name = ?", (directory, name))

    # The journal of parity sets being moved into place; committed at once, not batched.
    def begin_move(self, staging: bytes, entry: Entry) -> None:
        self.commit()
        self.db.execute(f"INSERT OR REPLACE INTO pending ({PENDING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (entry.dir, entry.name, staging, entry.size, entry.mtime_ns, entry.inode,
                         entry.md5, b"/".join(entry.volumes), entry.ctime_ns, entry.settled))

    def end_move(self, entry: Entry) -> None:
        self.db.execute("BEGIN")
        self.put(entry)
        self.db.execute("DELETE FROM pending WHERE dir = ? AND name = ?", (entry.dir, entry.name))
        self.commit()

    def pending(self) -> list[tuple[bytes, Entry]]:
        rows = self.db.execute(f"SELECT {PENDING_COLUMNS} FROM pending").fetchall()
        return [(r[2], Entry(r[0], r[1], r[3], r[4], r[5], r[6], _volumes(r[7]), parity_at=time.time(),
                             ctime_ns=r[8], settled=bool(r[9]))) for r in rows]

    # Directories seen by this run, to find the entries of directories that are gone.
    def saw(self, directory: bytes) -> None:
        self._write("INSERT OR IGNORE INTO seen VALUES (?)", (directory,))

    def unseen_directories(self) -> Iterator[bytes]:
        self.commit()
        rows = self.db.execute("SELECT DISTINCT dir FROM files WHERE dir NOT IN (SELECT dir FROM seen)")
        yield from (r[0] for r in rows.fetchall())

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
            (time.time() - older_than_s, limit))

    def selected(self, directory: bytes) -> set[bytes]:
        return {r[0] for r in self.db.execute("SELECT name FROM selected WHERE dir = ?", (directory,))}


def open_catalog(path: bytes) -> tuple[Catalog, str | None]:
    """The catalog at path, and what became of a damaged one (None when it was sound): it is
    renamed aside, with its journal files, and a new catalog is made."""
    try:
        return Catalog(path), None
    except CatalogDamaged as e:
        aside = path + time.strftime(".damaged-%Y%m%d-%H%M%S").encode()
        for suffix in (b"", b"-wal", b"-shm"):
            if os.path.lexists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        return Catalog(path), f"the catalog was damaged ({e}); set aside as {os.fsdecode(os.path.basename(aside))}"
