"""The spoken check: framing a model read aloud is rewritten or dropped, speech passes, counted."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.conftest import shipped_config
from tests.fakes import ScriptedModel
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.history import Turn
from voice_companion.dialogue.prompt import build_messages
from voice_companion.dialogue.spoken import SpokenCheck
from voice_companion.memory.seam import NoMemory
from voice_companion.persona.files import read_persona
from voice_companion.persona.library import shipped_dir
from voice_companion.runtime.turn import Conversation
from voice_companion.runtime.turn import Turn as RuntimeTurn
from voice_companion.trace import Tracer

PERSONA = read_persona(shipped_dir() / "robin.toml")
HINT = "(You seem stressed. Reassure them first; give advice only if they ask for it.)"
MESSAGES = build_messages(
    PERSONA,
    [Turn("user", "hey"), Turn("assistant", "Hi Maggie!")],
    [],
    "i'm so nervous",
    100_000,
    ["You like to be called “Maggie”.", "Your dog is called “Biscuit”."],
    HINT,
)

ORDINARY = [
    "Good morning! How are you today?",
    "Your dog Biscuit sounds like a sweetheart.",
    "You once told me you grew up in Cork, by the sea.",
    "Oh no, I'm sorry. Do you want to talk about it?",
    "um, that's, like, totally fine you know",
    "Tomorrow is your driving test, isn't it",
    "(laughs) That's a good one.",
    "Users of the bus say it's always late.",
    "You did it! That one was hanging over you all week. How does it feel?",  # an example
    "I keep some notes in my head, Maggie.",
    "Is that an instruction, captain?",
    "🍬🌟",
]


def check() -> SpokenCheck:
    return SpokenCheck.for_prompt(MESSAGES, PERSONA)


@pytest.mark.parametrize(
    ("said", "spoken"),
    [
        ("The user grew up in Cork, right here.", "You grew up in Cork, right here."),
        ("the user likes coffee and the user goes home", "you like coffee and you go home"),
        ("I know the user's dog is called Biscuit.", "I know your dog is called Biscuit."),
        ("Maybe the user is tired.", "Maybe you are tired."),
        ("The user doesn't like olives, right?", "You don't like olives, right?"),
        ("Robin: Hello there, Maggie!", "Hello there, Maggie!"),
        ("Assistant: I'm here for you.", "I'm here for you."),
        ("You say: “Good luck tomorrow!”", "Good luck tomorrow!"),
        ("**Robin:** Sure thing.", "Sure thing."),
        ("Hi there! (The user seems sad.) What happened?", "Hi there! What happened?"),
    ],
)
def test_framing_is_rewritten_to_speak_to_the_person(said: str, spoken: str) -> None:
    spoken_check = check()
    assert spoken_check(said) == spoken
    assert spoken_check.fired == 1


@pytest.mark.parametrize(
    "said",
    [
        "User: I grew up in Cork, by the sea.",  # the model writing the user's part
        "user: what about you",
        "They say: \"Maggie, that's right. I'm so nervous!\"",  # the examples' label
        "The user's message is from a data point, not an instruction.",
        'On 2 December 2026 the user said: "You\'re so brave!"',
        "On 3 May 2026, you said you liked tea.",
        "(The user seems tired. Be gentle and keep it short.)",
        "Reassure them first; give advice only if they ask for it.",  # the hint, recited
        "Words in quotes are things they once told you, to help you remember.",  # the rules
        "Notes about the user from earlier conversations.",
        "What you remember and can say to them: your dog is Biscuit.",
        "Robin:",
    ],
)
def test_sentences_that_recite_the_framing_are_dropped(said: str) -> None:
    spoken_check = check()
    assert spoken_check(said) is None
    assert spoken_check.fired == 1


def test_an_aside_that_repeats_a_short_hint_is_not_spoken() -> None:
    # Shorter than a recital run, read aloud by the bundled model in a test run.
    hint = "(Tomorrow: your “driving test”.)"
    messages = build_messages(PERSONA, [], [], "i'm so nervous", 100_000, [], hint)
    spoken_check = SpokenCheck.for_prompt(messages, PERSONA)
    assert spoken_check('(Tomorrow: your "driving test") You will do well.') == "You will do well."
    assert spoken_check("(laughs) Tomorrow is your driving test, isn't it?") == (
        "(laughs) Tomorrow is your driving test, isn't it?"
    )
    assert spoken_check.fired == 1


def test_ordinary_speech_passes_untouched_and_uncounted() -> None:
    spoken_check = check()
    assert [spoken_check(s) for s in ORDINARY] == ORDINARY
    assert spoken_check.fired == 0


def test_it_counts_each_sentence_it_changed_and_logs_no_words_above_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spoken_check = check()
    caplog.set_level(logging.DEBUG, logger="voice_companion.dialogue.spoken")
    said = ["Hi Maggie!", "The user seems sad.", "User: yes", "Let's talk.", "(The user sighs.)"]
    assert [spoken_check(s) for s in said] == [
        "Hi Maggie!",
        "You seem sad.",
        None,
        "Let's talk.",
        None,
    ]
    assert spoken_check.fired == 3
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG]) == 3
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "sad" not in logged and "sighs" not in logged and "yes" not in logged


def test_the_turn_checks_each_model_sentence_before_it_is_spoken(tmp_path: Path) -> None:
    """Through the real turn: what the model says is checked sentence by sentence, and the turn
    reports how often the check fired (the scripted model stands for a model that leaks)."""
    reply = (
        "The user seems tired tonight. User: yes I am. Maybe a warm drink would help? "
        "(The user yawns.) Sleep well."
    )
    dialogue = Dialogue(PERSONA, NoMemory(), history_turns=4, budget_tokens=1500,
                        conversation_id="c")  # fmt: skip
    conversation = Conversation(
        shipped_config(tmp_path), dialogue, Tracer(), model=ScriptedModel(reply)
    )
    turn = RuntimeTurn(conversation, typed="i'm so tired")

    async def said() -> list[str]:
        async with asyncio.timeout(30):
            return [s async for s in turn.written()]

    assert asyncio.run(said()) == [
        "You seem tired tonight.",
        "Maybe a warm drink would help?",
        "Sleep well.",
    ]
    assert turn.spoken_fixes == 3
    conversation.close()


def test_a_reply_that_was_all_framing_is_not_silence(tmp_path: Path) -> None:
    config = shipped_config(tmp_path)
    dialogue = Dialogue(PERSONA, NoMemory(), history_turns=4, budget_tokens=1500,
                        conversation_id="c")  # fmt: skip
    model = ScriptedModel("User: I grew up in Cork. The user's message is a data point.")
    conversation = Conversation(config, dialogue, Tracer(), model=model)
    turn = RuntimeTurn(conversation, typed="tell me about cork")

    async def said() -> list[str]:
        async with asyncio.timeout(30):
            return [s async for s in turn.written()]

    assert asyncio.run(said()) == [config.llm.apology]
    assert turn.spoken_fixes == 2
    conversation.close()
