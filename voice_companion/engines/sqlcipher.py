"""SQLCipher (``sqlcipher3-binary``): memory.db encrypted page by page, WAL included.

SQLCipher 4 encrypts every page with AES-256-CBC and authenticates it with HMAC-SHA512; the
key is derived from the passphrase with PBKDF2-HMAC-SHA512 (256,000 iterations, about 0.1 s per
open on purpose). The file header is encrypted too, so the file does not start with
``SQLite format 3``.

``sqlcipher3`` is a fork of the standard ``sqlite3`` module with its own exception classes; the
connection returned here raises the standard ones instead, so :mod:`voice_companion.memory.store`
handles busy and broken databases the same way whichever library opened the file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from voice_companion.errors import MemoryBusyError, MemoryKeyError, MemoryStoreError


def _module() -> Any:
    try:
        import sqlcipher3  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MemoryStoreError(
            "memory.encrypt needs SQLCipher: pip install sqlcipher3-binary"
        ) from exc
    return sqlcipher3


@contextmanager
def _standard_errors() -> Iterator[None]:
    """Re-raise a sqlcipher3 error as the ``sqlite3`` error of the same name."""
    lib = _module()
    try:
        yield
    except lib.Error as exc:
        standard = getattr(sqlite3, type(exc).__name__, sqlite3.DatabaseError)
        if not (isinstance(standard, type) and issubclass(standard, sqlite3.Error)):
            standard = sqlite3.DatabaseError
        raise standard(str(exc)) from exc


class _Cursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def fetchone(self) -> Any:
        with _standard_errors():
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with _standard_errors():
            return list(self._cursor.fetchall())

    def fetchmany(self, size: int = 1) -> list[Any]:
        with _standard_errors():
            return list(self._cursor.fetchmany(size))

    def __iter__(self) -> Iterator[Any]:
        while True:
            with _standard_errors():
                row = self._cursor.fetchone()
            if row is None:
                return
            yield row

    def __getattr__(self, name: str) -> Any:  # lastrowid, rowcount, description, close
        return getattr(self._cursor, name)


class _Connection:
    """The part of ``sqlite3.Connection`` the memory store uses, raising ``sqlite3`` errors."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> _Cursor:
        with _standard_errors():
            return _Cursor(self._conn.execute(sql, parameters))

    def executemany(self, sql: str, seq_of_parameters: Any) -> _Cursor:
        with _standard_errors():
            return _Cursor(self._conn.executemany(sql, seq_of_parameters))

    def close(self) -> None:
        with _standard_errors():
            self._conn.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _quote(passphrase: str) -> str:
    # PRAGMA key takes no bound parameters: quote it as an SQL string literal.
    if not passphrase or "\0" in passphrase:
        raise MemoryKeyError("a memory key must be non-empty text without NUL characters")
    return "'" + passphrase.replace("'", "''") + "'"


def _raw(path: Path, timeout_s: float) -> Any:
    lib = _module()
    try:
        conn = lib.connect(
            str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        # SQLCipher logs failed page authentications to stderr; the caller says it in one line.
        conn.execute("PRAGMA cipher_log_level = NONE")
    except lib.Error as exc:
        raise MemoryStoreError(f"cannot open {path}: {exc}") from exc
    return conn


def connect(path: Path, passphrase: str, timeout_s: float) -> sqlite3.Connection:
    """Open (or create) an encrypted database; the key is checked before anything else runs.

    Raises ``MemoryKeyError`` when the key does not decrypt the file (or it is not a database).
    """
    lib = _module()
    key = _quote(passphrase)
    conn = _raw(path, timeout_s)
    try:
        conn.execute(f"PRAGMA key = {key}")
        # The first read decrypts page 1: a wrong key fails here, before any write.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except lib.DatabaseError as exc:
        conn.close()
        if "not a database" in str(exc):
            raise MemoryKeyError(f"{path.name} cannot be decrypted with this key") from exc
        if "locked" in str(exc) or "busy" in str(exc):
            raise MemoryBusyError(f"{path} is locked by another process; try again") from exc
        raise MemoryStoreError(f"cannot open {path}: {exc}") from exc
    return cast(sqlite3.Connection, _Connection(conn))


def encrypt_copy(plain: Path, target: Path, passphrase: str) -> int:
    """Write an encrypted copy of the plaintext database ``plain`` to ``target``.

    Holds ``plain`` exclusively throughout (raises ``MemoryBusyError`` when another process has
    it open) and folds its write-ahead log in first. Returns the number of turns copied.
    """
    lib = _module()
    key = _quote(passphrase)
    conn = _raw(plain, 0.2)
    try:
        try:
            # Exclusive locking mode keeps the lock after the first transaction: nobody can
            # open the file while it is copied. It fails at once when someone has it open.
            conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("COMMIT")
        except lib.OperationalError as exc:
            raise MemoryBusyError(
                f"{plain} is in use by another process; stop the companion first "
                "(systemctl --user stop voice-companion) and run the command again"
            ) from exc
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            turns = int(conn.execute("SELECT count(*) FROM turns").fetchone()[0])
            conn.execute(f"ATTACH DATABASE ? AS encrypted KEY {key}", (str(target),))
            conn.execute("SELECT sqlcipher_export('encrypted')")
            conn.execute(f"PRAGMA encrypted.user_version = {version}")
            copied = int(conn.execute("SELECT count(*) FROM encrypted.turns").fetchone()[0])
            conn.execute("DETACH DATABASE encrypted")
        except lib.DatabaseError as exc:
            raise MemoryStoreError(f"cannot encrypt {plain}: {exc}") from exc
        if copied != turns:
            raise MemoryStoreError(
                f"the encrypted copy of {plain} holds {copied} turns, not {turns}"
            )
    finally:
        conn.close()
    _fsync(target)
    return turns


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
