"""memory.journal-*: the writes a process queued for memory.db, kept on disk until they land.

When another process holds memory.db locked (or the disk it is on is full), a turn is queued
rather than holding up the reply (see ``store.MemoryDb``). So that a queued turn is never lost,
it is first written to this process's journal file and synced, and only then handed back as
stored: a reply is shown or spoken after what it answers is on disk, in memory.db or here.

A journal is a small SQLite database beside memory.db, opened through the same connector: when
``memory.encrypt`` is on it is a SQLCipher file with the same key, so a queued turn is never
plaintext on disk. Rollback journal (``DELETE`` mode, removed at each commit), ``synchronous =
FULL`` and ``secure_delete``: a committed entry survives kill -9 or power loss (a torn write is
rolled back by SQLite, never half-read), and an entry removed because the user forgot it is
overwritten, not left in a free page. The file is 0600, created before SQLite opens it.

Each process writes its own file (``memory.journal-<time>-<pid>`` for ``memory.db``: named
after the database it belongs to) and holds an exclusive
``flock`` on it while it runs. A file whose lock can be taken belongs to a process that ended
with entries still queued: the next process to open memory.db adopts it and replays it, in
order. The lock is released by the kernel when the owner dies, kill -9 included.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from voice_companion.errors import MemoryStoreError

log = logging.getLogger(__name__)


def _prefix(database: Path) -> str:
    """Journals of ``memory.db`` are ``memory.journal-*``; of any other database file (a
    recovery's new file) its own, so that none adopts another's."""
    return f"{database.stem}.journal-"


Connect = Callable[[Path, float], sqlite3.Connection]


@dataclass(frozen=True)
class Entry:
    """One queued write: which ``MemoryDb`` method, with which arguments (JSON-encoded)."""

    seq: int
    payload: dict[str, Any]


class Journal:
    """One journal file, owned (flock-ed) by this process while it is open."""

    def __init__(self, path: Path, conn: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self._conn = conn
        self._lock_fd = lock_fd

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, database: Path, connect: Connect) -> Journal:
        """A new journal for ``database``, beside it."""
        folder = database.parent
        path = folder / f"{_prefix(database)}{time.time_ns():x}-{os.getpid()}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise MemoryStoreError(f"cannot create {path}: {exc}") from exc
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and ours: cannot be contended
        journal = cls._open(path, fd, connect)
        _fsync_dir(folder)
        return journal

    @classmethod
    def adopt(cls, path: Path, connect: Connect) -> Journal | None:
        """The journal at ``path`` if its owner has ended (its lock is free); None while the
        owner runs."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None  # its owner finished it meanwhile
        except OSError as exc:
            raise MemoryStoreError(f"cannot open {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not path.exists():  # removed by its owner between our open and our lock
            os.close(fd)
            return None
        return cls._open(path, fd, connect)

    @classmethod
    def _open(cls, path: Path, fd: int, connect: Connect) -> Journal:
        try:
            conn = connect(path, 5.0)
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries"
                " (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL)"
            )
        except (sqlite3.Error, MemoryStoreError) as exc:
            os.close(fd)
            raise MemoryStoreError(f"cannot use the memory journal {path}: {exc}") from exc
        return cls(path, conn, fd)

    def entries(self) -> list[Entry]:
        out = []
        for seq, payload in self._conn.execute("SELECT seq, payload FROM entries ORDER BY seq"):
            try:
                out.append(Entry(int(seq), json.loads(payload)))
            except ValueError as exc:
                raise MemoryStoreError(f"entry {seq} is not JSON ({exc})") from exc
        return out

    def append(self, payload: Mapping[str, Any]) -> Entry:
        """Add an entry, committed and synced before this returns. Raises ``sqlite3.Error``
        (a full disk) for the caller to decide."""
        cursor = self._conn.execute(
            "INSERT INTO entries(payload) VALUES (?)", (json.dumps(payload, ensure_ascii=False),)
        )
        return Entry(int(cursor.lastrowid or 0), dict(payload))

    def remove(self, seqs: list[int]) -> None:
        """Erase entries (written to memory.db, or forgotten): overwritten, not just unlinked."""
        if seqs:
            self._conn.executemany("DELETE FROM entries WHERE seq = ?", [(s,) for s in seqs])

    def empty(self) -> bool:
        return int(self._conn.execute("SELECT count(*) FROM entries").fetchone()[0]) == 0

    def close(self, delete: bool) -> None:
        """Close; with ``delete``, remove the file (the caller knows it holds nothing)."""
        try:
            self._conn.close()
            if delete:
                self.path.unlink(missing_ok=True)
                _fsync_dir(self.path.parent)
        finally:
            os.close(self._lock_fd)  # releases the flock


def leftovers(database: Path, own: set[str]) -> list[Path]:
    """Journal files of ``database`` other than ``own``, oldest first (names sort by time)."""
    name = re.compile(re.escape(_prefix(database)) + r"[0-9a-f]+-[0-9]+$")
    try:
        names = sorted(n for n in os.listdir(database.parent) if name.match(n) and n not in own)
    except OSError:
        return []
    return [database.parent / n for n in names]


# -- arguments as JSON -------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Arguments of a queued write as JSON: datetimes, dates and dataclasses tagged."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$": type(value).__name__, **fields}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(value: Any, types: Mapping[str, type]) -> Any:
    """The inverse of ``encode``; ``types`` names the dataclasses it may build. Raises
    ``ValueError``, ``KeyError`` or ``TypeError`` for what it cannot read."""
    if isinstance(value, list):
        return [decode(v, types) for v in value]
    if not isinstance(value, dict):
        return value
    if "$datetime" in value:
        return datetime.fromisoformat(value["$datetime"])
    if "$date" in value:
        return date.fromisoformat(value["$date"])
    fields = {k: decode(v, types) for k, v in value.items() if k != "$"}
    if "$" in value:
        cls = types[value["$"]]
        # A field this version does not know (written by a newer one) is left out.
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in fields.items() if k in known})
    return fields


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
