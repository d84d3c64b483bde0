"""memory.db locked by another process for longer than the busy timeout: the user is answered,
the writes are queued in order and land once the lock is released; nothing is lost.

The lock is held by a real second process (``BEGIN EXCLUSIVE``, held until the test says so)
against a real ``voice-companion chat --json`` process. The language model is the scripted
OpenAI-compatible server of the crash benchmark (a real HTTP server; the store is under test).
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.harness import WAIT_S, HeldLock, Lines, chat_process, say, stored_turns
from voice_companion.memory.store import MemoryDb, NewTurn


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Lines, Path]]:
    data = tmp_path / "data"
    with chat_process(tmp_path, data, "busy_timeout_ms = 200\n") as (proc, lines):
        yield proc, lines, data / "memory.db"


def test_a_turn_during_a_long_lock_is_answered_and_written_after(
    chat: tuple[subprocess.Popen[str], Lines, Path],
) -> None:
    proc, lines, db = chat
    assert "(run 0 turn 0)" in say(proc, lines, "Hello there (run 0 turn 0)")
    with HeldLock(db) as locker:
        # Held until the test releases it: far past the 200 ms busy timeout.
        first = say(proc, lines, "My sister Ana lives in Porto (run 1 turn 1)")
        second = say(proc, lines, "I love coffee in the morning (run 1 turn 2)")
        assert "(run 1 turn 1)" in first and "(run 1 turn 2)" in second  # answered, locked
        assert len(stored_turns(db)) == 2  # the test can fail: nothing could be written yet
        assert locker.held
        locker.release()
    # The chat is still running: its writer thread lands the queue on its own, in order.
    deadline = time.monotonic() + WAIT_S
    while len(stored_turns(db)) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_turns(db)[2:] == [
        ("user", "My sister Ana lives in Porto (run 1 turn 1)"),
        ("assistant", first),
        ("user", "I love coffee in the morning (run 1 turn 2)"),
        ("assistant", second),
    ]
    conn = sqlite3.connect(db)
    try:
        # What was learnt from the queued turn points at the row it finally got.
        learnt = conn.execute(
            "SELECT f.value, t.text FROM facts f JOIN fact_sources s ON s.fact_id = f.id"
            " JOIN turns t ON t.id = s.turn_id WHERE f.key = 'relation:sister'"
        ).fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert learnt == [("Ana", "My sister Ana lives in Porto (run 1 turn 1)")]
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(WAIT_S) == 0


def test_queued_turns_land_on_exit_when_the_lock_ends_first(
    chat: tuple[subprocess.Popen[str], Lines, Path],
) -> None:
    """Input ends while the writes are still queued: the process waits for them, then exits."""
    proc, lines, db = chat
    say(proc, lines, "Hello there (run 0 turn 0)")
    with HeldLock(db) as locker:
        reply = say(proc, lines, "The train was late again (run 2 turn 1)")
        assert proc.stdin is not None
        proc.stdin.close()  # the chat's input is over, its queue is not
        time.sleep(0.5)
        assert proc.poll() is None  # the test can fail: still waiting to write
        locker.release()
    assert proc.wait(WAIT_S) == 0
    assert stored_turns(db)[-2:] == [
        ("user", "The train was late again (run 2 turn 1)"),
        ("assistant", reply),
    ]


def _journals(data: Path) -> list[Path]:
    return sorted(data.glob("memory.journal-*"))


def test_kill_9_while_writes_are_queued_loses_nothing(
    chat: tuple[subprocess.Popen[str], Lines, Path],
) -> None:
    """Three replies printed while another process holds the file, then kill -9: each turn is
    in the journal (synced before its reply was printed), and the next open writes them in."""
    proc, lines, db = chat
    first = say(proc, lines, "Hello there (run 0 turn 0)")
    said = [
        "My sister Ana lives in Porto (run 3 turn 1)",
        "The train was late again (run 3 turn 2)",
        "I love coffee in the morning (run 3 turn 3)",
    ]
    with HeldLock(db) as locker:
        replies = [say(proc, lines, text) for text in said]
        proc.kill()
        proc.wait(WAIT_S)
        assert len(_journals(db.parent)) == 1
        assert stored_turns(db) == [("user", "Hello there (run 0 turn 0)"), ("assistant", first)]
        locker.release()
    with MemoryDb(db) as reopened:  # as the next start would
        assert reopened.queued_writes == 0
        learnt = [(f.key, f.value) for f in reopened.facts()]
    expected = [("user", "Hello there (run 0 turn 0)"), ("assistant", first)]
    for text, reply in zip(said, replies, strict=True):
        expected += [("user", text), ("assistant", reply)]
    assert stored_turns(db) == expected
    assert ("relation:sister", "Ana") in learnt  # what was learnt, with its receipt, too
    assert _journals(db.parent) == []
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Written once: the journal's rows are gone with it.
        assert conn.execute("SELECT count(*) FROM journal_applied").fetchone()[0] == 0
    finally:
        conn.close()


def test_exit_while_the_lock_is_held_keeps_the_turns_for_the_next_start(
    chat: tuple[subprocess.Popen[str], Lines, Path],
) -> None:
    """The chat's input ends and the lock outlasts its wait: it says so, exits 0, and the
    turns are written at the next open, not dropped."""
    proc, lines, db = chat
    say(proc, lines, "Hello there (run 0 turn 0)")
    with HeldLock(db) as locker:
        reply = say(proc, lines, "The train was late again (run 4 turn 1)")
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.close()
        assert proc.wait(WAIT_S) == 0
        stderr = proc.stderr.read()
        assert "waiting for" in stderr and "held by another program" in stderr
        assert "will be written the next time the companion starts" in stderr
        assert "lost" not in stderr
        assert len(_journals(db.parent)) == 1
        locker.release()
    with MemoryDb(db):
        pass
    assert stored_turns(db)[-2:] == [
        ("user", "The train was late again (run 4 turn 1)"),
        ("assistant", reply),
    ]
    assert _journals(db.parent) == []


def test_forgetting_a_queued_turn_means_it_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryDb(path) as setup:
        setup.ensure_conversation("c1", _at())
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    db = MemoryDb(path, busy_timeout_ms=100)
    try:
        secret = db.add_turn(NewTurn("c1", _at(), "user", "my secret is zanzibar", "c1:1"))
        kept = db.add_turn(NewTurn("c1", _at(), "user", "the weather is fine", "c1:2"))
        assert secret.id < 0 and kept.id < 0 and db.queued_writes == 2
        db.forget([secret.id])
        assert db.queued_writes == 1
        locker.execute("COMMIT")
    finally:
        db.close()  # waits for the queue to land
        locker.close()
    with MemoryDb(path) as after:
        assert [t.text for t in after.turns()] == ["the weather is fine"]


def _at() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)
