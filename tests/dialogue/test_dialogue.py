"""Dialogue: records exchanges in history and memory, recalls through the MemoryStore seam."""

from __future__ import annotations

import pytest

from tests.fakes import NotedMemory, WordMemory
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.history import Turn
from voice_companion.dialogue.prompt import MEMORY_HEADER, NOTES_HEADER, prompt_tokens
from voice_companion.engines import ChatMessage
from voice_companion.memory.seam import MemoryStore, NoMemory
from voice_companion.persona.files import read_persona
from voice_companion.persona.library import shipped_dir

PERSONA = read_persona(shipped_dir() / "robin.toml")


def test_word_memory_meets_the_protocol() -> None:
    assert isinstance(WordMemory(), MemoryStore)


def test_record_exchange_goes_to_history_and_memory() -> None:
    memory = WordMemory()
    dialogue = Dialogue(PERSONA, memory, history_turns=4, budget_tokens=2000, conversation_id="c1")
    dialogue.record_exchange("My sister is called Ana.", "What a lovely name.", False)
    dialogue.record_exchange("Tell me a story.", "Once upon a", True)
    dialogue.record_exchange("Hello?", "  ", False)  # nothing heard: the user turn alone
    expected = [
        Turn("user", "My sister is called Ana."),
        Turn("assistant", "What a lovely name."),
        Turn("user", "Tell me a story."),
        Turn("assistant", "Once upon a", interrupted=True),
        Turn("user", "Hello?"),
    ]
    assert dialogue.history.recent() == expected
    assert memory.recorded == [(t, "c1") for t in expected]


def test_messages_for_recalls_through_the_seam() -> None:
    memory = WordMemory()
    earlier = Dialogue(PERSONA, memory, history_turns=4, budget_tokens=2000, conversation_id="c1")
    earlier.record_exchange("My sister Ana is getting married.", "How exciting!", False)

    # A new conversation: empty history, but the store remembers.
    dialogue = Dialogue(
        PERSONA, memory, history_turns=4, budget_tokens=2000, conversation_id="c2", recall_limit=3
    )
    messages = dialogue.messages_for("What do you think about my sister?")
    assert memory.queries[-1] == ("What do you think about my sister?", 3)
    assert [m.role for m in messages] == ["system", "user", "user"]
    assert "Ana" not in messages[0].content
    context = messages[-2].content
    assert context.startswith(MEMORY_HEADER)
    assert "You once told me: “My sister Ana is getting married.”" in context
    assert messages[-1].content == "What do you think about my sister?"


def test_turns_in_history_are_not_quoted_again_as_memories() -> None:
    memory = WordMemory()
    dialogue = Dialogue(PERSONA, memory, history_turns=4, budget_tokens=2000, conversation_id="c1")
    dialogue.record_exchange("I love my cat.", "Cats are great.", False)
    messages = dialogue.messages_for("Do you remember my cat?")
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1].content == "I love my cat."
    assert messages[-1].content == "Do you remember my cat?"


def test_dialogue_respects_budget_and_history_bound() -> None:
    dialogue = Dialogue(
        PERSONA, NoMemory(), history_turns=2, budget_tokens=400, conversation_id="c"
    )
    for i in range(10):
        dialogue.record_exchange(f"question {i} " + "q" * 100, f"answer {i}", False)
    assert len(dialogue.history) == 4
    messages = dialogue.messages_for("and now?")
    assert prompt_tokens(messages) <= 400
    assert messages[0].content == PERSONA.system_prompt()
    assert messages[-1].content == "and now?"


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        Dialogue(PERSONA, NoMemory(), history_turns=2, budget_tokens=0, conversation_id="c")
    with pytest.raises(ValueError):
        Dialogue(PERSONA, NoMemory(), 2, 100, "c", recall_limit=-1)


def test_notes_stay_put_for_the_cache_until_the_history_turns_over_or_something_is_forgotten() -> (
    None
):
    memory = NotedMemory()
    memory.facts.append("The user's name is Sam.")
    d = Dialogue(
        PERSONA,
        memory,
        history_turns=3,
        budget_tokens=1500,
        conversation_id="c",
        notes_refresh_turns=3,
    )

    def notes_in(messages: list[ChatMessage]) -> str:
        return "\n".join(m.content for m in messages if m.content.startswith(NOTES_HEADER))

    def turn(text: str) -> str:
        d.record_user(text)
        messages = d.messages_for(text)
        d.record_reply("Okay.", interrupted=False)
        return notes_in(messages)

    assert "Sam" in turn("Hi there")
    memory.facts.append("The user has a dog called Rex.")
    # learnt mid-conversation: it is in the history, and the notes ahead of it do not change
    assert [("Rex" in turn(f"line {n}")) for n in range(3)] == [False, False, True]
    d.record_user("forget that")
    d.command_reply("forget that")
    assert "Sam" not in turn("and now?")  # forgotten: out of the prompt at once
