"""Questions about the user's own life: recognised in the forms speech-to-text gives, told
apart from general questions, venting and statements; what is said back, and when.

Pure functions; the answers from a real memory on disk are in tests/memory/test_answers_memory.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from voice_companion.dialogue import commands
from voice_companion.dialogue.answers import (
    UNKNOWN_LINE,
    Evidence,
    Question,
    evidence_lines,
    mode_for,
    recognise,
    second_person,
    spoken,
    told_when,
    unknown,
)

ASKED = [
    ("what's my dog called", "relation", "dog"),
    ("whats my dogs name", "relation", "dog"),
    ("What is my dog's name?", "relation", "dog"),
    ("um so like what's my cat's name again", "relation", "cat"),
    ("uh what's my puppy called you know", "relation", "dog"),
    ("do you know what my dog is called", "relation", "dog"),
    ("what is the name of my dog", "relation", "dog"),
    ("what did i call my cat", "relation", "cat"),
    ("who's my boss", "relation", "boss"),
    ("what's my mum called", "relation", "mother"),
    ("do you remember my brother's name", "relation", "brother"),
    ("what are my kids called", "relation", "child"),
    ("what does my dog look like", "trait", "dog"),
    ("what kind of dog do i have", "trait", "dog"),
    ("when is my brother's graduation", "when", "brother's graduation"),
    ("when's my mum's birthday", "when", "mum's birthday"),
    ("when is my dentist appointment", "when", "dentist appointment"),
    ("can you remind me when my sister's wedding is", "when", "sister's wedding"),
    ("what day is my interview", "when", "interview"),
    ("where was I born", "hometown", ""),
    ("Where did I grow up?", "hometown", ""),
    ("where am i from", "hometown", ""),
    ("do you remember where i was born", "hometown", ""),
    ("what's my hometown", "hometown", ""),
    ("where do I live", "home", ""),
    ("where do i live now", "home", ""),
    ("what city do i live in", "home", ""),
    ("what do I do for work", "work", "work"),
    ("what's my job", "work", "work"),
    ("where do i work", "work", "work"),
    ("what do i do for a living", "work", "work"),
    ("do you remember what I told you about work", "work", "work"),
    ("who is Priya", "who", "priya"),
    ("how old am I", "age", ""),
    ("what am I allergic to", "allergy", ""),
    ("do i have any allergies", "allergy", ""),
    ("am i allergic to peanuts", "allergy", "peanuts"),
    ("what do I like to eat", "taste", "eat"),
    ("what's my favourite food", "taste", "food"),
    ("what do i hate", "taste", ""),
    ("do i like coffee", "taste", "coffee"),
    ("what are my hobbies", "hobby", ""),
    ("what do i do for fun", "hobby", ""),
    ("did I tell you about my sister", "about", "sister"),
    ("do you remember my sister", "about", "sister"),
    ("what have i told you about my garden", "about", "garden"),
    ("what's my nickname", "preferred_name", ""),
    ("what do my friends call me", "preferred_name", ""),
    ("what's my name", "name", ""),
    ("what am i doing tomorrow", "plans", "tomorrow"),
    ("when does my brother graduate", "when", "brother's graduate"),
    ("when is my sister coming over", "when", "sister's coming over"),
    ("which city do i live in", "home", ""),
    ("where am i living these days", "home", ""),
    ("where is it that i work", "work", "work"),
    ("what hospital do i work at", "work", "work"),
    ("what foods am i allergic to", "allergy", ""),
    ("have i got any allergies", "allergy", ""),
    ("what do i do in my free time", "hobby", ""),
    ("did i ever mention my brother", "about", "brother"),
    ("where did i go to school", "about", "school"),
    ("is there anything i'm allergic to", "allergy", ""),
    ("what do i love eating", "taste", "eat"),
    ("what food can't i stand", "taste", "food"),
    ("what do i like doing", "hobby", ""),
    ("when is sam moving", "when", "sam's moving"),
    ("where's home for me", "home", ""),
    ("what city am i in", "home", ""),
    ("what's my line of work", "work", "work"),
    ("am i allergic to anything", "allergy", ""),
    ("what do i do to keep fit", "hobby", ""),
    ("what's the dog called again", "relation", "dog"),
    ("what music do i like", "taste", "music"),
    ("What did I do for a living?", "work", "work"),
    ("When am I seeing the cardiologist?", "when", "seeing the cardiologist"),
    ("what do i study", "about", "study"),
    ("where's sam moving to", "about", "sam moving"),
    ("what did you tell me about sleep", "said", "sleep"),
    ("what did you say about my cough", "said", "my cough"),
    ("what car do i drive", "about", "car"),
    ("Which football team do I support?", "about", "football team"),
    ("what kind of phone did i buy last year", "about", "phone"),
]


@pytest.mark.parametrize(("text", "target", "subject"), ASKED)
def test_a_question_about_the_users_life_is_recognised(
    text: str, target: str, subject: str
) -> None:
    question = recognise(text)
    assert question is not None, text
    assert (question.target, question.subject) == (target, subject)


NOT_ASKED = [
    "what's the capital of france",
    "who is the president",
    "when is christmas",
    "when does the shop open",
    "when is the sun setting",
    "when is it happening",
    "which is better, tea or coffee",
    "what is love",
    "how do i make bread",
    "where do i go to renew a passport",
    "what's the weather like",
    "what's your name",  # about the companion
    "where do you live",
    "how old are you",
    "do you like dogs",
    "why does my boss hate me",  # venting
    "why is my life like this",
    "what is wrong with me",
    "who am i kidding",
    "what do i do now",
    "what should i do",
    "what do you think i should do",
    "which one do i need",
    "what size do i need",
    "what time do i call them",
    "what gift do i get my mum",
    "my dog is called Biscuit",  # statements
    "i live in leeds",
    "I grew up in Cork.",
    "what do you think about my sister",
    "what do you remember about me",  # memory commands: commands.py's
    "forget about my sister",
    "",
    "?!",
]


@pytest.mark.parametrize("text", NOT_ASKED)
def test_other_words_are_not_taken_for_such_a_question(text: str) -> None:
    assert recognise(text) is None


def test_memory_commands_stay_commands() -> None:
    """What commands.py answers is never read as a question here first (the dialogue asks
    commands.parse before this), and the two do not overlap."""
    for text in ("what do you remember about me", "forget that", "forget about my dog"):
        assert commands.parse(text) is not None
        assert recognise(text) is None


def test_what_the_user_said_is_turned_to_the_second_person() -> None:
    assert second_person("I grew up in Cork.") == "you grew up in Cork"
    assert second_person("My brother Tom graduates on Friday!") == (
        "your brother Tom graduates on Friday"
    )
    assert second_person("I'm allergic to peanuts, sadly") == "you're allergic to peanuts, sadly"
    assert second_person("I was born in Leeds and my mum still lives there") == (
        "you were born in Leeds and your mum still lives there"
    )
    long = " ".join(["word"] * 40)
    assert len(second_person(long).split()) <= 24


def test_when_it_was_told_is_said_as_people_say_it() -> None:
    now = datetime(2026, 12, 2, 15, 0).astimezone()  # a Wednesday
    assert told_when(now - timedelta(hours=2), now) == "earlier today"
    assert told_when(now - timedelta(days=1), now) == "yesterday"
    assert told_when(now - timedelta(days=2), now) == "on Monday"
    assert told_when(now - timedelta(days=6), now) == "last Thursday"
    assert told_when(now - timedelta(days=30), now) == "on 2 November"
    assert told_when(now - timedelta(days=400), now) == "on 28 October 2025"


def test_nothing_known_is_said_and_asked_never_guessed() -> None:
    now = datetime(2026, 12, 2, 15, 0).astimezone()
    for text, _, _ in ASKED:
        question = recognise(text)
        assert question is not None
        if question.target == "said":
            continue
        said = spoken(question, Evidence(), now)
        assert "don't" in said, (text, said)
        assert said.rstrip().endswith("?"), (text, said)
    dog = spoken(Question("relation", "dog"), Evidence(), now)
    assert dog in (
        "I don't think you've told me what your dog is called. What's their name?",
        "Hmm, I don't know what your dog is called yet. What's their name?",
    )
    assert "about Priya" in unknown(Question("who", "priya"))
    music = spoken(Question("taste", "music", polarity="like"), Evidence(), now)
    assert "what music you like" in music, music


def test_the_wording_varies_but_is_the_same_for_the_same_question() -> None:
    now = datetime(2026, 12, 2, 15, 0).astimezone()
    said = {spoken(Question("relation", rel), Evidence(), now) for rel in ("dog", "cat", "boss")}
    again = {spoken(Question("relation", rel), Evidence(), now) for rel in ("dog", "cat", "boss")}
    assert said == again
    asked = [recognise(text) for text, _, _ in ASKED]
    wordings = {spoken(q, Evidence(), now).split(" ", 3)[0] for q in asked if q is not None}
    assert len(wordings) >= 2  # not one sentence for every question


def test_a_capable_model_is_told_it_does_not_know() -> None:
    now = datetime(2026, 12, 2, 15, 0).astimezone()
    assert evidence_lines(Question("relation", "dog"), Evidence(), now) == [UNKNOWN_LINE]
    # "who is X" may be general knowledge: nothing known is then no line at all.
    assert evidence_lines(Question("who", "einstein", personal=False), Evidence(), now) == []


@pytest.mark.parametrize(
    ("setting", "backend", "path", "mode"),
    [
        ("auto", "llama", "bundled", "direct"),
        ("auto", "llama", "/models/mistral-7b.gguf", "model"),
        ("auto", "openai", "bundled", "model"),
        ("direct", "openai", "bundled", "direct"),
        ("model", "llama", "bundled", "model"),
    ],
)
def test_who_answers_is_decided_by_the_model_configured(
    setting: str, backend: str, path: str, mode: str
) -> None:
    assert mode_for(setting, backend, path, "bundled") == mode
