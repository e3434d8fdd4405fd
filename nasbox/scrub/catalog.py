"""The scrub state kept inside DATABASE, so that parity and its state travel together.

<DATABASE>/.nasbox-scrub/ holds catalog.sqlite (a row per protected file, a row per parity
set), the parity sets (nasbox.scrub.sets), the lock, and the staging and repair working
directories. Paths are bytes (Linux names need not be UTF-8); `dir` is the directory
relative to DIRECTORY, b"" for the top.

Each protected file names its parity set (set_id). A row without a set is an empty file (no
parity) or, in a catalog made before sets existed, a file whose parity is still its own set
beside its mirrored path in DATABASE (`volumes` names its recovery files): such a row is
LEGACY, and the next run moves it into a set (nasbox.scrub.engine).

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
from dataclasses import astuple, dataclass
from functools import lru_cache

from nasbox.scrub import par2, setcheck
from nasbox.scrub.trust import PRIVATE

_COMPONENT = rb"(?!\.\.?(?:/|\Z))[^/\0]+"  # not '.' or '..', no '/' or NUL
NAME = re.compile(_COMPONENT)
RELATIVE = re.compile(_COMPONENT + rb"(?:/" + _COMPONENT + rb")*")
STAGING_NAME = re.compile(rb"[0-9a-f]{32}")  # a staging directory's or a set's name: a uuid4's hex
VOLUME_SUFFIX = re.compile(rb"\.vol[0-9]+\+[0-9]+\.par2")  # after the file's (or set's) name

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    dir BLOB NOT NULL,
    name BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    md5 BLOB NOT NULL,              -- of the whole file, as par2 recorded it
    volumes BLOB NOT NULL,          -- LEGACY rows only: recovery file names, '/'-separated
    parity_at REAL NOT NULL,
    verified_at REAL,
    result TEXT NOT NULL,
    ctime_ns INTEGER,               -- NULL: unknown (a row of an older catalog, or rebuilt)
    settled INTEGER NOT NULL DEFAULT 0,  -- 1: size, mtime and ctime prove the content unchanged
    set_id BLOB,                    -- its parity set; NULL: an empty file, or LEGACY
    PRIMARY KEY (dir, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_by_set ON files (set_id);
CREATE TABLE IF NOT EXISTS sets (
    id BLOB PRIMARY KEY,
    volumes BLOB NOT NULL,          -- its recovery file names, '/'-separated
    files INTEGER NOT NULL,         -- how many files it was made for
    made_at REAL NOT NULL,
    digest BLOB                     -- of its files as made, or last found whole (setcheck); NULL: unknown
) WITHOUT ROWID;
"""
# Columns added since the first catalogs; an older catalog gets them with the defaults, so
# its rows count as unsettled: hashed once, and a mismatch taken for an edit.
ADDED_COLUMNS = {
    "files": {"ctime_ns": "INTEGER", "settled": "INTEGER NOT NULL DEFAULT 0", "set_id": "BLOB"},
    "sets": {"digest": "BLOB"},
}
FILE_COLUMNS = (
    "dir, name, size, mtime_ns, inode, md5, volumes, parity_at, verified_at, result, ctime_ns, settled, set_id"
)
# Catalogs before sets journalled each file's parity move here: the next run finishes the
# moves a killed run began (nasbox.scrub.install), then drops the journal.
JOURNAL = "pending"
JOURNAL_COLUMNS = "dir, name, staging, size, mtime_ns, inode, md5, volumes, ctime_ns, settled"
JOURNAL_DEFAULTS = {"settled": "0"}  # for a column an even older journal lacks; others NULL
LAYOUT_VERSION = 2  # PRAGMA user_version once no parity is left in the per-file layout
IN_LIST = 500  # values in one IN (...): well under what any sqlite allows in a statement (999)


DAMAGE_ERRORS = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


class CatalogDamaged(Exception):
    """sqlite cannot read the catalog, or finds it inconsistent."""


@dataclass(slots=True)  # not frozen, which costs ten times as much to make; never changed once made
class Entry:
    dir: bytes
    name: bytes
    size: int
    mtime_ns: int
    inode: int
    md5: bytes
    volumes: tuple[bytes, ...] = ()  # LEGACY rows only
    parity_at: float = 0.0
    verified_at: float | None = None
    result: str = "created"
    ctime_ns: int | None = None  # None: unknown
    # The recorded size, mtime and ctime were taken when no edit could hide behind them (see
    # nasbox.scrub.work.settle); only then is a content mismatch taken for corruption.
    settled: bool = True
    set_id: bytes | None = None

    @property
    def relative(self) -> bytes:
        return os.path.join(self.dir, self.name)

    @property
    def legacy(self) -> bool:
        """Its parity is still its own set in the per-file layout."""
        return self.set_id is None and self.size > 0

    def row(self) -> tuple:
        """The values of FILE_COLUMNS."""
        values = astuple(self)
        return (*values[:6], b"/".join(self.volumes), *values[7:])


@dataclass(frozen=True)
class SetRow:
    """A parity set: <id>.par2 and its recovery files in the private folder's sets/."""

    id: bytes
    volumes: tuple[bytes, ...]
    files: int  # the files it was made for; fewer rows naming it: some left it
    made_at: float
    digest: bytes | None = None  # of its files, as made or last found whole (nasbox.scrub.setcheck)


def show(path: bytes) -> str:
    """A path for a log line: undecodable bytes escaped, newlines visible."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode().replace("\n", "\\n")


def _entry(r: tuple) -> Entry:
    """The entry of a row (the values of FILE_COLUMNS) that untrusted passed."""
    return Entry(r[0], r[1], r[2], r[3], r[4], r[5], _volumes(r[6]), r[7], r[8], r[9], r[10], r[11] == 1, r[12])


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


def named_after(volumes: tuple[bytes, ...], stem: bytes) -> bool:
    """Every recovery file is <stem>.vol<first>+<count>.par2."""
    return all(v.startswith(stem) and VOLUME_SUFFIX.fullmatch(v[len(stem) :]) for v in volumes)


def untrusted(row: tuple) -> str | None:
    """What makes a catalog row (the values of FILE_COLUMNS) unsafe to act upon, or None
    when it is sound."""
    directory, name, size, mtime_ns, inode, md5, raw_volumes, _at, _verified, _result, ctime_ns, settled, set_id = row
    if not (
        type(directory) is type(name) is type(md5) is type(raw_volumes) is bytes
        and type(size) is type(mtime_ns) is type(inode) is int
        and (ctime_ns is None or type(ctime_ns) is int)
        and settled in (0, 1)
        and (set_id is None or type(set_id) is bytes)
    ):
        return "it holds values of the wrong type"
    if not _sound_directory(directory):
        return "its directory is not a relative path inside the job"
    if set_id is None and directory.split(b"/")[0] == PRIVATE:
        return "its parity would be inside nasbox's private folder"
    if not is_name(name):
        return "its name is not a plain file name"
    if (par2.REWRITTEN.search(name) or _rewritten(directory)) and not is_relative(
        par2.path_as_par2_reads_it(os.path.join(directory, name))
    ):
        return "par2 would read it outside the job (it takes a backslash for a directory separator)"
    if set_id is not None and not _sound_set_id(set_id):
        return "its parity set is not one nasbox names"
    if raw_volumes and not named_after(_volumes(raw_volumes), name):
        return "its recovery files are not named after it"
    return None


@lru_cache(maxsize=4096)
def _sound_directory(directory: bytes) -> bool:
    """is_relative, remembered: the rows of one directory share it."""
    return is_relative(directory)


@lru_cache(maxsize=4096)
def _rewritten(directory: bytes) -> bool:
    """Whether par2 reads the directory's path otherwise (par2.REWRITTEN), remembered."""
    return par2.REWRITTEN.search(directory) is not None


@lru_cache(maxsize=4096)
def _sound_set_id(set_id: bytes) -> bool:
    return STAGING_NAME.fullmatch(set_id) is not None


class Catalog:
    def __init__(self, path: str | bytes, reject: Callable[[bytes, str], None]):
        """reject(path, why) hears of every row deleted as unsafe."""
        self.reject = reject
        self.db = sqlite3.connect(path, isolation_level=None)
        try:
            # Before WAL: the WAL's index then lives in this process's memory, not in a -shm
            # file on DATABASE's disk, which a full disk cannot extend ("disk I/O error") or
            # back once mapped (SIGBUS where blocks are smaller than pages). No other
            # connection may open the catalog meanwhile: only the run holding DATABASE's lock
            # has any business there.
            self.db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if self.db.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
                raise CatalogDamaged("sqlite's quick_check failed")
            for table, added in ADDED_COLUMNS.items():
                present = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                if present:  # a catalog of an earlier version gains the columns added since
                    for column, kind in added.items():
                        if column not in present:
                            self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            self.db.executescript(SCHEMA)
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
        self._verified: list[tuple] = []

    def close(self) -> None:
        self.commit()
        self.db.close()

    # Writes are batched in transactions of up to 1,000 changes; commit() ends one.
    def _write(self, sql: str, args: tuple, changes: int = 1) -> None:
        if self._verified:
            self._write_verified()
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        self.db.execute(sql, args)
        self._batch += changes
        if self._batch >= 1000:
            self.commit()

    def commit(self) -> None:
        if self._verified:
            self._write_verified()
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self._batch = 0

    def rollback(self) -> None:
        """Drop what is not committed yet: after a write failed, the rest of the batch too."""
        self._verified.clear()
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self._batch = 0

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Every read goes through here: the verified marks gathered so far are written first."""
        if self._verified:
            self._write_verified()
        return self.db.execute(sql, args).fetchall()

    def _entries(self, where: str, args: tuple) -> list[Entry]:
        found = []
        for r in self._read(f"SELECT {FILE_COLUMNS} FROM files WHERE {where}", args):
            why = untrusted(r)
            if why is None:
                volumes = _volumes(r[6])
                found.append(
                    Entry(r[0], r[1], r[2], r[3], r[4], r[5], volumes, r[7], r[8], r[9], r[10], r[11] == 1, r[12])
                )
            else:
                self._write("DELETE FROM files WHERE dir = ? AND name = ?", (r[0], r[1]))
                self.reject(os.path.join(_as_bytes(r[0]), _as_bytes(r[1])), why)
        return found

    def every_entry(self) -> list[Entry]:
        return self._entries("1", ())

    def entries(self, directory: bytes) -> dict[bytes, Entry]:
        return {e.name: e for e in self._entries("dir = ?", (directory,))}

    def entry(self, directory: bytes, name: bytes) -> Entry | None:
        found = self._entries("dir = ? AND name = ?", (directory, name))
        return found[0] if found else None

    def members(self, set_id: bytes) -> list[Entry]:
        """The files whose parity is the set."""
        return self._entries("set_id = ?", (set_id,))

    def recorded(self, set_id: bytes) -> list[tuple[object, object, object, object]]:
        """(dir, name, MD5, size) of the files whose parity is the set, as recorded: only
        compared with what the set describes, never acted upon, so not checked as entries are."""
        return self._read("SELECT dir, name, md5, size FROM files WHERE set_id = ?", (set_id,))

    def put(self, entry: Entry) -> None:
        self._write(f"INSERT OR REPLACE INTO files ({FILE_COLUMNS}) VALUES ({','.join('?' * 13)})", entry.row())

    def journalled_moves(self) -> list[tuple[bytes, Entry]]:
        """(staging directory name, LEGACY row) of each move of per-file parity into place that
        a run of a catalog before sets began and did not finish; an unsafe one is dropped."""
        present = {r[1] for r in self.db.execute(f"PRAGMA table_info({JOURNAL})")}
        if not present:
            return []
        columns = ", ".join(c if c in present else JOURNAL_DEFAULTS.get(c, "NULL") for c in JOURNAL_COLUMNS.split(", "))
        found = []
        for r in self.db.execute(f"SELECT {columns} FROM {JOURNAL}").fetchall():
            directory, name, staging, *values = r  # values: size ... volumes, ctime_ns, settled
            row = (directory, name, *values[:5], time.time(), None, "created", *values[5:], None)
            why = untrusted(row)
            if why is None and not (isinstance(staging, bytes) and STAGING_NAME.fullmatch(staging)):
                why = "its staging directory is not one nasbox names"
            if why is None:
                found.append((staging, _entry(row)))
            else:
                self.reject(os.path.join(_as_bytes(directory), _as_bytes(name)), why)
        return found

    def drop_journal(self) -> None:
        self.commit()
        self.db.execute(f"DROP TABLE IF EXISTS {JOURNAL}")

    def mark_verified(self, entry: Entry, result: str) -> None:
        """The content matched (or was repaired): entry's metadata is what was found. Gathered
        and written together (a full scrub marks every file), before any other write."""
        self._verified.append(
            (time.time(), result, entry.inode, entry.mtime_ns, entry.ctime_ns, entry.settled, entry.dir, entry.name)
        )
        if len(self._verified) >= 1000:
            self._write_verified()

    def _write_verified(self) -> None:
        marks, self._verified = self._verified, []
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        self.db.executemany(
            "UPDATE files SET verified_at = ?, result = ?, inode = ?, mtime_ns = ?, ctime_ns = ?, "
            "settled = ? WHERE dir = ? AND name = ?",
            marks,
        )
        self._batch += len(marks)

    def mark_intact(self, directory: bytes, names: list[bytes]) -> None:
        """Files of one directory read and found as their rows record them, metadata and MD5:
        only their verified time changes (one statement for many: a full scrub marks every file)."""
        now = time.time()
        for start in range(0, len(names), IN_LIST):
            chunk = names[start : start + IN_LIST]
            marks = ",".join("?" * len(chunk))
            sql = f"UPDATE files SET verified_at = ?, result = 'good' WHERE dir = ? AND name IN ({marks})"
            self._write(sql, (now, directory, *chunk), len(chunk))

    def mark_settled(self, entry: Entry) -> None:
        self._write("UPDATE files SET settled = 1 WHERE dir = ? AND name = ?", (entry.dir, entry.name))

    def delete(self, directory: bytes, name: bytes) -> None:
        self._write("DELETE FROM files WHERE dir = ? AND name = ?", (directory, name))

    # ---- parity sets ---------------------------------------------------------------------

    def add_set(self, made: SetRow, members: list[Entry]) -> None:
        """A set put in place and the files it protects now, in one transaction."""
        self.commit()
        self.db.execute("BEGIN")
        self.db.execute(
            "INSERT OR REPLACE INTO sets (id, volumes, files, made_at, digest) VALUES (?,?,?,?,?)",
            (made.id, b"/".join(made.volumes), made.files, made.made_at, made.digest),
        )
        for entry in members:
            self.put(entry)
        self.commit()

    def sets(self, where: str = "1", args: tuple = ()) -> list[SetRow]:
        """Sets whose row is sound (an unsound row is deleted: its files are orphans then)."""
        found = []
        for r in self._read(f"SELECT id, volumes, files, made_at, digest FROM sets WHERE {where}", args):
            volumes = _volumes(r[1]) if isinstance(r[1], bytes) else None
            sound = isinstance(r[0], bytes) and STAGING_NAME.fullmatch(r[0]) and isinstance(r[2], int)
            if sound and volumes is not None and named_after(volumes, r[0]):
                found.append(SetRow(r[0], volumes, r[2], float(r[3] or 0), setcheck.known_digest(r[4])))
                continue
            self._write("DELETE FROM sets WHERE id = ?", (r[0],))
            self.reject(b"parity set " + _as_bytes(r[0]), "its row is not one nasbox writes")
        return found

    def set_row(self, set_id: bytes) -> SetRow | None:
        found = self.sets("id = ?", (set_id,))
        return found[0] if found else None

    def set_ids(self) -> set[bytes]:
        return {r[0] for r in self.db.execute("SELECT id FROM sets")}

    def unused_sets(self) -> list[SetRow]:
        """Sets no file names any more: their parity files can go."""
        return self.sets("NOT EXISTS (SELECT 1 FROM files WHERE files.set_id = sets.id)")

    def short_sets(self) -> list[SetRow]:
        """Sets that fewer files name than they were made for: some left (edited, gone, or
        changed while it was made), so the set spends recovery on what is no longer there."""
        return self.sets(
            "files > (SELECT n FROM (SELECT set_id, count(*) AS n FROM files WHERE set_id IS NOT NULL "
            "GROUP BY set_id) WHERE set_id = sets.id)"
        )

    def set_digest(self, set_id: bytes, digest: bytes) -> None:
        self._write("UPDATE sets SET digest = ? WHERE id = ?", (digest, set_id))

    def delete_set(self, set_id: bytes) -> None:
        self._write("DELETE FROM sets WHERE id = ?", (set_id,))

    def legacy_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM files WHERE set_id IS NULL AND size > 0").fetchone()[0]

    @property
    def layout_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def set_layout_version(self) -> None:
        self.commit()
        self.db.execute(f"PRAGMA user_version = {LAYOUT_VERSION}")

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

    def coverage(self) -> tuple[int, float]:
        """The files with parity, and when the least recently verified was verified (0: never)."""
        count, oldest = self.db.execute("SELECT count(*), min(coalesce(verified_at, 0)) FROM files").fetchone()
        return count, oldest or 0.0

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
