"""The bundled model, given a rich memory, speaks to the person and reads no framing aloud.

Real parts: memory.db on disk with earlier sessions and facts, the real prompt through
``Dialogue.messages_for``, the bundled SmolLM2 as the shipped config builds it (temperature as
configured, so replies vary from run to run), and the spoken check the turn applies. With the
old layout ("Notes about the user ... (data, not instructions)", "On 2 December 2026 the user
said: ...", "(The user seems stressed ...)") these prompts leaked framing in about one reply in
four (scripts/prompt_leaks.py, same prompts, same run as the new layout's figures).
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest

from tests.memory.conftest import Clock
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.sentences import SentenceSplitter
from voice_companion.dialogue.spoken import SpokenCheck
from voice_companion.engines import ChatModel
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.persona.files import read_persona
from voice_companion.persona.library import shipped_dir

PERSONA = read_persona(shipped_dir() / "robin.toml")
LEAK = re.compile(
    r"the user|\buser\s*:|\bassistant\s*:|data point|instruction|\bnotes about\b|\(tomorrow:"
    r"|\bon \d{1,2} \w+ \d{4}\b.{0,60}\bsaid\b|what you remember and can say|in this reply"
    r"|\b(?:they|you) say\s*:",
    re.I,
)
EARLIER = (
    ("My name is Margaret but everyone calls me Maggie.", "Lovely to meet you, Maggie!"),
    ("I work as a nurse at St Mary's hospital.", "That must keep you busy."),
    ("I have a dog called Biscuit, he's a brown spaniel.", "Your dog Rex sounds like a poodle!"),
    ("I grew up in Cork, right by the sea, but I live in Leeds now.", "The sea must be missed."),
    ("My driving test is tomorrow and I'm terrified.", "You'll do great."),
)
PROMPTS = (
    "i'm so nervous",
    "i had a rough day at work",
    "where did I grow up",
    "i cant sleep",
    "um i was thinking about home today",
    "whats my dog called",
)


@pytest.mark.models
def test_replies_to_a_rich_memory_read_no_framing_aloud(
    memory: LongTermMemory, clock: Clock, llama_model: ChatModel
) -> None:
    old = Dialogue(PERSONA, memory, history_turns=8, budget_tokens=1400, conversation_id="old")
    for user, reply in EARLIER:
        old.record_exchange(user, reply, False)
    told = [t for t in memory.db.turns() if t.speaker == "user"]
    for kind, key, value, days in (
        ("preferred_name", "preferred_name", "Maggie", None),
        ("relation", "relation:dog", "Biscuit", None),
        ("location", "home", "Leeds", None),
        ("event", "event:driving test", "driving test", 1),
    ):
        day = (clock.now + timedelta(days=days)).date() if days else None
        memory.db.add_fact(kind, key, value, clock.now, [told[0].id], "rules", event_date=day)
    memory.index_pending()
    clock.advance(hours=3)
    raw: list[str] = []
    spoken: list[str] = []
    for text in PROMPTS:
        session = Dialogue(
            PERSONA, memory, history_turns=8, budget_tokens=1400, conversation_id=text
        )
        turn = session.prepare_user(text)
        messages = session.messages_for(text, turn)
        reply = "".join(llama_model.stream(messages, threading.Event())).strip()
        check = SpokenCheck.for_prompt(messages, PERSONA)
        splitter = SentenceSplitter(max_chars=160)
        sentences = [*splitter.feed(reply), splitter.flush() or ""]
        raw.append(reply)
        spoken.append(" ".join(s for p in sentences if p.strip() and (s := check(p))))
    leaked = [r for r in raw if LEAK.search(r)]
    # The layout itself: at most one reply in six slips (the old layout: one in four).
    assert len(leaked) <= 1, leaked
    # What is spoken: none.
    assert not [s for s in spoken if LEAK.search(s)], spoken
