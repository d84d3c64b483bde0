"""Memory commands said in conversation: the common phrasings, and nothing else."""

from __future__ import annotations

import pytest

from voice_companion.dialogue.commands import ForgetLast, RecallAboutMe, parse

RECALL = (
    "What do you remember about me?",
    "Hey, it's me again. What do you remember about me?",
    "hey it's me again what do you remember about me",
    "what do you know about me",
    "What do you know about me so far?",
    "do you remember me",
    "Do you remember me?",
    "hi mira, do you remember me",
    "um so what do you uh remember about me",
    "Good morning! What do you know about me?",
    "okay so tell me what you remember about me",
    "can you tell me what you know about me",
    "how much do you know about me",
    "what have you learned about me",
    "do you know who I am",
    "hello again, what else do you know about me",
    "Hey. So, what do you actually remember about me?",
    "what did you find out about me",
)
ORDINARY = (
    "do you remember what I told you about my dog",
    "Do you remember what I said about my sister?",
    "what's my dog called",
    "what do you know about dogs",
    "tell me about yourself",
    "do you remember me telling you about my trip",
    "what do you remember about my holiday",
    "hey it's me again",
    "I remember when we met",
    "I don't know what you remember",
    "what do you know about me and my brother",
    "Do you remember the song we talked about?",
    "what do you think about me moving to Leeds",
    "you know about me, right, I love cooking",
)


@pytest.mark.parametrize("text", RECALL)
def test_recall_about_me_in_its_common_phrasings(text: str) -> None:
    assert parse(text) == RecallAboutMe()


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_sentences_and_questions_about_one_thing_are_not_commands(text: str) -> None:
    assert parse(text) is None


def test_forget_that_still_works() -> None:
    assert parse("Forget that.") == ForgetLast()
    assert parse("oh please forget that") == ForgetLast()
