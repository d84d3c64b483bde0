"""Hybrid retrieval with the real MiniLM: words, meaning, recency, receipts."""

from __future__ import annotations

import numpy as np

from tests.memory.conftest import Clock
from voice_companion.dialogue.history import Turn
from voice_companion.engines.embedder import DIMENSIONS, Embedder
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.retrieval import fts_query

FILLER = [
    "The bus was late again this morning.",
    "I watched a documentary about octopuses.",
    "Dinner was pasta with too much garlic.",
    "It rained all afternoon so I stayed in.",
    "My phone battery keeps dying.",
    "I tidied the kitchen and listened to a podcast.",
]


def test_embedder_vectors_are_unit_length_and_mean_something(embedder: Embedder) -> None:
    v = embedder.embed(["My sister is getting married.", "My sibling has a wedding.", "Taxes."])
    assert v.shape == (3, DIMENSIONS) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert embedder.embed([]).shape == (0, DIMENSIONS)
    # Batching does not change a vector.
    assert np.allclose(embedder.embed(["Taxes."])[0], v[2], atol=1e-5)


def test_fts_query_is_safe_from_fts_syntax() -> None:
    assert fts_query('what did I say about "NEAR" my sister* AND (wedding)?') == (
        '"near" OR "sister" OR "wedding"'
    )
    assert fts_query("what about you?") == ""


def test_something_said_300_turns_ago_comes_back_by_meaning(
    memory: LongTermMemory, clock: Clock
) -> None:
    memory.record(
        Turn("user", "My grandmother Rosa taught me to bake bread when I was small."), "old"
    )
    clock.advance(days=40)
    for n in range(300):
        memory.record(Turn("user" if n % 2 == 0 else "assistant", FILLER[n % len(FILLER)]), "c2")
    assert memory.wait_idle()
    assert memory.index_pending() == 0  # the background indexer embedded every turn
    # No word in common with the memory but "grandma"-ish meaning: only dense finds it.
    hybrid = memory.search("Who showed me how to make loaves as a kid?", 3)
    bm25 = memory.search("Who showed me how to make loaves as a kid?", 3, "bm25")
    assert "Rosa" in hybrid[0].turn.text
    assert not any("Rosa" in h.turn.text for h in bm25)
    hit = hybrid[0]
    assert hit.turn.speaker == "user" and hit.turn.source_id == "old:1"
    assert hit.turn.id == 1 and hit.dense_rank == 1 and hit.similarity is not None
    recalled = memory.recall("Who showed me how to make loaves as a kid?", 2)
    assert recalled[0].turn_id == 1 and recalled[0].when.date().isoformat() == "2026-05-03"


def test_recency_breaks_ties_between_equally_relevant_memories(
    memory: LongTermMemory, clock: Clock
) -> None:
    memory.record(Turn("user", "I am training for the marathon."), "a")
    clock.advance(days=100)
    memory.record(Turn("user", "I am training for the marathon."), "b")
    memory.index_pending()
    hits = memory.search("marathon training", 2)
    assert [h.turn.conversation_id for h in hits] == ["b", "a"]


def test_unrelated_memories_are_not_quoted(memory: LongTermMemory) -> None:
    memory.record(Turn("user", "My cat Miso sleeps on the radiator."), "a")
    memory.index_pending()
    assert memory.recall("What's the capital of Peru?", 3) == []
    assert memory.recall("Where does my cat like to sleep?", 3)[0].text.startswith("My cat Miso")
