"""``memory recover``: save what can still be read from a damaged memory.db into a new one.

SQLite's own ``.recover`` lives in the sqlite3 shell, not in the library Python links, and
the shell cannot open an encrypted memory. So the salvage is done here, table by table and row
by row in rowid order, through the same connector the companion uses (SQLCipher included): a
stretch of rows whose page is unreadable is stepped over (the next readable rowid is found by
bisection), a row that cannot be decoded is skipped, and everything else is copied, ids kept,
into a fresh file with the current schema. Rows left pointing at something lost (a fact whose
turns are gone, a turn whose conversation is gone) are dropped or given a placeholder
conversation; the full-text index is rebuilt from the saved turns.

Unlike ``.recover``, rows on pages no longer linked from their table's b-tree are not found:
a damaged interior page loses the rows under it. The damaged file is kept
(``memory.db.corrupt-<date>``); the new one replaces memory.db only once it is complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice_companion.errors import MemoryStoreError
from voice_companion.memory.store import FILENAME, Connector, MemoryDb, keep_corrupt_copy

log = logging.getLogger(__name__)

TABLES = ("conversations", "turns", "embeddings", "facts", "fact_sources", "journal_applied")
"""What is copied, in an order that lets each table's references be checked afterwards; the
full-text index is derived and rebuilt instead."""
_LARGEST_ROWID = 2**63 - 1


@dataclass(frozen=True)
class Recovery:
    damaged: bool
    """False when memory.db passed its check and was left alone."""
    turns: int = 0
    facts: int = 0
    unreadable: int = 0
    """Rows, or stretches of rows, that could not be read."""
    copy: Path | None = None


class _Damaged:
    """The damaged file, read-only, reopened after each failed read: SQLCipher refuses every
    later statement on a connection that has met a page failing its HMAC."""

    def __init__(self, path: Path, connect: Connector, timeout_s: float) -> None:
        self._path, self._connect, self._timeout_s = path, connect, timeout_s
        self.conn = self._fresh()

    def _fresh(self) -> sqlite3.Connection:
        conn = self._connect(self._path, self._timeout_s)
        conn.execute("PRAGMA query_only = ON")
        return conn

    def read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any] | None:
        """All rows of ``sql``, or None when they cannot be read."""
        try:
            return list(self.conn.execute(sql, args).fetchall())
        except _UNREADABLE:
            self.reopen()
            return None

    def reopen(self) -> None:
        self.close()
        self.conn = self._fresh()

    def close(self) -> None:
        with contextlib.suppress(*_UNREADABLE):
            self.conn.close()


_UNREADABLE = (sqlite3.DatabaseError, MemoryError)
"""What reading a damaged page raises (sqlcipher3 reports SQLITE_NOMEM as MemoryError)."""


def recover(data_dir: Path, connect: Connector, busy_timeout_ms: int = 5000) -> Recovery:
    path = data_dir / FILENAME
    if not path.exists():
        raise MemoryStoreError(f"{path} does not exist: there is nothing to recover")
    try:
        old = _Damaged(path, connect, busy_timeout_ms / 1000)
    except sqlite3.Error as exc:
        raise MemoryStoreError(f"cannot open {path}: {exc}") from exc
    try:
        if _intact(old):
            return Recovery(damaged=False)
        copy = keep_corrupt_copy(path)
        if copy is None:
            raise MemoryStoreError(f"cannot keep a copy of the damaged {path}: nothing was changed")
        target = path.with_name(path.name + ".recovering")
        for leftover in _family(target):
            leftover.unlink(missing_ok=True)
        # Private from its first byte: SQLite gives its -wal and -shm the same mode.
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        counts = _salvage(old, target, connect, busy_timeout_ms)
    finally:
        old.close()
    # The damaged file's write-ahead log must not be applied to the new file.
    for stale in _family(path)[1:]:
        stale.unlink(missing_ok=True)
    os.replace(target, path)
    _fsync_dir(data_dir)
    turns, facts, unreadable = counts
    return Recovery(True, turns, facts, unreadable, copy)


def _intact(old: _Damaged) -> bool:
    try:
        return [r[0] for r in old.conn.execute("PRAGMA quick_check").fetchall()] == ["ok"]
    except _UNREADABLE as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise MemoryStoreError(
                "memory.db is in use by another process: stop the companion first"
            ) from exc
        old.reopen()
        return False


def _salvage(
    old: _Damaged, target: Path, connect: Connector, busy_timeout_ms: int
) -> tuple[int, int, int]:
    new = MemoryDb(target, busy_timeout_ms, connect, check=False)
    unreadable = 0
    try:
        with new.transaction() as conn:
            conn.execute("PRAGMA defer_foreign_keys = ON")
            for table in TABLES:
                columns = _common_columns(old, conn, table)
                if not columns:
                    unreadable += 1
                    continue
                marks = ",".join("?" * len(columns))
                insert = f"INSERT OR IGNORE INTO {table}({','.join(columns)}) VALUES ({marks})"
                for row in _readable_rows(old, table, columns):
                    if row is None:
                        unreadable += 1
                        continue
                    conn.execute(insert, row)
            _repair_references(conn)
            turns = int(conn.execute("SELECT count(*) FROM turns").fetchone()[0])
            facts = int(conn.execute("SELECT count(*) FROM facts").fetchone()[0])
    finally:
        new.close()
    return turns, facts, unreadable


def _common_columns(old: _Damaged, new: sqlite3.Connection, table: str) -> list[str]:
    rows = old.read(f"PRAGMA table_info({table})")
    had = {str(r[1]) for r in rows or ()}
    return [str(r[1]) for r in new.execute(f"PRAGMA table_info({table})") if str(r[1]) in had]


def _readable_rows(
    old: _Damaged, table: str, columns: list[str]
) -> Iterator[tuple[object, ...] | None]:
    """The rows of ``table`` that can be read, in rowid order; None for each row, or stretch
    of rows, that cannot.

    Read from a rowid on (``>=``: a seek touches the page of the key it starts from). A failed
    read does not say which row failed (the module steps one row ahead of the one it returns):
    the next row is then looked up alone, and when its page cannot even be searched, the first
    searchable rowid past it is found by bisection."""
    cols = ",".join(columns)
    # NOT INDEXED: the table's own b-tree, not an index holding the same rowids.
    scan = f"SELECT rowid, {cols} FROM {table} NOT INDEXED WHERE rowid >= ? ORDER BY rowid"
    one = f"SELECT {cols} FROM {table} NOT INDEXED WHERE rowid = ?"
    start = -_LARGEST_ROWID - 1
    while True:
        try:
            for row in old.conn.execute(scan, (start,)):
                start = int(row[0]) + 1
                yield tuple(row[1:])
            return
        except _UNREADABLE:
            old.reopen()
        key = _first_key(old, table, start)
        if key is not None:  # the page can be searched: read the next row alone
            if key < 0:
                return
            found = old.read(one, (key,))
            yield tuple(found[0]) if found else None
            start = key + 1
            continue
        yield None
        resume = _next_readable(old, table, start)
        if resume is None:
            return
        start = resume


def _first_key(old: _Damaged, table: str, start: int) -> int | None:
    """The first rowid from ``start`` on (-1: none); None when the seek hits a damaged page."""
    rows = old.read(
        f"SELECT rowid FROM {table} NOT INDEXED WHERE rowid >= ? ORDER BY rowid LIMIT 1", (start,)
    )
    if rows is None:
        return None
    return int(rows[0][0]) if rows else -1


def _next_readable(old: _Damaged, table: str, bad: int) -> int | None:
    """The first rowid past the damaged stretch that starts at ``bad``, found by doubling,
    then halving; None when nothing further can be read."""
    # The largest rowid reads from the rightmost pages only: no row lies past it.
    top = old.read(f"SELECT max(rowid) FROM {table} NOT INDEXED")
    last = int(top[0][0]) if top and top[0][0] is not None else _LARGEST_ROWID
    step = 1
    while True:
        good = min(bad + step, last)
        if good <= bad:
            return None
        if _first_key(old, table, good) is not None:
            break
        if good == last:
            return None
        bad, step = good, step * 2
    while good - bad > 1:  # the seek fails from ``bad``, works from ``good``
        middle = (bad + good) // 2
        if _first_key(old, table, middle) is None:
            bad = middle
        else:
            good = middle
    found = _first_key(old, table, good)
    return None if found is None or found < 0 else found


def _repair_references(conn: sqlite3.Connection) -> None:
    """What points at a lost row: dropped, or (a turn's conversation) put back as a stub."""
    conn.execute(
        "INSERT OR IGNORE INTO conversations(id, started_at, source)"
        " SELECT conversation_id, min(at), 'recovered' FROM turns"
        " WHERE conversation_id NOT IN (SELECT id FROM conversations) GROUP BY conversation_id"
    )
    conn.execute("DELETE FROM embeddings WHERE turn_id NOT IN (SELECT id FROM turns)")
    conn.execute(
        "DELETE FROM fact_sources WHERE turn_id NOT IN (SELECT id FROM turns)"
        " OR fact_id NOT IN (SELECT id FROM facts)"
    )
    conn.execute(
        "UPDATE facts SET superseded_by = NULL WHERE superseded_by NOT IN (SELECT id FROM facts)"
    )
    conn.execute("INSERT INTO turns_fts(turns_fts) VALUES ('rebuild')")


def _family(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
