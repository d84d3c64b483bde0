"""A full memory.db: the turn is queued (journalled), ``saving`` says memory is not being
saved, and everything lands, in order, once there is room again.

"Full" is SQLite's own SQLITE_FULL from ``PRAGMA max_page_count`` on the store's connection:
the engine path a full disk takes, made deterministic. tests/faults/test_full_disk.py does
the same with a real full filesystem.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from voice_companion.memory.store import MemoryDb, NewTurn

WAIT_S = 30.0


def _at() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


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
