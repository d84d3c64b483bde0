"""Receipts that hold: ids and source ids are never given out twice, an old memory.db is
migrated with every id and row kept, and no fact is left without the turn it came from."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from voice_companion.config import MemoryConfig
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.history import Turn
from voice_companion.errors import MemoryNotFoundError
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.store import MIGRATIONS, MemoryDb
from voice_companion.persona.values import Persona


def memory_at(path: Path) -> LongTermMemory:
    return LongTermMemory(MemoryDb(path / "memory.db"), MemoryConfig(dense=False))


def test_a_forgotten_turn_id_and_source_id_are_never_given_again(tmp_path: Path) -> None:
    memory = memory_at(tmp_path)
    ids = [memory.record(Turn("user", f"remark {n}"), "conversation-a") for n in range(3)]
    last = memory.db.turn(ids[-1] or 0)
    assert last.source_id == "conversa:3"
    memory.forget([last.id], [])
    new_id = memory.record(Turn("user", "a new remark"), "conversation-a")
    new = memory.db.turn(new_id or 0)
    assert new.id > last.id, "the forgotten turn's id was given to another turn"
    assert new.source_id == "conversa:4", "the forgotten turn's source id was given again"
    memory.close()
    # ... nor after a restart, when the forgotten turn was the newest one in the file.
    memory = memory_at(tmp_path)
    memory.forget([new.id], [])
    again = memory.db.turn(memory.record(Turn("user", "after a restart"), "conversation-a") or 0)
    assert again.id > new.id and again.source_id == "conversa:5"
    memory.close()


def test_fact_ids_are_never_given_again(tmp_path: Path) -> None:
    with MemoryDb(tmp_path / "memory.db") as db:
        at = datetime(2026, 5, 3, 10).astimezone()
        first = db.add_fact("like", "taste:tea", "tea", at, [], "rules")
        db.forget([], [first])
        second = db.add_fact("like", "taste:coffee", "coffee", at, [], "rules")
        assert second > first


def old_schema_file(path: Path) -> None:
    """A memory.db as version 2 of the schema left it (ids with no AUTOINCREMENT)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for version in MIGRATIONS[:2]:
        for statement in version:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO conversations VALUES ('old-conv', '2026-01-02T10:00:00+00:00', 'live')"
    )
    rows = [
        (3, "2026-01-02T10:00:01+00:00", "user", "My sister Ana lives in Porto.", "old-conv:1"),
        (7, "2026-01-02T10:00:02+00:00", "assistant", "Porto is lovely.", "old-conv:2"),
        (9, "2026-01-02T10:00:03+00:00", "user", "I really love jazz.", "old-conv:5"),
    ]
    for turn_id, at, speaker, text, source in rows:
        conn.execute(
            "INSERT INTO turns(id, conversation_id, at, ts, speaker, text, source_id, mood_label)"
            " VALUES (?, 'old-conv', ?, 0, ?, ?, ?, 'calm')",
            (turn_id, at, speaker, text, source),
        )
    conn.execute("INSERT INTO embeddings VALUES (3, 'm', x'0102')")
    conn.execute(
        "INSERT INTO facts VALUES (4, 'relation', 'relation:sister', 'Ana',"
        " '2026-01-02T10:00:01+00:00', NULL, NULL, NULL, 'rules')"
    )
    conn.execute("INSERT INTO fact_sources VALUES (4, 3)")
    # Fact 6 was left by the old code when a speculative turn was retracted: no receipt. It
    # had superseded fact 5, which is valid again once fact 6 goes.
    conn.execute(
        "INSERT INTO facts VALUES (5, 'like', 'taste:tea', 'tea',"
        " '2026-01-01T10:00:00+00:00', '2026-01-02T10:00:00+00:00', NULL, 6, 'rules')"
    )
    conn.execute("INSERT INTO fact_sources VALUES (5, 9)")
    conn.execute(
        "INSERT INTO facts VALUES (6, 'dislike', 'taste:tea', 'tea',"
        " '2026-01-02T10:00:00+00:00', NULL, NULL, NULL, 'rules')"
    )
    conn.close()


def test_an_old_database_file_is_migrated_with_every_id_and_row_kept(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    old_schema_file(path)
    with MemoryDb(path) as db:
        assert db.schema_version == len(MIGRATIONS)
        assert [(t.id, t.text, t.source_id) for t in db.turns()] == [
            (3, "My sister Ana lives in Porto.", "old-conv:1"),
            (7, "Porto is lovely.", "old-conv:2"),
            (9, "I really love jazz.", "old-conv:5"),
        ]
        assert db.turn(3).mood is not None
        assert db.embeddings_since("m", 0) == [(3, b"\x01\x02")]
        assert [(f.id, f.source_turn_ids) for f in db.facts()] == [(4, (3,)), (5, (9,))]
        assert 6 not in [f.id for f in db.facts(valid_only=False)]  # it had no receipt
        assert db.search_text('"porto"', 5)[0][0] in (3, 7)  # the word index still works
        # The newest turn is forgotten; the next one gets neither its id nor its number.
        db.forget([9])
        new = db.add_turn(
            _new_turn("old-conv", "Something new.", datetime(2026, 1, 3).astimezone())
        )
        assert new.id == 10 and new.source_id == "old-conv:6"
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    schema = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'turns'").fetchone()[0]
    assert "AUTOINCREMENT" in schema
    raw.close()


def _new_turn(conversation: str, text: str, at: datetime):  # type: ignore[no-untyped-def]
    from voice_companion.memory.store import NewTurn

    return NewTurn(conversation_id=conversation, at=at, speaker="user", text=text, source_id="")


def dialogue(memory: LongTermMemory) -> Dialogue:
    return Dialogue(Persona(name="Robin"), memory, 8, 2000, "conv-spec")


def test_a_retracted_turn_takes_the_facts_only_it_gave(tmp_path: Path) -> None:
    memory = memory_at(tmp_path)
    d = dialogue(memory)
    d.record_user("My sister is called Ana.")
    d.record_reply("Lovely name.", False)
    d.record_user("I really love jazz")  # the user goes on speaking: this turn is dropped
    assert [f.key for f in memory.db.facts()] == ["relation:sister", "taste:jazz"]
    d.retract_user()
    facts = memory.db.facts(valid_only=False)
    assert [f.key for f in facts] == ["relation:sister"], "a fact of the dropped turn stayed"
    assert all(f.source_turn_ids for f in facts), "a fact is left without a receipt"
    memory.close()


def test_a_retracted_turn_leaves_the_other_receipts_of_a_fact(tmp_path: Path) -> None:
    memory = memory_at(tmp_path)
    d = dialogue(memory)
    d.record_user("I really love jazz.")
    d.record_reply("Me too.", False)
    first = memory.db.facts()[0]
    d.record_user("I really love jazz, you know")
    assert len(memory.db.facts()[0].source_turn_ids) == 2
    d.retract_user()
    (fact,) = memory.db.facts()
    assert fact.id == first.id and fact.source_turn_ids == first.source_turn_ids
    memory.close()


def test_forgetting_a_turn_keeps_a_fact_another_turn_also_gave(tmp_path: Path) -> None:
    memory = memory_at(tmp_path)
    one = memory.record(Turn("user", "My name is Alex."), "c") or 0
    two = memory.record(Turn("user", "Again: my name is Alex."), "c") or 0
    memory.record(Turn("user", "I really love jazz."), "c")
    assert memory.forget([one], []) == 1
    names = memory.db.facts(key="name")
    assert [f.source_turn_ids for f in names] == [(two,)]
    memory.close()


def test_a_fact_learnt_late_from_a_forgotten_turn_is_not_kept(tmp_path: Path) -> None:
    # The LLM extractor runs after the turn; the user may have had it forgotten meanwhile.
    with MemoryDb(tmp_path / "memory.db") as db:
        at = datetime(2026, 5, 3, 10).astimezone()
        turn = db.add_turn(_new_turn("c", "My boss is called Zed.", at))
        db.forget([turn.id])
        assert db.add_fact("relation", "relation:boss", "Zed", at, [turn.id], "llm") == 0
        assert db.facts(valid_only=False) == []
        with pytest.raises(MemoryNotFoundError, match=f"turn {turn.id} was forgotten"):
            db.turn(turn.id)


SCHEMA_2_FILE = Path(__file__).resolve().parents[1] / "data" / "memory-schema2.db"
"""A memory.db written by the code before schema 3 (the commit before this test): six turns
said, the PIN exchange (turns 3 and 4) forgotten, then one more turn, which got the source id
``0f3c9a2e:5`` a second time; three facts; one cached vector."""


def test_a_file_written_by_the_old_code_is_migrated_and_ids_hold_from_then_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.db"
    path.write_bytes(SCHEMA_2_FILE.read_bytes())
    with MemoryDb(path) as db:
        assert db.schema_version == len(MIGRATIONS)
        assert [(t.id, t.source_id) for t in db.turns()] == [
            (1, "0f3c9a2e:1"), (2, "0f3c9a2e:2"), (5, "0f3c9a2e:5"), (6, "0f3c9a2e:6"),
            (7, "0f3c9a2e:5"),
        ]  # fmt: skip
        assert [(f.key, f.source_turn_ids) for f in db.facts()] == [
            ("relation:sister", (1,)), ("taste:jazz", (5,)), ("relation:dog", (7,)),
        ]  # fmt: skip
        assert [i for i, _ in db.embeddings_since("test-model", 0)] == [1]
        assert db.matching_turn_ids("Biscuit") == [7]
        db.forget([7])
        at = datetime(2026, 3, 2, 9).astimezone()
        new = db.add_turn(_new_turn("0f3c9a2e5b7d4c1a", "Back again.", at))
        assert new.id == 8, "the forgotten turn's id was given again"
        assert new.source_id not in {t.source_id for t in db.turns() if t.id != new.id}
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    raw.close()
