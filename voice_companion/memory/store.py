"""memory.db: the one file that holds what the user said, what was learnt from it, and nothing else.

SQLite in WAL mode with ``synchronous=FULL`` (a committed turn survives a crash or power loss),
foreign keys on, ``secure_delete`` on (deleted text is overwritten, not just unlinked), and a
versioned schema migrated forward on open. Other processes (the CLI while the daemon runs) open
the same file; writers wait up to ``busy_timeout_ms`` for each other.

On open, ``PRAGMA quick_check``: a damaged file is refused (nothing more is written into it), a
copy is kept beside it (``memory.db.corrupt-<date>``) and the error says to run ``voice-companion
memory recover``.

A live turn (and what is learnt from it) that still finds the file locked after a second (or
the busy timeout, when shorter), or finds the disk full, does not hold up the reply any longer
and is not lost: it is written to this process's journal (``journal.Journal``: a file beside
memory.db, synced) and queued in order; a "memory-writer" thread writes it into memory.db as
soon as it can, then erases it from the journal. Only after the journal has it is the turn
handed back as stored, so a reply is never shown or spoken for words that are nowhere on disk.
A process that ends (or is killed) with writes still queued leaves its journal, and the next
process to open memory.db writes it in, in order; each write is recorded in memory.db in the
same transaction (``journal_applied``), so a crash between the two files never writes one twice.
When the journal cannot be written either (the disk is full), the write is kept in RAM until
memory.db takes it; ``saving`` says so (the daemon's ``status``).

Forgetting is real: ``erase`` deletes (or rewrites) the rows, rebuilds the full-text index
(so no term of the forgotten text is left in its segments) and checkpoints the write-ahead log
with TRUNCATE, so the text is gone from ``memory.db`` and ``memory.db-wal`` alike. In the same
transaction it bumps the forget generation, which every process reads before each turn to
drop its own copies, and keeps what was forgotten as ids and hashes only (``forgotten``), so
no import brings it back; a queued turn that is forgotten is erased from the journal
too (and what was learnt from it). Ids are never given out twice (AUTOINCREMENT), nor source ids (a
stored sequence per conversation): a receipt always names the same words, or nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from voice_companion.audio.prosody import Prosody
from voice_companion.dialogue.mood import LABELS, MoodEstimate
from voice_companion.errors import (
    MemoryBusyError,
    MemoryCorruptError,
    MemoryFullError,
    MemoryNotFoundError,
    MemoryStoreError,
)
from voice_companion.memory import journal
from voice_companion.memory.journal import Journal
from voice_companion.memory.seam import Fact as Fact  # re-exported: where it always was
from voice_companion.memory.seam import TopicMatches
from voice_companion.memory.topic import Topic
from voice_companion.private import create_private, private_dir, tighten_existing, writable_dir

log = logging.getLogger(__name__)

FILENAME = "memory.db"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: conversations, turns with a full-text index, cached embeddings, facts with receipts.
    (
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'live'
        )""",
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            ts REAL NOT NULL,
            speaker TEXT NOT NULL,
            text TEXT NOT NULL,
            duration_s REAL,
            interrupted INTEGER NOT NULL DEFAULT 0,
            source_id TEXT NOT NULL
        )""",
        "CREATE INDEX turns_conversation ON turns(conversation_id, id)",
        "CREATE INDEX turns_ts ON turns(ts)",
        "CREATE INDEX turns_source ON turns(source_id)",
        """CREATE VIRTUAL TABLE turns_fts USING fts5(
            text, content='turns', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns BEGIN
            INSERT INTO turns_fts(rowid, text) VALUES (new.id, new.text);
        END""",
        """CREATE TRIGGER turns_fts_delete AFTER DELETE ON turns BEGIN
            INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END""",
        """CREATE TRIGGER turns_fts_update AFTER UPDATE OF text ON turns BEGIN
            INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO turns_fts(rowid, text) VALUES (new.id, new.text);
        END""",
        """CREATE TABLE embeddings (
            turn_id INTEGER PRIMARY KEY REFERENCES turns(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            vector BLOB NOT NULL
        )""",
        """CREATE TABLE facts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            valid_from TEXT NOT NULL,
            valid_to TEXT,
            event_date TEXT,
            superseded_by INTEGER REFERENCES facts(id) ON DELETE SET NULL,
            extractor TEXT NOT NULL
        )""",
        "CREATE INDEX facts_key ON facts(key)",
        """CREATE TABLE fact_sources (
            fact_id INTEGER NOT NULL REFERENCES facts(id) ON DELETE CASCADE,
            turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            PRIMARY KEY (fact_id, turn_id)
        )""",
        "CREATE INDEX fact_sources_turn ON fact_sources(turn_id)",
    ),
    # 2: each user turn's mood estimate and, when spoken, how it was spoken.
    (
        "ALTER TABLE turns ADD COLUMN mood_label TEXT",
        "ALTER TABLE turns ADD COLUMN mood_valence REAL",
        "ALTER TABLE turns ADD COLUMN mood_arousal REAL",
        "ALTER TABLE turns ADD COLUMN mood_confidence REAL",
        "ALTER TABLE turns ADD COLUMN mood_named INTEGER",
        "ALTER TABLE turns ADD COLUMN speech_s REAL",
        "ALTER TABLE turns ADD COLUMN speech_rate_sps REAL",
        "ALTER TABLE turns ADD COLUMN loudness_dbfs REAL",
        "ALTER TABLE turns ADD COLUMN pitch_hz REAL",
    ),
    # 3: receipts that hold. Turn and fact ids are never given out twice (AUTOINCREMENT:
    # the tables are rebuilt, ids and rows kept), source ids come from a stored sequence per
    # conversation, a forgetting bumps a generation every process checks, and what was
    # forgotten is remembered by id and hash only (no text), so no import brings it back.
    (
        """CREATE TABLE turns_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            ts REAL NOT NULL,
            speaker TEXT NOT NULL,
            text TEXT NOT NULL,
            duration_s REAL,
            interrupted INTEGER NOT NULL DEFAULT 0,
            source_id TEXT NOT NULL,
            mood_label TEXT, mood_valence REAL, mood_arousal REAL, mood_confidence REAL,
            mood_named INTEGER, speech_s REAL, speech_rate_sps REAL, loudness_dbfs REAL,
            pitch_hz REAL
        )""",
        """INSERT INTO turns_v3 SELECT id, conversation_id, at, ts, speaker, text, duration_s,
            interrupted, source_id, mood_label, mood_valence, mood_arousal, mood_confidence,
            mood_named, speech_s, speech_rate_sps, loudness_dbfs, pitch_hz FROM turns
            ORDER BY id""",
        "DROP TABLE turns",
        "ALTER TABLE turns_v3 RENAME TO turns",
        "CREATE INDEX turns_conversation ON turns(conversation_id, id)",
        "CREATE INDEX turns_ts ON turns(ts)",
        "CREATE INDEX turns_source ON turns(source_id)",
        """CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns BEGIN
            INSERT INTO turns_fts(rowid, text) VALUES (new.id, new.text);
        END""",
        """CREATE TRIGGER turns_fts_delete AFTER DELETE ON turns BEGIN
            INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END""",
        """CREATE TRIGGER turns_fts_update AFTER UPDATE OF text ON turns BEGIN
            INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO turns_fts(rowid, text) VALUES (new.id, new.text);
        END""",
        """CREATE TABLE facts_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            valid_from TEXT NOT NULL,
            valid_to TEXT,
            event_date TEXT,
            superseded_by INTEGER REFERENCES facts(id) ON DELETE SET NULL,
            extractor TEXT NOT NULL
        )""",
        """INSERT INTO facts_v3 SELECT id, kind, key, value, valid_from, valid_to, event_date,
            superseded_by, extractor FROM facts ORDER BY id""",
        "DROP TABLE facts",
        "ALTER TABLE facts_v3 RENAME TO facts",
        "CREATE INDEX facts_key ON facts(key)",
        # Not tied to conversations: a conversation whose turns were all forgotten is deleted,
        # its sequence is not (a new turn in it must not get an old source id).
        """CREATE TABLE conversation_seq (
            conversation_id TEXT PRIMARY KEY,
            last INTEGER NOT NULL
        )""",
        """INSERT INTO conversation_seq SELECT conversation_id, max(count(*), coalesce(max(
            CAST(substr(source_id, instr(source_id, ':') + 1) AS INTEGER)), 0))
            FROM turns GROUP BY conversation_id""",
        "CREATE TABLE memory_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO memory_state(key, value) VALUES ('forget_generation', 0)",
        """CREATE TABLE forgotten (
            kind TEXT NOT NULL,
            id INTEGER NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (kind, id)
        )""",
        "CREATE INDEX forgotten_hash ON forgotten(hash)",
        # Facts learnt from a turn that is gone (a retracted speculative turn, before this
        # schema) have no receipt left: they go, and what they had superseded is valid again.
        """UPDATE facts SET valid_to = NULL, superseded_by = NULL WHERE superseded_by IN (
            SELECT id FROM facts WHERE extractor IN ('rules', 'llm')
            AND id NOT IN (SELECT fact_id FROM fact_sources))""",
        """DELETE FROM facts WHERE extractor IN ('rules', 'llm')
            AND id NOT IN (SELECT fact_id FROM fact_sources)""",
    ),
    # 4: which journal entries (see the module docstring) are written, and the row each got.
    (
        """CREATE TABLE journal_applied (
            journal TEXT NOT NULL,
            seq INTEGER NOT NULL,
            row_id INTEGER NOT NULL,
            PRIMARY KEY (journal, seq)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class StoredTurn:
    """One stored turn with its receipt: where (conversation, source id) and when it was said.

    ``speaker`` is "user" or "assistant" for live conversations, the speaker's name for
    imported ones. For the assistant, ``text`` is what the user heard; ``interrupted`` says
    they cut it short. ``duration_s`` is the length of the spoken utterance, when spoken.
    """

    id: int
    conversation_id: str
    at: datetime
    speaker: str
    text: str
    duration_s: float | None
    interrupted: bool
    source_id: str
    mood: MoodEstimate | None = None
    """How the user seemed (user turns recorded by the dialogue; None otherwise)."""


@dataclass(frozen=True)
class NewTurn:
    """A turn to store (bulk import)."""

    conversation_id: str
    at: datetime
    speaker: str
    text: str
    source_id: str
    duration_s: float | None = None
    interrupted: bool = False
    id: int | None = None
    mood: MoodEstimate | None = None
    conversation_source: str = "live"
    """What kind of conversation a new one is (``RECORDING``: not the user's life)."""


RECORDING = "recording"
"""The source of a conversation answered from a recording (``run --input``): kept, and listed,
but not recalled, not learnt from and not part of the profile."""
_NOT_RECORDED = "conversation_id NOT IN (SELECT id FROM conversations WHERE source = 'recording')"


@dataclass(frozen=True)
class Erased:
    """What a forgetting did: turns deleted, turns redacted (rewritten without the part that
    was forgotten), facts deleted."""

    turns: int
    redacted: int
    facts: int

    @property
    def total(self) -> int:
        return self.turns + self.redacted + self.facts


@dataclass(frozen=True)
class MemoryStats:
    conversations: int
    turns: int
    user_turns: int
    embedded_turns: int
    facts: int
    valid_facts: int
    first: datetime | None
    last: datetime | None
    db_bytes: int
    wal_bytes: int


Connector = Callable[[Path, float], sqlite3.Connection]
"""Opens memory.db given its path and busy timeout in seconds (SQLCipher, with a key, is one)."""


def connect_plain(path: Path, timeout_s: float) -> sqlite3.Connection:
    """An unencrypted connection (``memory.encrypt = false``); read-only in a read-only folder."""
    target: str | Path = path
    if read_only(path):
        # Without a -wal the file holds everything and no one can add one (the folder is
        # read-only): "immutable" spares SQLite the -shm it could not create there.
        wal = path.with_name(path.name + "-wal")
        flags = "mode=ro" if wal.exists() and wal.stat().st_size else "mode=ro&immutable=1"
        target = f"{path.absolute().as_uri()}?{flags}"
    return sqlite3.connect(
        target, timeout=timeout_s, isolation_level=None, check_same_thread=False, uri=target != path
    )


def read_only(path: Path) -> bool:
    """memory.db exists in a folder this process cannot write (a read-only mount, another
    owner's folder): it is opened read-only, so that reading commands still work."""
    return path.exists() and not writable_dir(path.parent)


class MemoryDb:
    """A connection to memory.db, usable from several threads (one lock serialises them).

    ``check`` runs ``PRAGMA quick_check`` on open and refuses a damaged file (see the module
    docstring).
    """

    def __init__(
        self,
        path: Path,
        busy_timeout_ms: int = 5000,
        connect: Connector = connect_plain,
        check: bool = True,
    ) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._connect = connect
        self._lock = threading.RLock()
        # Writes that could not be made at once, in order, and the ids their rows got.
        self._deferred: deque[_Deferred] = deque()
        self._landed: dict[int, int] = {}
        self._next_placeholder = 0
        self._writer: threading.Thread | None = None
        self._closed = False
        self.read_only = read_only(path)
        self._replaying = False
        self._journal: Journal | None = None
        """This process's journal, created on the first queued write."""
        self._adopted: list[Journal] = []
        """Journals left by processes that ended with writes queued."""
        self._problem: str | None = None
        """Why the last write had to be queued: "locked", "full" or "damaged"."""
        self._damaged = False
        """memory.db was found damaged while open: nothing more is written into it."""
        try:
            private_dir(path.parent)
            # SQLite gives the -wal and -shm files the mode of the database file.
            if not self.read_only and not create_private(path):
                tighten_existing(path, *(path.with_name(path.name + x) for x in ("-wal", "-shm")))
        except OSError as exc:
            raise MemoryStoreError(f"cannot create {path}: {exc.strerror or exc}") from exc
        try:
            self._conn = connect(path, busy_timeout_ms / 1000)
        except sqlite3.Error as exc:
            raise MemoryStoreError(f"cannot open {path}: {exc}") from exc
        try:
            with self._errors():
                self._setup(check)
            if not self.read_only:  # a leftover journal waits for a writable folder
                self._adopt_journals()
        except BaseException:
            self._conn.close()
            for adopted in self._adopted:
                adopted.close(delete=False)
            raise

    # -- lifecycle ------------------------------------------------------------------------

    def _setup(self, check: bool) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        if self.read_only:  # for reading only: nothing to journal or to sync
            return self._migrate()
        mode = self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if str(mode).lower() != "wal":
            raise MemoryStoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        if check:
            self._check_integrity()
        self._migrate()

    def _check_integrity(self) -> None:
        """Refuse a damaged file before anything is written into it; keep a copy of it."""
        try:
            problems = [str(r[0]) for r in self._conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise  # not damage
            problems = [str(exc)]  # a page that cannot be read at all (SQLCipher: its HMAC)
        if problems == ["ok"]:
            return
        copy = keep_corrupt_copy(self.path)
        kept = f"a copy is kept as {copy.name}" if copy else "no copy could be made"
        raise MemoryCorruptError(
            f"{self.path} is damaged ({problems[0][:120]}): nothing more is written to it, "
            f"{kept}; run `voice-companion memory recover` to save what can be read"
        )

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version < 0:  # never written by us: another program's file, or a damaged one
            raise MemoryStoreError(
                f"{self.path} is not a voice-companion memory (schema version {version}): "
                "it belongs to another program or is damaged; move it aside"
            )
        if version > SCHEMA_VERSION:
            raise MemoryStoreError(
                f"{self.path} has memory schema version {version}, newer than this "
                f"voice-companion understands ({SCHEMA_VERSION}): upgrade voice-companion"
            )
        if version == SCHEMA_VERSION:
            return
        # A new file is made by the same steps, but that is no news to the user.
        say = log.debug if version == 0 else log.info
        # Migration 3 rebuilds tables: with foreign keys on, dropping the old table would
        # cascade into every row pointing at it (embeddings, fact sources). The pragma does
        # nothing inside a transaction, so it is turned off around them.
        self._conn.execute("PRAGMA foreign_keys = OFF")
        try:
            while version < SCHEMA_VERSION:
                with self.transaction() as conn:
                    # Another process may have migrated while we waited for the write lock.
                    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                    if version >= SCHEMA_VERSION:
                        break
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    version += 1
                    conn.execute(f"PRAGMA user_version = {version}")
                    say("memory.db schema migrated to version %d", version)
        finally:
            self._conn.execute("PRAGMA foreign_keys = ON")

    def close(self) -> None:
        """Close, after waiting a while for queued writes; those that still cannot be written
        stay in the journal for the next start (and say so)."""
        if self._closed:
            return
        if self._deferred:
            log.warning(
                "waiting for %s, %s: %d memory writes are queued",
                self.path,
                self._problem_words(),
                len(self._deferred),
            )
        self._wait_deferred(max(DRAIN_ON_CLOSE_S, self._busy_timeout_ms / 1000))
        with self._lock:
            self._closed = True
            kept = sum(1 for d in self._deferred if d.journal is not None)
            lost = len(self._deferred) - kept
            if kept:
                log.warning(
                    "%s is still %s: %d memory writes are kept in the journal beside it and "
                    "will be written the next time the companion starts%s",
                    self.path,
                    self._problem_words(),
                    kept,
                    " after it is recovered" if self._damaged else "",
                )
            if lost:
                log.error(
                    "%s: %d memory writes could not be saved anywhere (%s) and are lost",
                    self.path,
                    lost,
                    self._problem_words(),
                )
            for held in self._journals():
                held.close(delete=not any(d.journal is held for d in self._deferred))
            self._journal, self._adopted = None, []
            self._deferred.clear()
            self._conn.close()

    def __enter__(self) -> MemoryDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if _is_full(exc):
                raise MemoryFullError(f"the disk is full for {self.path}: {message}") from exc
            if "locked" in message or "busy" in message:
                raise MemoryBusyError(
                    f"{self.path} is locked by another process (waited "
                    f"{self._busy_timeout_ms} ms); try again"
                ) from exc
            raise MemoryStoreError(f"{self.path}: {message}") from exc
        except sqlite3.DatabaseError as exc:
            if _is_full(exc):
                raise MemoryFullError(f"the disk is full for {self.path}: {exc}") from exc
            if _is_corrupt(exc):
                raise MemoryCorruptError(
                    f"{self.path} is damaged ({exc}); run `voice-companion memory recover` "
                    "to save what can be read"
                ) from exc
            raise MemoryStoreError(
                f"{self.path} is not a usable memory database ({exc}); run `voice-companion "
                "memory recover` to save what can be read, or restore it from an export"
            ) from exc

    def _retry(self, action: Any) -> Any:
        """Run ``action``; on SQLITE_BUSY that the busy handler could not absorb (WAL snapshot
        conflicts), retry a few times with back-off before giving up."""
        delay_s = 0.02
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                message = str(exc)
                if ("locked" not in message and "busy" not in message) or (
                    time.monotonic() >= deadline
                ):
                    raise
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 0.5)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: take the write lock up front)."""
        with self._lock, self._errors():
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # A full disk can end the transaction inside SQLite already.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._conn

    # -- writes queued while another process holds the file, or the disk is full --------------

    def _write_or_defer(
        self,
        write: Callable[[sqlite3.Connection], int],
        op: str,
        args: dict[str, Any],
        turn: NewTurn | None = None,
    ) -> int:
        """Run ``write`` in a transaction now and return what it returns (a row id). When the
        file stays locked past the busy timeout, the disk is full or the file is found
        damaged, or earlier writes wait already (order is kept), journal the call (``op``:
        this method's name, with ``args``) and queue it for the writer thread; return a
        negative placeholder id instead."""
        with self._lock:
            if self._replaying:  # the writer thread, replaying a queued call in its transaction
                return write(self._conn)
            if self._closed:
                raise MemoryStoreError(f"{self.path} is closed")
            if not self._deferred and not self._damaged:
                try:
                    with self._waiting_at_most(QUEUE_AFTER_MS), self.transaction() as conn:
                        return write(conn)
                except MemoryBusyError:
                    self._problem = "locked"
                    log.warning(
                        "%s is locked by another process; what was said is kept in the "
                        "journal and written as soon as it lets go",
                        self.path,
                    )
                except MemoryFullError as exc:
                    self._problem = "full"
                    log.warning(
                        "memory is not being saved: %s; what is said is kept until it can be",
                        exc,
                    )
                except MemoryCorruptError as exc:
                    self._mark_damaged(exc)
            self._next_placeholder -= 1
            placeholder = self._next_placeholder
            held, seq = self._journal_append(
                {"op": op, "args": journal.encode(args), "placeholder": placeholder}
            )
            self._deferred.append(_Deferred(placeholder, op, args, turn, held, seq))
            self._start_writer()
            return placeholder

    def _mark_damaged(self, exc: BaseException) -> None:
        """Stop writing into a file found damaged while open (the journal keeps what is said
        meanwhile); keep a copy; say once how to recover."""
        self._problem = "damaged"
        if self._damaged:
            return
        self._damaged = True
        copy = keep_corrupt_copy(self.path)
        log.error(
            "memory is not being saved: %s is damaged (%s); nothing more is written to it, what "
            "is said is kept in the journal beside it%s; stop the companion and run "
            "`voice-companion memory recover`",
            self.path,
            str(exc.__cause__ if isinstance(exc, MemoryCorruptError) else exc)[:160],
            f", a copy is kept as {copy.name}" if copy else "",
        )

    def _journal_append(self, payload: dict[str, Any]) -> tuple[Journal | None, int]:
        """Put a queued write in this process's journal, synced; (None, 0) when even that
        cannot be written (it is then kept in RAM only)."""
        try:
            if self._journal is None:
                self._journal = Journal.create(self.path, self._connect)
            return self._journal, self._journal.append(payload).seq
        except (sqlite3.Error, MemoryStoreError) as exc:
            log.error(
                "the memory journal cannot be written either (%s): a queued write is kept in "
                "this process only until memory.db takes it",
                exc,
            )
            return None, 0

    def _start_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            # Not a daemon: the process does not exit with queued memories unwritten.
            self._writer = threading.Thread(target=self._drain, name="memory-writer")
            self._writer.start()

    def _adopt_journals(self) -> None:
        """Queue (first, in order) what processes that have ended left in their journals,
        and write it now if the file is free."""
        own = {j.name for j in self._journals()}
        for path in journal.leftovers(self.path, own):
            found: Journal | None = None
            try:
                found = Journal.adopt(path, self._connect)
                if found is None:
                    continue  # its process still runs, and writes it itself
                entries = found.entries()
            except (sqlite3.Error, MemoryStoreError) as exc:
                # Not ours to delete: say so once per open, and go on without it.
                log.error("%s cannot be read (%s); its queued writes are left in it", path, exc)
                if found is not None:
                    found.close(delete=False)
                continue
            if not entries:
                found.close(delete=True)
                continue
            log.info(
                "%s: writing %d memory writes left queued by a process that ended",
                self.path,
                len(entries),
            )
            try:
                queued = self._queued_from(found, entries)
            except (ValueError, KeyError, TypeError) as exc:
                log.error(
                    "%s holds a write this version cannot read (%s); it is left as it is",
                    path,
                    exc,
                )
                found.close(delete=False)
                continue
            self._adopted.append(found)
            self._deferred.extend(queued)
        if self._deferred and not self._drain_once():
            self._start_writer()
        self._forget_stale_markers()

    def _queued_from(self, found: Journal, entries: list[journal.Entry]) -> list[_Deferred]:
        """A left journal's entries as queued calls. Placeholders are per process: this
        journal's are numbered afresh, and so are the references to them."""
        renamed: dict[int, int] = {}
        queued = []
        for entry in entries:
            op = str(entry.payload["op"])
            if op not in _REPLAYABLE:
                raise ValueError(f"entry {entry.seq} is not a memory write ({op!r})")
            args = journal.decode(entry.payload.get("args", {}), _JOURNAL_TYPES)
            self._next_placeholder -= 1
            renamed[int(entry.payload.get("placeholder", 0))] = self._next_placeholder
            for name in _TURN_ID_ARGS.get(op, ()):
                value = args.get(name)
                if isinstance(value, list):
                    args[name] = [renamed.get(v, 0) if v < 0 else v for v in value]
                elif isinstance(value, int) and value < 0:
                    args[name] = renamed.get(value, 0)
            turn = args.get("turn") if op == "add_turn" else None
            if turn is not None and not isinstance(turn, NewTurn):
                raise TypeError(f"entry {entry.seq} holds no turn")
            queued.append(_Deferred(self._next_placeholder, op, args, turn, found, entry.seq))
        return queued

    def _journals(self) -> list[Journal]:
        return [*self._adopted, *([self._journal] if self._journal is not None else [])]

    def _forget_stale_markers(self) -> None:
        """Drop the ``journal_applied`` rows of journals that no longer exist (a crash between
        removing a journal and its rows leaves some); only if the file is free now."""
        with self.reading() as conn:
            rows = conn.execute("SELECT DISTINCT journal FROM journal_applied").fetchall()
        names = [str(r[0]) for r in rows]
        live = {j.name for j in self._journals()}
        stale = [n for n in names if n not in live and not (self.path.parent / n).exists()]
        if not stale:
            return  # the usual case: no write, no lock taken
        try:
            with self._waiting_at_most(0), self.transaction() as conn:
                conn.executemany(
                    "DELETE FROM journal_applied WHERE journal = ?", [(n,) for n in stale]
                )
        except MemoryStoreError:
            pass  # locked, full or read-only: next time

    @contextmanager
    def _waiting_at_most(self, wait_ms: int) -> Iterator[None]:
        """A shorter busy timeout for what runs inside (the caller holds the lock)."""
        with self._lock:
            full_ms = self._busy_timeout_ms
            self._busy_timeout_ms = min(wait_ms, full_ms)
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            try:
                yield
            finally:
                self._busy_timeout_ms = full_ms
                self._conn.execute(f"PRAGMA busy_timeout = {int(full_ms)}")

    def _drain(self) -> None:
        """The writer thread: write the queue in order as soon as the file takes it."""
        delay_s = 0.02
        while not self._drain_once():
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.25 if self._problem == "locked" else 1.0)

    def _drain_once(self) -> bool:
        """Write what is queued, one transaction each; False when the file does not take it
        yet (locked, or the disk full)."""
        conn = self._conn
        while True:
            with self._lock:
                if self._closed or not self._deferred:
                    return True
                if self._damaged:
                    return False  # kept in the journal for the recovered file
                entry = self._deferred[0]
                # Try the lock without waiting: readers in this process share the connection
                # and must not stand behind a busy wait.
                conn.execute("PRAGMA busy_timeout = 0")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    return False
                finally:
                    conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
                try:
                    row_id = self._replay(conn, entry)
                    conn.execute("COMMIT")
                except Exception as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    if _is_full(exc):
                        self._problem = "full"
                        return False
                    if isinstance(exc, MemoryCorruptError) or _is_corrupt(exc):
                        self._mark_damaged(exc)
                        return False
                    # Not the file's state but this write: say so, and keep the rest going.
                    log.error("%s: a queued memory write failed and is dropped: %s", self.path, exc)
                    row_id = 0
                self._deferred.popleft()
                if entry.op == "add_turn":
                    self._landed[entry.placeholder] = row_id
                if not self._deferred:
                    self._problem = None
                self._journal_done(entry)

    def _replay(self, conn: sqlite3.Connection, entry: _Deferred) -> int:
        """Make a queued write inside the caller's transaction, by calling the method that
        queued it again; recorded as applied when it came from a journal."""
        held = entry.journal
        if held is not None:
            row = conn.execute(
                "SELECT row_id FROM journal_applied WHERE journal = ? AND seq = ?",
                (held.name, entry.seq),
            ).fetchone()
            if row is not None:
                return int(row[0])  # written before a crash that left it in the journal
        self._replaying = True
        try:
            result = getattr(self, entry.op)(**entry.args)
        finally:
            self._replaying = False
        row_id = result.id if isinstance(result, StoredTurn) else int(result or 0)
        if held is not None:
            conn.execute(
                "INSERT INTO journal_applied(journal, seq, row_id) VALUES (?, ?, ?)",
                (held.name, entry.seq, row_id),
            )
        return row_id

    def _journal_done(self, *entries: _Deferred, erase: bool = False) -> None:
        """Take these entries (written, or with ``erase`` forgotten) out of their journals; a
        journal left with nothing queued is removed, then its ``journal_applied`` rows."""
        for held in {id(e.journal): e.journal for e in entries if e.journal is not None}.values():
            seqs = [e.seq for e in entries if e.journal is held]
            if any(d.journal is held for d in self._deferred):
                try:
                    held.remove(seqs)
                except sqlite3.Error as exc:
                    if erase:
                        # Cannot be erased in place (a full disk): move what is still queued
                        # to a fresh journal and remove this one whole.
                        log.warning("%s: %s; writing its queued entries afresh", held.path, exc)
                        self._rejournal(held)
                    # A written entry left in place is harmless: journal_applied has it.
                continue
            held.close(delete=True)
            if held is self._journal:
                self._journal = None
            else:
                self._adopted = [j for j in self._adopted if j is not held]
            try:
                with self._waiting_at_most(0), self.transaction() as conn:
                    conn.execute("DELETE FROM journal_applied WHERE journal = ?", (held.name,))
            except MemoryStoreError:
                pass  # removed at a later open (``_forget_stale_markers``)

    def _rejournal(self, held: Journal) -> None:
        """Copy the entries still queued from ``held`` to a fresh journal (when the disk lets
        it; in RAM otherwise), then remove ``held`` whole."""
        if held is self._journal:
            self._journal = None
        kept = deque[_Deferred]()
        for d in self._deferred:
            if d.journal is held:
                new, seq = self._journal_append(
                    {"op": d.op, "args": journal.encode(d.args), "placeholder": d.placeholder}
                )
                d = dataclasses.replace(d, journal=new, seq=seq)
            kept.append(d)
        self._deferred = kept
        held.close(delete=True)
        self._adopted = [j for j in self._adopted if j is not held]

    def _wait_deferred(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the queued writes to land; True when none is left."""
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout_s)
        return not self._deferred

    @property
    def queued_writes(self) -> int:
        """Writes waiting for memory.db to take them (another process holds it, or the disk
        is full)."""
        return len(self._deferred)

    @property
    def saving(self) -> Saving:
        """Whether what is said is in memory.db now, or waiting (and where). Takes no lock:
        the daemon's status must not wait behind a write that waits for another process."""
        entries = list(self._deferred)  # one C-level copy under the GIL
        journalled = sum(1 for d in entries if d.journal is not None)
        problem = self._problem_words() if entries else None
        return Saving(not entries, len(entries), journalled, problem)

    def _problem_words(self) -> str:
        return {
            "full": "the disk is full",
            "locked": "held by another program",
            "damaged": "damaged (run `voice-companion memory recover`)",
        }.get(self._problem or "", "not writable")

    def _resolved(self, turn_ids: Iterable[int]) -> list[int]:
        """Row ids for ``turn_ids``: placeholders of landed turns mapped, others dropped."""
        out = []
        for turn_id in turn_ids:
            real = self._landed.get(turn_id, 0) if turn_id < 0 else turn_id
            if real > 0:
                out.append(real)
        return out

    def _unqueue(self, turn_ids: Iterable[int]) -> list[int]:
        """Take still-queued turns out of the queue and their journal, with what was learnt
        only from them (they are never written); the row ids of the others."""
        ids = list(turn_ids)
        with self._lock:
            waiting = {i for i in ids if i < 0 and i not in self._landed}
            if waiting:
                dropped = [
                    d for d in self._deferred if d.placeholder in waiting or _only_from(d, waiting)
                ]
                self._deferred = deque(d for d in self._deferred if d not in dropped)
                for turn_id in waiting:
                    self._landed[turn_id] = 0
                self._journal_done(*dropped, erase=True)
            return self._resolved(ids)

    # -- conversations and turns ------------------------------------------------------------

    def ensure_conversation(
        self, conversation_id: str, started_at: datetime, source: str = "live"
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO conversations(id, started_at, source) VALUES (?, ?, ?)",
                (conversation_id, started_at.isoformat(), source),
            )

    def add_turn(self, turn: NewTurn) -> StoredTurn:
        """Store one turn, durably (committed and synced before this returns); or, when another
        process holds the file past the busy timeout, queue it (see the module docstring): its
        id is then a negative placeholder that the other methods taking ids understand."""

        def write(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT OR IGNORE INTO conversations(id, started_at, source) VALUES (?, ?, ?)",
                (turn.conversation_id, turn.at.isoformat(), turn.conversation_source),
            )
            return self.insert_turn(conn, turn)

        turn_id = self._write_or_defer(write, "add_turn", {"turn": turn}, turn)
        if turn_id < 0:
            return StoredTurn(
                turn_id, turn.conversation_id, turn.at, turn.speaker, turn.text,
                turn.duration_s, turn.interrupted, turn.source_id, mood=turn.mood,
            )  # fmt: skip
        return self.turn(turn_id)

    def add_turns(self, turns: Iterable[NewTurn]) -> list[int]:
        """Store many turns in one transaction (imports); their conversations must exist."""
        with self.transaction() as conn:
            return [self.insert_turn(conn, t) for t in turns]

    @staticmethod
    def insert_turn(conn: sqlite3.Connection, turn: NewTurn) -> int:
        """Insert one turn in the caller's transaction; an empty ``source_id`` is given the
        conversation's next number from its stored sequence (never one given out before,
        whatever was forgotten since)."""
        source_id = turn.source_id or _next_source_id(conn, turn.conversation_id)
        cursor = conn.execute(
            "INSERT INTO turns(id, conversation_id, at, ts, speaker, text, duration_s,"
            " interrupted, source_id, mood_label, mood_valence, mood_arousal, mood_confidence,"
            " mood_named, speech_s, speech_rate_sps, loudness_dbfs, pitch_hz)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                turn.id,
                turn.conversation_id,
                turn.at.isoformat(),
                turn.at.timestamp(),
                turn.speaker,
                turn.text,
                turn.duration_s,
                int(turn.interrupted),
                source_id,
                *_mood_row(turn.mood),
            ),
        )
        return int(cursor.lastrowid or 0)

    def count_turns(self, conversation_id: str | None = None) -> int:
        """Turns stored, and queued to be (see ``add_turn``)."""
        with self.reading() as conn:
            if conversation_id is None:
                row = conn.execute("SELECT count(*) FROM turns").fetchone()
            else:
                row = conn.execute(
                    "SELECT count(*) FROM turns WHERE conversation_id = ?", (conversation_id,)
                ).fetchone()
            queued = sum(
                1
                for d in self._deferred
                if d.turn is not None and conversation_id in (None, d.turn.conversation_id)
            )
            return int(row[0]) + queued

    def turn(self, turn_id: int) -> StoredTurn:
        found = self.turns_by_id([turn_id])
        if turn_id not in found:
            if self._was_forgotten("turn", turn_id):
                raise MemoryNotFoundError(f"turn {turn_id} was forgotten; nothing of it is left")
            raise MemoryNotFoundError(f"no remembered turn has id {turn_id}")
        return found[turn_id]

    def turns_by_id(self, ids: Sequence[int]) -> dict[int, StoredTurn]:
        out: dict[int, StoredTurn] = {}
        with self.reading() as conn:
            for chunk in _chunks(list(ids), 500):
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"{_TURN_SELECT} WHERE id IN ({marks})", chunk):
                    turn = _turn(row)
                    out[turn.id] = turn
        return out

    def turns(
        self,
        limit: int | None = None,
        conversation_id: str | None = None,
        newest_first: bool = False,
        recordings: bool = True,
    ) -> list[StoredTurn]:
        """Turns in the order they were said (the newest ``limit`` of them, when given);
        without those of recordings when ``recordings`` is false."""
        clauses: list[str] = [] if recordings else [_NOT_RECORDED]
        args: list[Any] = []
        if conversation_id:
            clauses.append("conversation_id = ?")
            args.append(conversation_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = f"{_TURN_SELECT} {where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.reading() as conn:
            rows = [_turn(r) for r in conn.execute(sql, args)]
        return rows if newest_first else rows[::-1]

    def last_turn(self, conversation_id: str, speaker: str) -> StoredTurn | None:
        with self.reading() as conn:
            row = conn.execute(
                f"{_TURN_SELECT} WHERE conversation_id = ? AND speaker = ? ORDER BY id DESC"
                " LIMIT 1",
                (conversation_id, speaker),
            ).fetchone()
        return None if row is None else _turn(row)

    def conversations(self) -> list[tuple[str, datetime, str]]:
        with self.reading() as conn:
            rows = conn.execute("SELECT id, started_at, source FROM conversations ORDER BY rowid")
            return [(r[0], datetime.fromisoformat(r[1]), r[2]) for r in rows]

    # -- search -----------------------------------------------------------------------------

    def search_text(self, match: str, limit: int) -> list[tuple[int, float]]:
        """BM25 over the full-text index: (turn id, score) best first; higher is better.
        Recordings' turns are not recalled."""
        if not match:
            return []
        with self.reading() as conn:
            rows = conn.execute(
                "SELECT rowid, bm25(turns_fts) FROM turns_fts WHERE turns_fts MATCH ?"
                " AND rowid NOT IN (SELECT t.id FROM conversations c JOIN turns t"
                " ON t.conversation_id = c.id WHERE c.source = 'recording')"
                " ORDER BY bm25(turns_fts) LIMIT ?",
                (match, limit),
            ).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def newest_turn_ids(self, limit: int) -> list[int]:
        with self.reading() as conn:
            rows = conn.execute("SELECT id FROM turns ORDER BY ts DESC, id DESC LIMIT ?", (limit,))
            return [int(r[0]) for r in rows]

    def matching_turn_ids(self, topic: str | Topic) -> list[int]:
        """Turns about ``topic`` (``memory.topic``: its words, in any order)."""
        return [t.id for t in self.turns_about(topic)]

    def turns_about(self, topic: str | Topic) -> list[StoredTurn]:
        """The turns about ``topic``, in the order they were said."""
        topic = topic if isinstance(topic, Topic) else Topic.of(topic)
        if not topic:
            return []
        # The one matcher, the same test as for the history and the CLI, over every turn (the
        # rows streamed, not held; its quick no keeps 100,000 turns to about half a second).
        with self.reading() as conn:
            rows = conn.execute("SELECT id, text FROM turns")
            ids = [int(r[0]) for r in rows if topic.matches(r[1])]
        return [t for _, t in sorted(self.turns_by_id(ids).items())]

    # -- embeddings -------------------------------------------------------------------------

    def unembedded(self, model: str, limit: int) -> list[tuple[int, str]]:
        """Turns with no cached vector from ``model`` yet, oldest first, as (id, text to
        embed): a named speaker (imported conversations) is part of what was said. A
        recording's turns are never embedded, so never found by meaning."""
        with self.reading() as conn:
            rows = conn.execute(
                "SELECT t.id, CASE WHEN t.speaker IN ('user', 'assistant') THEN t.text"
                " ELSE t.speaker || ': ' || t.text END FROM turns t LEFT JOIN embeddings e"
                " ON e.turn_id = t.id AND e.model = ? WHERE e.turn_id IS NULL"
                f" AND t.{_NOT_RECORDED} ORDER BY t.id LIMIT ?",
                (model, limit),
            ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def put_embeddings(self, model: str, vectors: Iterable[tuple[int, bytes]]) -> None:
        if self._deferred:
            return  # the file is locked: vectors are derived, and made again later
        with self.transaction() as conn:
            # A turn forgotten meanwhile has no row to attach to: skip it, silently.
            written = conn.executemany(
                "INSERT OR REPLACE INTO embeddings(turn_id, model, vector)"
                " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM turns WHERE id = ?)",
                [(tid, model, blob, tid) for tid, blob in vectors],
            ).rowcount
            # Counted, so that a cache can tell it is current without reading the vectors.
            conn.execute(
                "INSERT INTO memory_state(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                (f"embeddings_written:{model}", max(0, written)),
            )

    def embeddings_since(self, model: str, after_id: int) -> list[tuple[int, bytes]]:
        with self.reading() as conn:
            rows = conn.execute(
                "SELECT turn_id, vector FROM embeddings WHERE model = ? AND turn_id > ?"
                " ORDER BY turn_id",
                (model, after_id),
            ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def embedding_state(self, model: str) -> tuple[int, int]:
        """(vectors of ``model`` ever written, forget generation): a fingerprint for caches
        read before every search, two rows, where counting the vectors would read them all
        (80 MB at 100,000 turns)."""
        with self.reading() as conn:
            rows = dict(
                conn.execute(
                    "SELECT key, value FROM memory_state WHERE key IN (?, 'forget_generation')",
                    (f"embeddings_written:{model}",),
                ).fetchall()
            )
        return int(rows.get(f"embeddings_written:{model}", 0)), int(
            rows.get("forget_generation", 0)
        )

    # -- facts ------------------------------------------------------------------------------

    def add_fact(
        self,
        kind: str,
        key: str,
        value: str,
        valid_from: datetime,
        source_turn_ids: Sequence[int],
        extractor: str,
        event_date: date | None = None,
        supersedes: Sequence[int] = (),
        fact_id: int | None = None,
        valid_to: datetime | None = None,
        superseded_by: int | None = None,
    ) -> int:
        """Store a fact; ``supersedes`` are older facts it replaces (kept, marked invalid).

        Queued behind the turns it was learnt from when they are (see ``add_turn``)."""

        def write(conn: sqlite3.Connection) -> int:
            sources = _existing(conn, self._resolved(source_turn_ids))
            if source_turn_ids and not sources:
                return 0  # its turns were forgotten (while queued, or meanwhile): so is the fact
            cursor = conn.execute(
                "INSERT INTO facts(id, kind, key, value, valid_from, valid_to, event_date,"
                " superseded_by, extractor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fact_id,
                    kind,
                    key,
                    value,
                    valid_from.isoformat(),
                    valid_to.isoformat() if valid_to else None,
                    event_date.isoformat() if event_date else None,
                    superseded_by,
                    extractor,
                ),
            )
            new_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT OR IGNORE INTO fact_sources(fact_id, turn_id) VALUES (?, ?)",
                [(new_id, t) for t in sources],
            )
            conn.executemany(
                "UPDATE facts SET valid_to = ?, superseded_by = ? WHERE id = ?",
                [(valid_from.isoformat(), new_id, old) for old in supersedes],
            )
            return new_id

        call = {
            "kind": kind, "key": key, "value": value, "valid_from": valid_from,
            "source_turn_ids": list(source_turn_ids), "extractor": extractor,
            "event_date": event_date, "supersedes": list(supersedes), "fact_id": fact_id,
            "valid_to": valid_to, "superseded_by": superseded_by,
        }  # fmt: skip
        return self._write_or_defer(write, "add_fact", call)

    def add_fact_source(self, fact_id: int, turn_id: int) -> None:
        def write(conn: sqlite3.Connection) -> int:
            for source in _existing(conn, self._resolved([turn_id])):
                conn.execute(
                    "INSERT OR IGNORE INTO fact_sources(fact_id, turn_id) VALUES (?, ?)",
                    (fact_id, source),
                )
            return 0

        self._write_or_defer(write, "add_fact_source", {"fact_id": fact_id, "turn_id": turn_id})

    def end_fact(self, fact_id: int, valid_to: datetime) -> None:
        """Mark a fact no longer valid with no successor ("I gave up running")."""

        def write(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE facts SET valid_to = ? WHERE id = ? AND valid_to IS NULL",
                (valid_to.isoformat(), fact_id),
            )
            return 0

        self._write_or_defer(write, "end_fact", {"fact_id": fact_id, "valid_to": valid_to})

    def recent_facts(self, limit: int) -> list[Fact]:
        """The ``limit`` most recently stored valid facts, newest first (by id: an index)."""
        with self.reading() as conn:
            rows = conn.execute(
                f"{_FACT_SELECT} WHERE valid_to IS NULL ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
            sources = _fact_sources(conn, [int(r[0]) for r in rows])
        return [_fact(r, sources.get(int(r[0]), ())) for r in rows]

    def facts(self, valid_only: bool = True, key: str | None = None) -> list[Fact]:
        """Facts, oldest first."""
        clauses, args = [], []
        if valid_only:
            clauses.append("valid_to IS NULL")
        if key is not None:
            clauses.append("key = ?")
            args.append(key)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.reading() as conn:
            rows = conn.execute(f"{_FACT_SELECT} {where} ORDER BY id", args).fetchall()
            sources = _fact_sources(conn, [int(r[0]) for r in rows])
        return [_fact(r, sources.get(int(r[0]), ())) for r in rows]

    def fact(self, fact_id: int) -> Fact:
        with self.reading() as conn:
            row = conn.execute(f"{_FACT_SELECT} WHERE id = ?", (fact_id,)).fetchone()
            if row is None:
                if self._was_forgotten("fact", fact_id):
                    raise MemoryNotFoundError(f"fact f{fact_id} was forgotten; nothing is left")
                raise MemoryNotFoundError(f"no remembered fact has id f{fact_id}")
            sources = _fact_sources(conn, [fact_id])
        return _fact(row, sources.get(fact_id, ()))

    def facts_from_turns(self, turn_ids: Sequence[int]) -> list[int]:
        out: set[int] = set()
        with self.reading() as conn:
            for chunk in _chunks(list(turn_ids), 500):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT fact_id FROM fact_sources WHERE turn_id IN ({marks})", chunk
                )
                out.update(int(r[0]) for r in rows)
        return sorted(out)

    def matching_fact_ids(self, topic: str | Topic) -> list[int]:
        """Facts about ``topic``: by their value or what they are about (``relation:sister``)."""
        topic = topic if isinstance(topic, Topic) else Topic.of(topic)
        if not topic:
            return []
        with self.reading() as conn:
            rows = conn.execute("SELECT id, value, key FROM facts").fetchall()
        # What a fact is about counts too ("relation:sister" is about "sister").
        said = ((int(r[0]), f"{r[1]} {r[2]}".replace(":", " ").replace("_", " ")) for r in rows)
        return sorted(fact_id for fact_id, text in said if topic.matches(text))

    # -- forgetting -------------------------------------------------------------------------

    def forget(self, turn_ids: Sequence[int] = (), fact_ids: Sequence[int] = ()) -> tuple[int, int]:
        """Delete turns and facts for real (see ``erase``); the numbers of turns and facts
        deleted. A fact learnt only from deleted turns goes with them; one with another
        receipt stays, with that one."""
        done = self.erase(TopicMatches(tuple(turn_ids), tuple(fact_ids)))
        return done.turns, done.facts

    def erase(self, plan: TopicMatches) -> Erased:
        """Carry out a forgetting, in one transaction: delete ``plan.turn_ids``, rewrite the
        redacted turns (their old vectors go too), drop the receipts ``plan.dropped_sources``,
        delete ``plan.fact_ids`` and every fact left without a receipt (a fact that an erased
        fact had superseded is valid again). What was deleted is remembered by id and hash
        (no text), and the forget generation is bumped, so every process drops its copies.

        The old text is overwritten in the database file (secure_delete), the full-text index
        is rebuilt without it, and the write-ahead log is truncated.
        """
        with self._lock:
            queued = len(self._deferred)
            turn_ids = sorted(set(self._unqueue(plan.turn_ids)))
            unqueued = queued - len(self._deferred)
        gone = set(turn_ids)
        redactions = {t: text for t, text in plan.redactions if t > 0 and t not in gone}
        if not turn_ids and not redactions and not plan.fact_ids:
            return Erased(unqueued, 0, 0)  # only queued turns: gone without the locked file
        dropped = set(plan.dropped_sources)
        with self.transaction() as conn:
            fact_set = set(plan.fact_ids)
            touched = self.facts_from_turns(sorted(gone | redactions.keys()))
            for fact_id, sources in _fact_sources(conn, touched).items():
                if all(t in gone or (fact_id, t) in dropped for t in sources):
                    fact_set.add(fact_id)  # no receipt would be left
            _remember_forgotten(conn, turn_ids, sorted(fact_set))
            deleted_facts = _delete_facts(conn, sorted(fact_set))
            conn.executemany(
                "DELETE FROM fact_sources WHERE fact_id = ? AND turn_id = ?", sorted(dropped)
            )
            redacted = 0
            for turn_id, text in sorted(redactions.items()):
                redacted += conn.execute(
                    "UPDATE turns SET text = ? WHERE id = ?", (text, turn_id)
                ).rowcount
                conn.execute("DELETE FROM embeddings WHERE turn_id = ?", (turn_id,))
            deleted_turns = 0
            for chunk in _chunks(turn_ids, 500):
                marks = ",".join("?" * len(chunk))
                deleted_turns += conn.execute(
                    f"DELETE FROM turns WHERE id IN ({marks})", chunk
                ).rowcount
            conn.execute(
                "DELETE FROM conversations WHERE id NOT IN (SELECT conversation_id FROM turns)"
            )
            if deleted_turns or redacted:
                # Deleting from an external-content FTS5 index leaves the old terms in its
                # segments until they merge; rebuilding writes the index afresh.
                conn.execute("INSERT INTO turns_fts(turns_fts) VALUES ('rebuild')")
            conn.execute(
                "UPDATE memory_state SET value = value + 1 WHERE key = 'forget_generation'"
            )
        if deleted_turns or deleted_facts or redacted:
            self.checkpoint()
        return Erased(deleted_turns + unqueued, redacted, deleted_facts)

    def forget_generation(self) -> int:
        """Bumped by every forgetting, in any process: a cheap read, made before each turn,
        that tells a process to drop its copies of what was forgotten."""
        with self.reading() as conn:
            row = conn.execute(
                "SELECT value FROM memory_state WHERE key = 'forget_generation'"
            ).fetchone()
        return int(row[0]) if row else 0

    def stored_texts(self, turn_ids: Sequence[int]) -> dict[int, str | None]:
        """For each id, the turn's text now (a redacted turn's new text), or None when it is
        gone. A turn still queued (see ``add_turn``) is left out: nothing is known yet."""
        with self._lock:
            pending = {i for i in turn_ids if i < 0 and i not in self._landed}
            real = {i: r for i in turn_ids if i not in pending for r in self._resolved([i])}
        found = self.turns_by_id(sorted(set(real.values())))
        out: dict[int, str | None] = {i: None for i in turn_ids if i not in pending}
        for asked, row_id in real.items():
            out[asked] = found[row_id].text if row_id in found else None
        return out

    def _was_forgotten(self, kind: str, row_id: int) -> bool:
        with self.reading() as conn:
            row = conn.execute(
                "SELECT 1 FROM forgotten WHERE kind = ? AND id = ?", (kind, row_id)
            ).fetchone()
        return row is not None

    def forgotten_hashes(self) -> set[str]:
        """The identities (``turn_identity``, ``fact_identity``) of everything forgotten."""
        with self.reading() as conn:
            return {str(r[0]) for r in conn.execute("SELECT hash FROM forgotten")}

    def retract_turn(self, turn_id: int) -> None:
        """Remove a turn that was stored but then superseded by a longer version of itself
        (the user resumed speaking): an ordinary delete, not a forgetting. A fact learnt only
        from it goes with it (it comes again from the longer turn, if it is still said);
        one with other receipts keeps those."""
        for real_id in self._unqueue([turn_id]):

            def write(conn: sqlite3.Connection, real_id: int = real_id) -> int:
                only_here = conn.execute(
                    "SELECT fact_id FROM fact_sources WHERE turn_id = ? AND fact_id NOT IN"
                    " (SELECT fact_id FROM fact_sources WHERE turn_id != ?)",
                    (real_id, real_id),
                ).fetchall()
                _delete_facts(conn, [int(r[0]) for r in only_here])
                conn.execute("DELETE FROM turns WHERE id = ?", (real_id,))
                return 0

            self._write_or_defer(write, "retract_turn", {"turn_id": real_id})

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database and truncate it to zero bytes.

        Readers in other processes can hold the log open for a moment; wait for them up to
        the busy timeout, then say so rather than leave forgotten text behind silently.
        """
        deadline = time.monotonic() + max(self._busy_timeout_ms, 1000) / 1000
        with self._lock, self._errors():
            while True:
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    return
                if time.monotonic() >= deadline:
                    raise MemoryBusyError(
                        f"{self.path}: another process is reading the memory; the deletion is "
                        "committed but its old pages stay in memory.db-wal until that process "
                        "lets go: run `voice-companion memory forget` again later"
                    )
                time.sleep(0.05)

    # -- everything -------------------------------------------------------------------------

    def stats(self) -> MemoryStats:
        with self.reading() as conn:

            def one(sql: str) -> Any:
                return conn.execute(sql).fetchone()[0]

            first, last = conn.execute("SELECT min(at), max(at) FROM turns").fetchone()
            stats = MemoryStats(
                conversations=int(one("SELECT count(*) FROM conversations")),
                turns=int(one("SELECT count(*) FROM turns")),
                user_turns=int(one("SELECT count(*) FROM turns WHERE speaker = 'user'")),
                embedded_turns=int(one("SELECT count(*) FROM embeddings")),
                facts=int(one("SELECT count(*) FROM facts")),
                valid_facts=int(one("SELECT count(*) FROM facts WHERE valid_to IS NULL")),
                first=datetime.fromisoformat(first) if first else None,
                last=datetime.fromisoformat(last) if last else None,
                db_bytes=_size(self.path),
                wal_bytes=_size(self.path.with_name(self.path.name + "-wal")),
            )
        return stats


QUEUE_AFTER_MS = 1000
"""A turn (or what is learnt from it) waits at most this long, or ``busy_timeout_ms`` when
shorter, for another process to let go before it is queued: the reply waits for the write."""
DRAIN_ON_CLOSE_S = 5.0
"""``close`` waits at least this long for queued writes to land (then leaves them in the
journal for the next start)."""


@dataclass(frozen=True)
class Saving:
    """Whether what is said is being saved: ``saved`` when nothing waits; otherwise ``queued``
    writes wait, ``journalled`` of them safe on disk in the journal, and ``problem`` says why
    ("the disk is full", "held by another program")."""

    saved: bool
    queued: int
    journalled: int
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "saved": self.saved,
            "queued": self.queued,
            "journalled": self.journalled,
            "problem": self.problem,
        }


@runtime_checkable
class ReportsSaving(Protocol):
    """A memory that can say whether what is said is being saved (the daemon's ``status``)."""

    @property
    def saving(self) -> Saving: ...


@dataclass(frozen=True, eq=False)
class _Deferred:
    """A queued call: ``op`` names the ``MemoryDb`` method, ``args`` its arguments;
    ``placeholder`` is the id handed out for it; ``journal``/``seq`` where it is on disk (None
    when it could not be written there)."""

    placeholder: int
    op: str
    args: dict[str, Any]
    turn: NewTurn | None
    journal: Journal | None
    seq: int


_REPLAYABLE = frozenset({"add_turn", "add_fact", "add_fact_source", "end_fact", "retract_turn"})
"""The methods whose calls can be queued (and replayed from a journal)."""
_TURN_ID_ARGS: dict[str, tuple[str, ...]] = {
    "add_fact": ("source_turn_ids",),
    "add_fact_source": ("turn_id",),
    "retract_turn": ("turn_id",),
}
"""Arguments that hold turn ids, which may be placeholders of queued turns."""
_JOURNAL_TYPES: dict[str, type] = {
    "NewTurn": NewTurn,
    "MoodEstimate": MoodEstimate,
    "Prosody": Prosody,
}


def _only_from(entry: _Deferred, turn_ids: set[int]) -> bool:
    """Whether every turn ``entry`` refers to is one of ``turn_ids`` (what was learnt only
    from turns being forgotten goes with them)."""
    refs: list[Any] = []
    for name in _TURN_ID_ARGS.get(entry.op, ()):
        value = entry.args.get(name)
        refs.extend(value if isinstance(value, list | tuple) else [value])
    return bool(refs) and all(r in turn_ids for r in refs)


def _is_full(exc: BaseException) -> bool:
    """SQLITE_FULL: the disk, or the database's page limit, is full."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)


def _is_corrupt(exc: BaseException) -> bool:
    """SQLITE_CORRUPT: a page does not read as SQLite. (A file that is not SQLite at all,
    SQLITE_NOTADB, is "not a usable memory database" instead.)"""
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_CORRUPT or "malformed" in str(exc)


def keep_corrupt_copy(path: Path) -> Path | None:
    """Copy a damaged memory.db (and its write-ahead log) to ``memory.db.corrupt-<date>``,
    0600, once a day; the copy's path, or None when it cannot be made."""
    copy = path.with_name(f"{path.name}.corrupt-{date.today().isoformat()}")
    if copy.exists():
        return copy
    try:
        for source, target in (
            (path, copy),
            (path.with_name(path.name + "-wal"), copy.with_name(copy.name + "-wal")),
        ):
            if not source.exists() or not source.stat().st_size:
                continue
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with source.open("rb") as src, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out)
                out.flush()
                os.fsync(out.fileno())
    except OSError as exc:
        log.error("cannot keep a copy of the damaged %s: %s", path, exc)
        return None
    return copy


_TURN_SELECT = (
    "SELECT id, conversation_id, at, speaker, text, duration_s, interrupted, source_id,"
    " mood_label, mood_valence, mood_arousal, mood_confidence, mood_named, speech_s,"
    " speech_rate_sps, loudness_dbfs, pitch_hz FROM turns"
)
_FACT_SELECT = (
    "SELECT id, kind, key, value, valid_from, valid_to, event_date, superseded_by, extractor"
    " FROM facts"
)


def _turn(row: Sequence[Any]) -> StoredTurn:
    return StoredTurn(
        id=int(row[0]),
        conversation_id=str(row[1]),
        at=datetime.fromisoformat(row[2]),
        speaker=str(row[3]),
        text=str(row[4]),
        duration_s=None if row[5] is None else float(row[5]),
        interrupted=bool(row[6]),
        source_id=str(row[7]),
        mood=_mood(row[8:17]),
    )


def _mood_row(mood: MoodEstimate | None) -> tuple[Any, ...]:
    if mood is None:
        return (None,) * 9
    p = mood.prosody
    return (
        mood.label, mood.valence, mood.arousal, mood.confidence, int(mood.named),
        None if p is None else p.speech_s,
        None if p is None else p.rate_sps,
        None if p is None else p.loudness_dbfs,
        None if p is None else p.pitch_hz,
    )  # fmt: skip


def _mood(row: Sequence[Any]) -> MoodEstimate | None:
    label, valence, arousal, confidence, named, speech_s, rate, loudness, pitch = row
    if label not in LABELS:
        return None
    spoken = speech_s is not None
    return MoodEstimate(
        label=label,
        valence=float(valence or 0.0),
        arousal=None if arousal is None else float(arousal),
        confidence=float(confidence or 0.0),
        prosody=Prosody(float(speech_s), _num(rate), _num(loudness), _num(pitch))
        if spoken
        else None,
        named=bool(named),
    )


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _fact(row: Sequence[Any], sources: tuple[int, ...]) -> Fact:
    return Fact(
        id=int(row[0]),
        kind=str(row[1]),
        key=str(row[2]),
        value=str(row[3]),
        valid_from=datetime.fromisoformat(row[4]),
        valid_to=datetime.fromisoformat(row[5]) if row[5] else None,
        event_date=date.fromisoformat(row[6]) if row[6] else None,
        superseded_by=None if row[7] is None else int(row[7]),
        extractor=str(row[8]),
        source_turn_ids=sources,
    )


def _fact_sources(conn: sqlite3.Connection, fact_ids: list[int]) -> dict[int, tuple[int, ...]]:
    found: dict[int, list[int]] = {}
    for chunk in _chunks(fact_ids, 500):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT fact_id, turn_id FROM fact_sources WHERE fact_id IN ({marks})"
            " ORDER BY turn_id",
            chunk,
        )
        for fact_id, turn_id in rows:
            found.setdefault(int(fact_id), []).append(int(turn_id))
    return {k: tuple(v) for k, v in found.items()}


def _existing(conn: sqlite3.Connection, turn_ids: list[int]) -> list[int]:
    """Those of ``turn_ids`` still stored: a fact is never tied to a forgotten turn."""
    out: list[int] = []
    for chunk in _chunks(turn_ids, 500):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT id FROM turns WHERE id IN ({marks})", chunk)
        found = {int(r[0]) for r in rows}
        out.extend(t for t in chunk if t in found)
    return out


def _delete_facts(conn: sqlite3.Connection, fact_ids: list[int]) -> int:
    """Delete facts; the ones they had superseded are valid again. How many were deleted."""
    deleted = 0
    for chunk in _chunks(fact_ids, 500):
        marks = ",".join("?" * len(chunk))
        conn.execute(
            "UPDATE facts SET valid_to = NULL, superseded_by = NULL"
            f" WHERE superseded_by IN ({marks}) AND id NOT IN ({marks})",
            chunk + chunk,
        )
        deleted += conn.execute(f"DELETE FROM facts WHERE id IN ({marks})", chunk).rowcount
    return deleted


def _remember_forgotten(conn: sqlite3.Connection, turn_ids: list[int], fact_ids: list[int]) -> None:
    """Keep the receipts of what is being forgotten: ids and hashes, never the words."""
    for chunk in _chunks(turn_ids, 500):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id, conversation_id, at, speaker FROM turns WHERE id IN ({marks})", chunk
        ).fetchall()
        conn.executemany(
            "INSERT OR IGNORE INTO forgotten(kind, id, hash) VALUES ('turn', ?, ?)",
            [(int(r[0]), turn_identity(r[1], r[2], r[3])) for r in rows],
        )
    for chunk in _chunks(fact_ids, 500):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id, kind, key, value, valid_from FROM facts WHERE id IN ({marks})", chunk
        ).fetchall()
        conn.executemany(
            "INSERT OR IGNORE INTO forgotten(kind, id, hash) VALUES ('fact', ?, ?)",
            [(int(r[0]), fact_identity(r[1], r[2], r[3], r[4])) for r in rows],
        )


def _next_source_id(conn: sqlite3.Connection, conversation_id: str) -> str:
    # A conversation first seen here (imported, say) starts after the turns it holds.
    conn.execute(
        "INSERT OR IGNORE INTO conversation_seq(conversation_id, last)"
        " SELECT ?, count(*) FROM turns WHERE conversation_id = ?",
        (conversation_id, conversation_id),
    )
    conn.execute(
        "UPDATE conversation_seq SET last = last + 1 WHERE conversation_id = ?",
        (conversation_id,),
    )
    row = conn.execute(
        "SELECT last FROM conversation_seq WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    return f"{conversation_id[:8]}:{int(row[0])}"


def turn_identity(conversation_id: str, at: str, speaker: str) -> str:
    """What names a turn wherever it is copied (an export, an import), without its words:
    a hash of its conversation, its moment (to the microsecond) and its speaker."""
    return hashlib.sha256(f"turn\0{conversation_id}\0{at}\0{speaker}".encode()).hexdigest()


def fact_identity(kind: str, key: str, value: str, valid_from: str) -> str:
    """Likewise for a fact: a hash, never the value itself."""
    return hashlib.sha256(f"fact\0{kind}\0{key}\0{value}\0{valid_from}".encode()).hexdigest()


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
