"""Memory about the user, not about the model: only their own words are recalled and learnt
from, what is coming up is brought up unasked, and their name is used now and then."""

from __future__ import annotations

from datetime import timedelta

from tests.memory.conftest import Clock
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.prompt import NOTES_HEADER
from voice_companion.dialogue.unasked import NAME_EVERY_TURNS, upcoming
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.store import Fact
from voice_companion.persona.values import Persona

PERSONA = Persona(name="Robin", personality="warm")
INVENTED = "Your dog Rex is a black poodle with a limp, and your sister Pia lives in Oslo."


def dialogue(memory: LongTermMemory, conversation: str) -> Dialogue:
    return Dialogue(
        PERSONA, memory, history_turns=8, budget_tokens=1500, conversation_id=conversation
    )


def test_the_companions_own_replies_are_kept_but_never_recalled_or_learnt_from(
    memory: LongTermMemory, clock: Clock
) -> None:
    old = dialogue(memory, "old")
    old.record_exchange("I have a dog called Biscuit.", "Lovely! What is Biscuit like?", False)
    old.record_exchange("what does my dog look like", INVENTED, False)
    memory.index_pending()
    # Kept on disk, for "what did you tell me":
    assert any(t.text == INVENTED and t.speaker == "assistant" for t in memory.db.turns())
    # never learnt from (the invented dog, sister and city are no facts), not even on a re-run:
    memory.learn_facts_again()
    learnt = " ".join(f"{f.key} {f.value}" for f in memory.db.facts(valid_only=False))
    for invented in ("Rex", "poodle", "Pia", "Oslo", "sister"):
        assert invented not in learnt
    # and never recalled as a memory about the user, by words or by meaning.
    for query in ("Rex the black poodle with a limp", "my sister Pia in Oslo", "my dog"):
        recalled = memory.recall(query, 5)
        assert all(r.speaker == "user" for r in recalled), query
        assert INVENTED not in [r.text for r in recalled]
    clock.advance(days=2)
    new = dialogue(memory, "new")
    question = "tell me about my dog Rex the poodle"
    turn = new.prepare_user(question)
    prompt = "\n".join(m.content for m in new.messages_for(question, turn)[:-1])
    assert "Biscuit" in prompt  # what the user said is there
    assert "poodle" not in prompt and "Oslo" not in prompt


def _fact(kind: str, key: str, value: str, days: int | None, clock: Clock) -> Fact:
    day = (clock.now + timedelta(days=days)).date() if days is not None else None
    return Fact(0, kind, key, value, clock.now, None, day, None, "rules", ())


def test_what_is_coming_up_is_mentioned_when_the_words_relate_to_it(clock: Clock) -> None:
    now = clock.now
    facts = [
        _fact("event", "event:exam", "maths exam", 1, clock),
        _fact("birthday", "birthday:mother", "4 May", 1, clock),
        _fact("plan", "plan:dentist", "dentist appointment", 12, clock),  # too far ahead
        _fact("event", "event:party", "office party", -1, clock),  # over
    ]
    exam = "(Tomorrow: your “maths exam”.)"
    mum = "(Tomorrow: your mother's birthday.)"
    # A feeling or a time ahead brings up what is soon; the words naming one bring that one.
    assert upcoming(facts, now, "i'm so nervous") == [mum, exam]
    assert upcoming(facts, now, "Ugh, I'm kinda worried") == [mum, exam]
    assert upcoming(facts, now, "what should i do tomorrow") == [mum, exam]
    assert upcoming(facts, now, "um so the exams you know") == [exam]
    assert upcoming(facts, now, "My mum's getting older") == [mum]
    assert upcoming(facts, now, "what a lovely sunny day", feeling=True) == [mum, exam]
    # Unrelated words, or nothing soon: nothing.
    assert upcoming(facts, now, "what's the capital of France") == []
    assert upcoming(facts, now, "how are you today") == []
    assert upcoming(facts, now, "I'm at the dentist thinking about the party") == []
    assert upcoming(facts[2:], now, "i'm so nervous") == []
    today = upcoming(facts, now + timedelta(days=1), "so nervous")
    assert "(Today: your “maths exam”.)" in today
    friday = upcoming([_fact("plan", "plan:trip", "Sam's visit", 3, clock)], now, "excited!")
    assert friday == ["(On Wednesday: “Sam's visit”.)"]  # 3 May 2026 is a Sunday


def test_the_turn_before_the_exam_brings_it_up_and_the_name_now_and_then(
    memory: LongTermMemory, clock: Clock
) -> None:
    old = dialogue(memory, "old")
    old.record_exchange("Call me Maggie.", "Sure, Maggie!", False)
    old.record_exchange("My driving test is on Tuesday.", "Good luck!", False)
    told = [t for t in memory.db.turns() if t.speaker == "user"][-1]
    tuesday = (clock.now + timedelta(days=2)).date()
    memory.db.add_fact("event", "event:driving test", "driving test", told.at, [told.id],
                       "rules", event_date=tuesday)  # fmt: skip
    clock.advance(days=1)  # Monday
    new = dialogue(memory, "new")
    contexts: list[str] = []
    notes: list[str] = []
    for text in ["hi", "i'm so nervous", "what's for dinner", "ok", "cool", "hmm", "bye", "so"]:
        turn = new.prepare_user(text)
        messages = new.messages_for(text, turn)
        new.commit_user()
        new.record_reply("Okay.", interrupted=False)
        notes.append(messages[1].content)
        contexts.append(messages[-2].content if len(messages) > 3 else "")
    assert notes[0].startswith(NOTES_HEADER) and "“Maggie”" in notes[0]
    assert len(set(notes)) == 1  # the cached prefix does not change
    assert "(Tomorrow: your “driving test”.)" in contexts[1]
    assert not any("driving test" in c for c in contexts[2:5])
    named = [i for i, c in enumerate(contexts) if "“Maggie”" in c]
    assert len(named) == len(contexts) // NAME_EVERY_TURNS and named[0] == 1
