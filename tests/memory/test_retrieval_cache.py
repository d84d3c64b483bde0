"""The vector cache knows it is current from two rows, and still sees every change (real
SQLite on disk, two connections as two processes would have; vectors made up, no model)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from voice_companion.memory.retrieval import VectorIndex, vector_blob
from voice_companion.memory.store import MemoryDb, NewTurn

MODEL = "test-model"
DIMS = 8


def _vector(n: int) -> bytes:
    v = np.zeros(DIMS, dtype=np.float32)
    v[n % DIMS] = 1.0
    return vector_blob(v)


def _turns(db: MemoryDb, count: int) -> list[int]:
    at = datetime(2026, 5, 3, 10, 0).astimezone()
    return [
        db.add_turn(NewTurn("c", at, "user", f"turn {n}", source_id="")).id for n in range(count)
    ]


def test_the_cache_sees_vectors_written_by_another_connection_in_any_order(
    tmp_path: Path,
) -> None:
    writer = MemoryDb(tmp_path / "memory.db")
    reader = MemoryDb(tmp_path / "memory.db")
    try:
        ids = _turns(writer, 6)
        writer.put_embeddings(MODEL, [(ids[0], _vector(0)), (ids[1], _vector(1))])
        index = VectorIndex(reader, MODEL, DIMS)
        index.refresh()
        assert index.ids() == ids[:2]
        writer.put_embeddings(MODEL, [(ids[4], _vector(4))])  # appended: read incrementally
        index.refresh()
        assert index.ids() == [ids[0], ids[1], ids[4]]
        # Below the newest held (a vector made late, after a locked file): noticed too.
        writer.put_embeddings(MODEL, [(ids[2], _vector(2))])
        index.refresh()
        assert index.ids() == [ids[0], ids[1], ids[2], ids[4]]
        # Another model's vectors are not this cache's business.
        writer.put_embeddings("other-model", [(ids[5], _vector(5))])
        index.refresh()
        assert ids[5] not in index.ids()
        # A forgetting elsewhere: the vector goes from this process's memory as well.
        writer.forget([ids[1]], [])
        index.refresh()
        assert index.ids() == [ids[0], ids[2], ids[4]]
        assert [t for t, _ in index.nearest(np.eye(DIMS, dtype=np.float32)[2], 1)] == [ids[2]]
    finally:
        reader.close()
        writer.close()


def test_a_memory_from_before_the_counter_is_read_whole(tmp_path: Path) -> None:
    db = MemoryDb(tmp_path / "memory.db")
    try:
        ids = _turns(db, 3)
        db.put_embeddings(MODEL, [(i, _vector(i)) for i in ids])
        with db.transaction() as conn:  # as written before vectors were counted
            conn.execute("DELETE FROM memory_state WHERE key LIKE 'embeddings_written:%'")
        index = VectorIndex(db, MODEL, DIMS)
        index.refresh()
        assert index.ids() == ids
        db.put_embeddings(MODEL, [(ids[0], _vector(1))])  # replaced: read again
        index.refresh()
        assert index.ids() == ids
    finally:
        db.close()
