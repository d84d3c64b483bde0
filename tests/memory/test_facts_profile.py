"""Facts with receipts, superseded not overwritten; a profile that adapts to the person."""

from __future__ import annotations

from datetime import date, datetime

from tests.memory.conftest import Clock
from voice_companion.dialogue.history import Turn
from voice_companion.dialogue.mood import MoodReader
from voice_companion.engines import ChatModel
from voice_companion.memory.facts import LlmExtractor, RuleExtractor, parse_llm_facts
from voice_companion.memory.longterm import LongTermMemory

AT = datetime(2026, 5, 3, 10, 0)  # a Sunday


def kinds(text: str) -> set[tuple[str, str]]:
    return {(c.kind, c.value) for c in RuleExtractor().extract(text, AT)}


def test_rule_extractor_finds_the_durable_things() -> None:
    assert kinds("My name is Sam, but please call me Sammy.") == {
        ("name", "Sam"),
        ("preferred_name", "Sammy"),
    }
    assert kinds("My sister Ana is getting married.") == {("relation", "Ana")}
    assert kinds("I love hiking, but I can't stand crowds.") == {
        ("like", "hiking"),
        ("dislike", "crowds"),
    }
    # FACTS.md: the job and the workplace are two facts (work, workplace).
    assert kinds("I work as a nurse at St Mary's.") == {("work", "a nurse"), ("work", "St Mary's")}
    assert kinds("I live in Leeds.") == {("location", "Leeds")}
    assert kinds("I've had awful cramps since Friday.") == {("health", "cramps")}
    event = RuleExtractor().extract("My sister's wedding is on 12 June.", AT)
    assert [(c.kind, c.value, c.event_date) for c in event] == [
        ("event", "sister's wedding", date(2026, 6, 12))
    ]
    plan = RuleExtractor().extract("I'm going to visit my mum next Friday.", AT)
    assert [(c.kind, c.event_date) for c in plan] == [("plan", date(2026, 5, 8))]
    assert kinds("Shorter answers please.") == {("preference", "short")}
    for nothing in ("I would like a coffee.", "I like that.", "Call me back later.", "Hi!"):
        assert kinds(nothing) == set(), nothing


def test_a_contradiction_supersedes_and_keeps_the_old_fact(
    memory: LongTermMemory, clock: Clock
) -> None:
    memory.record(Turn("user", "I live in Leeds and I love coffee."), "c1")
    clock.advance(days=30)
    memory.record(Turn("user", "I moved to Berlin!"), "c2")
    memory.record(Turn("user", "Honestly, I hate coffee now."), "c2")
    memory.record(Turn("user", "I live in Berlin now, and it is great."), "c2")
    facts = memory.db.facts(valid_only=False)
    home = [f for f in facts if f.key == "home"]
    assert [(f.value, f.valid) for f in home] == [("Leeds", False), ("Berlin", True)]
    old, new = home
    assert old.superseded_by == new.id and old.valid_to == new.valid_from
    assert new.source_turn_ids == (2, 4)  # said twice: one fact, two receipts
    coffee = [f for f in facts if f.key == "taste:coffee"]
    assert [(f.kind, f.valid) for f in coffee] == [("like", False), ("dislike", True)]
    # Forgetting the newer fact brings the older one back.
    memory.forget([], [new.id])
    assert [f.value for f in memory.db.facts() if f.key == "home"] == ["Leeds"]


def test_profile_adapts_and_feeds_notes(memory: LongTermMemory, clock: Clock) -> None:
    reader = MoodReader()  # the dialogue reads each user turn's mood; so does this test

    def say(text: str) -> None:
        memory.record(Turn("user", text, mood=reader.read(text)), "c1")

    for text in ("hey lol", "yeah cool", "haha nope", "gonna sleep", "omg haha"):
        say(text)  # Sunday 3 May: cheerful
    clock.advance(days=1)
    say("Call me Jo. I feel so sad and lonely today.")  # Monday: low
    notes = memory.notes()
    assert notes[0] == "You like to be called “Jo”."
    joined = " ".join(notes)
    assert "short replies" in joined and "casual" in joined and "playful" in joined
    # Only past days: the notes sit ahead of the history and must not change within a day.
    assert "Lately you seemed happy on Sunday." in joined
    assert memory.summary(3) == ["you like to be called Jo", "you seemed sad today"]
    clock.advance(days=1)
    assert "Lately you seemed happy on Sunday and sad on Monday." in " ".join(memory.notes())
    assert memory.summary(3)[-1] == "you seemed sad yesterday"


def test_llm_facts_are_kept_only_when_grounded_in_the_words() -> None:
    reply = "relation | sister | Ana\nlike | tea | green tea\nwork | work | astronaut\nnonsense"
    found = parse_llm_facts(reply, "My sister Ana only drinks green tea.", AT)
    assert [(c.kind, c.key, c.value) for c in found] == [
        ("relation", "relation:sister", "Ana"),
        ("like", "taste:green tea", "green tea"),
    ]


def test_llm_extractor_on_the_real_model(llama_model: ChatModel) -> None:
    text = "My brother Tomas loves sailing and I work at the library."
    found = LlmExtractor(llama_model).extract(text, AT)
    # A 135M model may find little; whatever it finds must come from the user's words.
    for c in found:
        assert c.value.lower() in text.lower()
