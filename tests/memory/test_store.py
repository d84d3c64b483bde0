"""memory.db: durable, migrated, shared between processes, and forgetting for real."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from voice_companion.dialogue.history import Turn
from voice_companion.errors import MemoryBusyError, MemoryNotFoundError, MemoryStoreError
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.store import SCHEMA_VERSION, MemoryDb, NewTurn

AT = datetime(2026, 5, 3, 10, 0).astimezone()


def test_pragmas_and_schema(tmp_path: Path) -> None:
    with MemoryDb(tmp_path / "memory.db") as db:
        conn = sqlite3.connect(tmp_path / "memory.db")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        with db.reading() as c:
            assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert c.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert db.schema_version == SCHEMA_VERSION
    # Opening again migrates nothing and keeps the data.
    with MemoryDb(tmp_path / "memory.db") as db:
        assert db.schema_version == SCHEMA_VERSION


def test_a_newer_schema_or_a_foreign_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    MemoryDb(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(MemoryStoreError, match="newer than this voice-companion"):
        MemoryDb(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(MemoryStoreError, match="not a usable memory database") as caught:
        MemoryDb(junk)
    assert "\n" not in str(caught.value)


def test_a_committed_turn_survives_the_process_being_killed(tmp_path: Path) -> None:
    """The writer is killed (SIGKILL, no clean-up) right after record() returns."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from voice_companion.config import MemoryConfig
        from voice_companion.dialogue.history import Turn
        from voice_companion.memory.longterm import LongTermMemory
        m = LongTermMemory.open(Path({str(tmp_path)!r}), MemoryConfig(dense=False))
        m.record(Turn("user", "My sister Ana lives in Porto.", duration_s=2.5), "c1")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == -9
    with MemoryDb(tmp_path / "memory.db") as db:
        turns = db.turns()
        assert [(t.text, t.duration_s) for t in turns] == [("My sister Ana lives in Porto.", 2.5)]
        assert [f.value for f in db.facts()] == ["Ana"]


def test_another_process_reads_while_one_writes(tmp_path: Path) -> None:
    writer = MemoryDb(tmp_path / "memory.db")
    writer.add_turn(NewTurn("c1", AT, "user", "first words", "c1:1"))
    with writer.transaction() as conn:  # a write transaction held open
        conn.execute(
            "INSERT INTO turns(conversation_id, at, ts, speaker, text, source_id)"
            " VALUES ('c1', ?, 0, 'user', 'uncommitted', 'c1:2')",
            (AT.isoformat(),),
        )
        reader = MemoryDb(tmp_path / "memory.db", busy_timeout_ms=200)
        assert [t.text for t in reader.turns()] == ["first words"]
        # Past the busy timeout a turn is queued, not lost (tests/faults/test_locked.py).
        assert reader.add_turn(NewTurn("c1", AT, "user", "blocked", "c1:3")).id < 0
        with pytest.raises(MemoryBusyError, match="locked by another process"):
            reader.forget([1])
    reader.add_turn(NewTurn("c1", AT, "user", "after the lock", "c1:4"))
    reader.close()  # waits for the queue
    assert [t.text for t in writer.turns()] == [
        "first words", "uncommitted", "blocked", "after the lock"
    ]  # fmt: skip
    writer.close()


def test_unknown_ids(tmp_path: Path) -> None:
    with MemoryDb(tmp_path / "memory.db") as db:
        with pytest.raises(MemoryNotFoundError, match="id 42"):
            db.turn(42)
        with pytest.raises(MemoryNotFoundError, match="f7"):
            db.fact(7)


def test_forgotten_text_is_gone_from_the_files(tmp_path: Path, memory: LongTermMemory) -> None:
    secret = "zanzibarquokka"
    for n in range(30):
        memory.record(Turn("user", f"ordinary remark number {n} about the weather"), "c1")
    memory.record(Turn("user", f"My secret word is {secret}, and my sister Ana knows it."), "c1")
    memory.record(Turn("assistant", f"I'll keep {secret} safe."), "c1")
    memory.wait_idle()
    # A second connection (the daemon, say) stays open the whole time.
    other = MemoryDb(memory.db.path)
    assert other.matching_turn_ids(secret)
    files = [memory.db.path, memory.db.path.with_name("memory.db-wal")]
    before = b"".join(f.read_bytes() for f in files if f.exists())
    assert secret.encode() in before  # the test can fail: the secret really was on disk

    found = memory.topic_matches(secret)
    # The reply goes whole; the user's turn also said something else: it is rewritten, and
    # the sister fact keeps it as its receipt.
    assert len(found.turn_ids) == 1 and len(found.redactions) == 1 and not found.fact_ids
    assert memory.forget_topic(found) == 2

    for f in files:
        if f.exists():
            raw = f.read_bytes()
            assert secret.encode() not in raw, f"{f.name} still holds the forgotten text"
            assert b"secret word" not in raw
    assert memory.db.path.with_name("memory.db-wal").stat().st_size == 0
    assert memory.db.search_text(f'"{secret}"', 5) == []
    assert all(secret not in h.turn.text for h in memory.search(secret, 50, "hybrid"))
    (sister,) = memory.db.facts()
    assert sister.value == "Ana" and memory.db.turn(sister.source_turn_ids[0]).text == (
        "My sister Ana knows it."
    )
    assert other.count_turns() == 31
    other.close()
