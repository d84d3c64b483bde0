"""A full memory.db: the turn is queued (journalled), ``saving`` says memory is not being
saved, and everything lands, in order, once there is room again.

"Full" is SQLite's own SQLITE_FULL from ``PRAGMA max_page_count`` on the store's connection:
the engine path a full disk takes, made deterministic. tests/faults/test_full_disk.py does
the same with a real full filesystem.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from voice_companion.memory.store import MemoryDb, NewTurn

WAIT_S = 30.0


def _at() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


def _fill(db: MemoryDb) -> int:
    """Fill memory.db to its last byte under a page limit: every later write finds it full.
    The page count, to lift the limit by."""
    with db._lock:
        conn = db._conn
        conn.execute("INSERT INTO conversations(id, started_at) VALUES ('filler', '2026-01-01')")
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count = {pages}")
        for size in (2000, 500, 100, 20, 1):
            while True:
                try:
                    conn.execute(
                        "INSERT INTO turns(conversation_id, at, ts, speaker, text, source_id)"
                        " VALUES ('filler', '2026-01-01', 0, 'user', ?, 'f')",
                        ("x" * size,),
                    )
                except sqlite3.OperationalError as exc:
                    assert "full" in str(exc)
                    break
    return pages


def test_a_full_database_keeps_the_words_and_says_memory_is_not_saved(tmp_path: Path) -> None:
    db = MemoryDb(tmp_path / "memory.db")
    try:
        db.ensure_conversation("c1", _at())
        pages = int(db._conn.execute("PRAGMA page_count").fetchone()[0])
        db._conn.execute(f"PRAGMA max_page_count = {pages}")
        said = []
        for n in range(200):  # until the file has no room left
            said.append(f"turn {n}: " + "words " * 40)
            if db.add_turn(NewTurn("c1", _at(), "user", said[-1], f"c1:{n}")).id < 0:
                break
        else:
            raise AssertionError("the page limit never filled the file")
        full_at = len(said) - 1
        later = db.add_turn(NewTurn("c1", _at(), "user", "and one more", "c1:x"))
        said.append("and one more")
        assert later.id < 0  # behind the first queued one: order is kept
        assert db.saving.as_dict() == {
            "saved": False,
            "queued": 2,
            "journalled": 2,  # the journal is on a disk with room
            "problem": "the disk is full",
        }
        assert db.count_turns("c1") == len(said)
        with db._lock:  # room again
            db._conn.execute(f"PRAGMA max_page_count = {pages * 100}")
        deadline = time.monotonic() + WAIT_S
        while db.queued_writes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.saving.saved
        assert [t.text for t in db.turns()] == said
        assert full_at > 0
    finally:
        db.close()
    assert list(tmp_path.glob("memory.journal-*")) == []


def test_a_spoken_turn_on_a_full_disk_is_answered_and_status_says_so(
    engines,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """The real session, STT, LLM and TTS; memory.db full from the first word."""
    import asyncio

    from tests.audio.test_prosody import piper_says
    from tests.conftest import shipped_config
    from voice_companion import app
    from voice_companion.audio.sinks import MemorySink
    from voice_companion.events import InputEnded, UtteranceEnded
    from voice_companion.memory.longterm import LongTermMemory
    from voice_companion.session import Session
    from voice_companion.trace import Tracer, TraceRecorder

    config = shipped_config(tmp_path)
    dialogue = app.build_dialogue(config)
    memory = dialogue.memory
    assert isinstance(memory, LongTermMemory)
    conn = memory.db._conn
    pages = _fill(memory.db)
    sink, tracer = MemorySink(), Tracer(recorder=TraceRecorder())
    session = Session(config, engines, dialogue, sink, tracer)
    speech = piper_says("My name is Sam.", 1.0)

    async def go() -> None:
        async def events():  # type: ignore[no-untyped-def]
            yield UtteranceEnded(speech, 0.0, speech.duration_s, speech.duration_s + 0.6)
            yield InputEnded(speech.duration_s + 1.0)

        await session.run(events())

    try:
        asyncio.run(asyncio.wait_for(go(), 120))
        [reply] = [e for e in tracer.events if e["event"] == "reply"]
        assert reply["text"] and sink.chunks  # answered, aloud
        status = session.memory_saving()
        assert status is not None
        assert status["saved"] is False and status["problem"] == "the disk is full"
        assert status["queued"] >= 2  # the user's words and the reply, at least
        with memory.db._lock:
            conn.execute(f"PRAGMA max_page_count = {pages * 100}")
        deadline = time.monotonic() + WAIT_S
        while memory.db.queued_writes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session.memory_saving() == {
            "saved": True,
            "queued": 0,
            "journalled": 0,
            "problem": None,
        }
        said = [t.text for t in memory.db.turns() if t.conversation_id != "filler"]
        assert len(said) == 2 and "sam" in said[0].lower() and said[1] == reply["text"]
    finally:
        session.close()
