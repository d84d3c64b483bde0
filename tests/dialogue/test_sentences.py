"""SentenceSplitter and speakable(): tricky text, whole and streamed in random pieces."""

from __future__ import annotations

import random

import pytest

from voice_companion.dialogue.sentences import SentenceSplitter, is_pictograph, speakable


def split_whole(text: str, **kwargs: int) -> list[str]:
    splitter = SentenceSplitter(**kwargs)
    out = splitter.feed(text)
    rest = splitter.flush()
    return out + ([rest] if rest else [])


def split_pieces(text: str, seed: int, max_piece: int = 7, **kwargs: int) -> list[str]:
    """Feed ``text`` in random-size pieces (1..max_piece chars), as an LLM stream would."""
    rng = random.Random(seed)
    splitter = SentenceSplitter(**kwargs)
    out: list[str] = []
    i = 0
    while i < len(text):
        size = rng.randint(1, max_piece)
        out += splitter.feed(text[i : i + size])
        i += size
    rest = splitter.flush()
    return out + ([rest] if rest else [])


def split_chars(text: str, **kwargs: int) -> list[str]:
    splitter = SentenceSplitter(**kwargs)
    out: list[str] = []
    for ch in text:
        out += splitter.feed(ch)
    rest = splitter.flush()
    return out + ([rest] if rest else [])


CASES: list[tuple[str, list[str]]] = [
    (
        "Hello there. How are you today? I'm fine!",
        ["Hello there.", "How are you today?", "I'm fine!"],
    ),
    (
        "Mr. Smith met Mrs. Jones and Dr. Who on Main St. yesterday. It was fun.",
        ["Mr. Smith met Mrs. Jones and Dr. Who on Main St. yesterday.", "It was fun."],
    ),
    (
        "Bring fruit, e.g. apples, i.e. the red ones, pears etc. and bread. Then go.",
        ["Bring fruit, e.g. apples, i.e. the red ones, pears etc. and bread.", "Then go."],
    ),
    (
        "We met at 5 p.m. Then we left. Lunch at 11 a.m. tomorrow is fine.",
        ["We met at 5 p.m.", "Then we left.", "Lunch at 11 a.m. tomorrow is fine."],
    ),
    (
        "I live in the U.S. and love it. Cats vs. dogs is old. I moved to the U.S. It was big.",
        [
            "I live in the U.S. and love it.",
            "Cats vs. dogs is old.",
            "I moved to the U.S.",
            "It was big.",
        ],
    ),
    (
        "J. K. Rowling wrote it. So did J. R. R. Tolkien, sort of.",
        ["J. K. Rowling wrote it.", "So did J. R. R. Tolkien, sort of."],
    ),
    (
        "Pi is about 3.14 and the app is v2.0 now. Version 10.2.1 works.",
        ["Pi is about 3.14 and the app is v2.0 now.", "Version 10.2.1 works."],
    ),
    (
        "Well... I think so. I don't know… Maybe tomorrow. Hmm... It works.",
        ["Well... I think so.", "I don't know…", "Maybe tomorrow.", "Hmm...", "It works."],
    ),
    (
        "Wait... what? Really?! Yes!!! No?!",
        ["Wait... what?", "Really?!", "Yes!!!", "No?!"],
    ),
    (
        'She said "Hello there." Then she left. (It was late.) I agreed.',
        ['She said "Hello there."', "Then she left.", "(It was late.)", "I agreed."],
    ),
    (
        "**Sure.** Here you go: *one.* Two.",
        ["**Sure.**", "Here you go: *one.*", "Two."],
    ),
    (
        "“Really?” she asked. “Yes.” Fine.",
        ["“Really?” she asked.", "“Yes.”", "Fine."],
    ),
    (
        "Great! 😊 See you soon. Bye! 👋🏽😀 Next one. Love it ❤️. Done.",
        ["Great! 😊", "See you soon.", "Bye! 👋🏽😀", "Next one.", "Love it ❤️.", "Done."],
    ),
    (
        "Here is the plan:\n1. Do this.\n2. Do that, then rest.\n\n- a bullet\nDone",
        ["Here is the plan:", "1. Do this.", "2. Do that, then rest.", "- a bullet", "Done"],
    ),
    (
        "1. First thing 2. second thing",
        ["1. First thing 2. second thing"],
    ),
    (
        "Wait a min. then go. Ok.",
        ["Wait a min. then go.", "Ok."],
    ),
    (
        "I counted to 3. Then I stopped.",
        ["I counted to 3.", "Then I stopped."],
    ),
    (
        "Visit example.com today. Trailing text without a stop",
        ["Visit example.com today.", "Trailing text without a stop"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split_whole(text: str, expected: list[str]) -> None:
    assert split_whole(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split_streamed_in_random_pieces_matches_whole(text: str, expected: list[str]) -> None:
    for seed in range(20):
        assert split_pieces(text, seed) == expected, f"seed {seed}"
    assert split_chars(text) == expected


def test_decimal_split_across_pieces_is_not_a_boundary() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Pi is 3.") == []
    assert splitter.feed("14 or so. And") == ["Pi is 3.14 or so."]
    assert splitter.flush() == "And"


def test_sentence_waits_for_the_character_after_the_stop() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello.") == []
    assert splitter.feed(" ") == []  # an emoji could still belong to it
    assert splitter.feed("How") == ["Hello."]
    assert splitter.feed(" are you?\n") == ["How are you?"]


def test_flush_returns_none_when_empty_and_resets() -> None:
    splitter = SentenceSplitter(first_clause_chars=5)
    assert splitter.flush() is None
    assert splitter.feed("   \n  ") == []
    assert splitter.flush() is None
    assert splitter.feed("Hello there, you. ") == ["Hello there,"]
    assert splitter.flush() == "you."
    # After flush the next reply gets its early first clause again.
    assert splitter.feed("Hello there, you. ") == ["Hello there,"]


def _long_run(words: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    vocabulary = ["and", "so", "then", "we", "walked", "along", "the", "quiet", "river", "bank"]
    return " ".join(rng.choice(vocabulary) for _ in range(words))


def test_long_run_without_punctuation_is_flushed_at_word_boundaries() -> None:
    text = _long_run(140)
    assert len(text) > 600
    whole = split_whole(text, max_chars=160)
    assert len(whole) >= 4
    assert all(len(piece) <= 160 for piece in whole)
    assert " ".join(whole) == text  # cut only at spaces: no word broken
    for seed in range(10):
        assert split_pieces(text, seed, max_chars=160) == whole


def test_long_run_prefers_the_last_clause_mark() -> None:
    text = _long_run(15) + ", " + _long_run(15, seed=8) + " — " + _long_run(40, seed=9)
    pieces = split_whole(text, max_chars=160)
    assert pieces[0].endswith(",") or pieces[0].endswith("—")
    assert all(len(piece) <= 160 for piece in pieces)
    assert split_pieces(text, 3, max_chars=160) == pieces


def test_single_word_longer_than_bound_is_cut() -> None:
    text = "x" * 50
    assert split_whole(text, max_chars=20) == ["x" * 20, "x" * 20, "x" * 10]
    assert split_pieces(text, 1, max_chars=20) == ["x" * 20, "x" * 20, "x" * 10]


def test_first_clause_starts_speech_early_once() -> None:
    text = "Well, I was thinking about it, and maybe we could go to the park. Later, at home."
    expected = [
        "Well, I was thinking about it,",
        "and maybe we could go to the park.",
        "Later, at home.",
    ]
    assert split_whole(text, first_clause_chars=20) == expected
    for seed in range(10):
        assert split_pieces(text, seed, first_clause_chars=20) == expected


def test_first_clause_is_not_cut_inside_numbers() -> None:
    text = "It costs 3,000 dollars in 10:30 hours, roughly. Ok."
    assert split_whole(text, first_clause_chars=5) == [
        "It costs 3,000 dollars in 10:30 hours,",
        "roughly.",
        "Ok.",
    ]


def test_first_piece_may_end_before_a_conjunction() -> None:
    text = "I am so glad you told me about it and I hope the walk was lovely. Or not?"
    expected = ["I am so glad you told me about it", "and I hope the walk was lovely.", "Or not?"]
    assert split_whole(text, first_clause_chars=16) == expected
    for seed in range(10):
        assert split_pieces(text, seed, first_clause_chars=16) == expected
    assert split_chars(text, first_clause_chars=16) == expected
    # Not within the first clause's length, and only before a whole word ("android").
    assert split_whole("Yes and no, android or not.", first_clause_chars=5) == [
        "Yes and no,",
        "android or not.",
    ]


def test_first_piece_is_bounded_and_the_rest_keeps_the_sentence_bound() -> None:
    text = "The user tells me about the long walk by the river this morning in the sun. Yes."
    pieces = split_whole(text, first_clause_chars=16, first_max_chars=40)
    assert pieces == [
        "The user tells me about the long walk by",  # 40 characters
        "the river this morning in the sun.",
        "Yes.",
    ]
    for seed in range(10):
        assert split_pieces(text, seed, first_clause_chars=16, first_max_chars=40) == pieces


def test_first_clause_off_by_default() -> None:
    text = "Well, I was thinking about it, and maybe not. Fine."
    assert split_whole(text) == ["Well, I was thinking about it, and maybe not.", "Fine."]


def test_random_texts_split_the_same_however_they_are_streamed() -> None:
    rng = random.Random(1234)
    parts = [
        "Mr.", "Dr.", "e.g.", "etc.", "U.S.", "3.14", "v2.0", "word", "Word", "and", "I",
        "It", "...", "…", "?!", "!", ".", ",", "😊", "👍🏽", '"Hi."', "(yes.)", "\n", "1.",
        "p.m.", "J.", "—", "the", "quiet", "river",
    ]  # fmt: skip
    for _ in range(200):
        text = " ".join(rng.choice(parts) for _ in range(rng.randint(1, 60)))
        for kwargs in (
            {"max_chars": 40},
            {"max_chars": 160, "first_clause_chars": 12, "first_max_chars": 30},
        ):
            whole = split_whole(text, **kwargs)
            assert split_pieces(text, rng.randint(0, 10**6), **kwargs) == whole, text
            assert split_chars(text, **kwargs) == whole, text
            assert " ".join(whole).split() == text.split()  # nothing lost, nothing added


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        SentenceSplitter(max_chars=1)
    with pytest.raises(ValueError):
        SentenceSplitter(first_clause_chars=-1)
    with pytest.raises(ValueError):
        SentenceSplitter(first_max_chars=-1)


# -- speakable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**Bold** and *em* and __strong__ and _em_.", "Bold and em and strong and em."),
        ("Use `pip install` now.", "Use pip install now."),
        ("## A heading\nSome text.", "A heading Some text."),
        ("- first item\n- second item\n* third", "first item second item third"),
        ("See [the docs](https://example.com/x) please.", "See the docs please."),
        ("Great! 😊 See you 👋🏽.", "Great! See you."),
        ("Family: 👨‍👩‍👧 yes ❤️ ⭐", "Family: yes"),
        ("tab\there\x00 bell\x07 zero\u200bwidth", "tab here bell zerowidth"),
        ("  lots   of\n\n spaces  ", "lots of spaces"),
        ("**Hello.", "Hello."),
        ("snake_case_name stays", "snake_case_name stays"),
        ("It is 20°C and 2 * 3 = 6.", "It is 20°C and 2 * 3 = 6."),
        ("> quoted line", "quoted line"),
        ("```python\nprint(1)\n```", "print(1)"),
    ],
)
def test_speakable(text: str, expected: str) -> None:
    assert speakable(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "😊", "😊 👍", "...", "**", "- ", "\x00\x07", "---"])
def test_speakable_nothing_left(text: str) -> None:
    assert speakable(text) == ""


def test_is_pictograph() -> None:
    assert is_pictograph("😊")
    assert is_pictograph("\ufe0f")
    assert not is_pictograph("a")
    assert not is_pictograph("°")
    assert not is_pictograph("é")
