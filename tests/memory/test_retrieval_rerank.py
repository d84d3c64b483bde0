"""Re-ranking the fused candidates (real MiniLM, real SQLite): the period a question names,
the answer after its question, whose words they were, and the words a question has."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.memory.conftest import Clock
from voice_companion.dialogue.history import Turn
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.retrieval import RankWeights, content_words
from voice_companion.memory.timewords import Period, period_named

ASKED = datetime(2026, 12, 2, 18, 30).astimezone()  # a Wednesday


@pytest.mark.parametrize(
    ("said", "first", "last"),
    [
        ("what did I do last summer", date(2026, 6, 1), date(2026, 8, 31)),
        ("um what did i do in may", date(2026, 5, 1), date(2026, 5, 31)),
        ("what happened in May 2023?", date(2023, 5, 1), date(2023, 5, 31)),
        ("where did we go in february", date(2026, 2, 1), date(2026, 2, 28)),
        ("what did i tell you last month", date(2026, 11, 1), date(2026, 11, 30)),
        ("what did I say yesterday", date(2026, 12, 1), date(2026, 12, 1)),
        ("like, what did I do last week", date(2026, 11, 23), date(2026, 11, 29)),
        ("who did i see two weeks ago", date(2026, 11, 15), date(2026, 11, 21)),
        ("what did i cook on monday", date(2026, 11, 30), date(2026, 11, 30)),
        ("when did I go skiing last winter", date(2025, 12, 1), date(2026, 2, 28)),
        ("what did i do back in 2024", date(2024, 1, 1), date(2024, 12, 31)),
    ],
)
def test_the_period_a_question_names_is_read_against_its_moment(
    said: str, first: date, last: date
) -> None:
    assert period_named(said, ASKED) == Period(first, last)


@pytest.mark.parametrize(
    "said",
    ["may I ask you something", "what's my dog called", "we march on", "", "the summery dress"],
)
def test_words_that_name_no_period_are_left_alone(said: str) -> None:
    assert period_named(said, ASKED) is None


def test_a_question_about_a_month_finds_the_turn_from_that_month(
    memory: LongTermMemory, clock: Clock
) -> None:
    memory.record(Turn("user", "we had a lovely day at the beach with the kids"), "may")
    clock.advance(days=100)  # August
    memory.record(Turn("user", "we had a lovely day at the beach with the kids"), "august")
    clock.advance(days=60)
    memory.index_pending()
    question = "what did we do at the beach in may"
    assert memory.search(question, 1)[0].turn.conversation_id == "may"
    # Without the period the same words go to the newer turn: the month decided it.
    before = memory.retriever.with_weights(RankWeights.before())
    assert before.search(question, 1)[0].turn.conversation_id == "august"
    assert memory.search("what did we do at the beach in august", 1)[0].turn.conversation_id == (
        "august"
    )


def test_the_answer_after_its_question_is_found_with_it(
    memory: LongTermMemory, clock: Clock
) -> None:
    for n, text in enumerate(
        [
            "The bus was late again this morning.",
            "I watched a documentary about octopuses.",
            "Dinner was pasta with too much garlic.",
            "It rained all afternoon so I stayed in.",
        ]
    ):
        memory.record(Turn("user", text), f"filler-{n}")
    memory.record(Turn("assistant", "Oh, a new puppy! What did you name him?"), "pup")
    answer = memory.record(Turn("user", "Biscuit, because he stole one on the first day"), "pup")
    memory.record(Turn("assistant", "That's adorable."), "pup")
    memory.index_pending()
    question = "what did I name my new puppy"
    ranked = [h.turn.id for h in memory.search(question, 10)]
    before = [h.turn.id for h in memory.retriever.with_weights(RankWeights.before()).search(
        question, 10
    )]  # fmt: skip
    assert ranked.index(answer) <= 1  # beside its question, at the top
    assert ranked.index(answer) < before.index(answer)


def test_what_the_user_said_comes_before_what_the_companion_said_back(
    memory: LongTermMemory,
) -> None:
    memory.record(Turn("user", "The move to Leeds was so stressful."), "a")
    memory.record(Turn("assistant", "Moving to Leeds sounds stressful, the move is hard."), "b")
    memory.index_pending()
    hits = memory.search("what did I say about the move to Leeds", 2)
    assert hits[0].turn.speaker == "user"
    named = memory.search("what did the assistant say about the move to leeds", 2)
    assert named[0].turn.speaker == "assistant"


def test_content_words_meet_across_endings_and_ignore_filler() -> None:
    assert content_words("um, like, I painted the sunrise") == content_words("painting sunrises")


def test_a_fact_finds_the_turn_it_came_from_when_the_words_do_not_match(
    memory: LongTermMemory,
) -> None:
    nurse = memory.record(Turn("user", "I work as a nurse at the hospital"), "a")
    memory.record(Turn("user", "My brother hates his job at the bank, he wants a new job"), "b")
    memory.record(Turn("user", "The bus was late again this morning."), "c")
    memory.index_pending()
    assert any(f.kind == "work" and f.source_turn_ids == (nurse,) for f in memory.db.facts())
    question = "um what's my job again"
    assert memory.search(question, 1)[0].turn.id == nurse
    without = memory.retriever.with_weights(RankWeights(facts=0.0))
    assert without.search(question, 1)[0].turn.id != nurse  # the words lead elsewhere
    # A forgotten fact is no key: the cache of facts is read again.
    memory.forget([], [f.id for f in memory.db.facts() if f.kind == "work"])
    assert memory.search(question, 1)[0].turn.id != nurse
