"""Lorebook scanning is bounded: keys indexed once per book, a turn checks only the keys its
words could fire, and what it finds is exactly what checking every key would find."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any

from voice_companion.persona import lorebook
from voice_companion.persona.lorebook import (
    MAX_ACTIVE_CHARS,
    MAX_ACTIVE_ENTRIES,
    Lorebook,
    LoreEntry,
    active_entries,
)


def reference(book: Lorebook, texts: list[str]) -> list[str]:
    """The scan as it was before the index: every entry, every key, every turn."""
    if book.scan_depth is not None:
        texts = texts[len(texts) - book.scan_depth :] if book.scan_depth else []
    haystack = "\n".join(texts)

    def any_key(keys: Iterable[str], case_sensitive: bool) -> bool:
        flags = 0 if case_sensitive else re.IGNORECASE
        for raw in keys:
            key = raw.strip()
            if not key:
                continue
            head = r"(?<![A-Za-z0-9])" if re.match("[A-Za-z0-9]", key[0]) else ""
            tail = r"(?![A-Za-z0-9])" if re.match("[A-Za-z0-9]", key[-1]) else ""
            if re.search(head + re.escape(key) + tail, haystack, flags):
                return True
        return False

    def fires(entry: LoreEntry) -> bool:
        if not any_key(entry.keys, entry.case_sensitive):
            return False
        if entry.selective and any(k.strip() for k in entry.secondary_keys):
            return any_key(entry.secondary_keys, entry.case_sensitive)
        return True

    ordered = sorted(enumerate(book.entries), key=lambda pair: (pair[1].insertion_order, pair[0]))
    out = []
    for _, entry in ordered:
        content = lorebook._DECORATOR_LINE.sub("", entry.content).strip()
        if not entry.enabled or not content or entry.use_regex:
            continue
        if entry.constant or fires(entry):
            out.append(content)
    return out


# Letters re.IGNORECASE treats specially (İ ı ſ K, σ ς Σ, ß ẞ), CJK, punctuation, digits.
ALPHABET = "abcsiSKkI0 9.-_\u0130\u0131\u017f\u212a\u03c3\u03c2\u03a3\u00df\u1e9e灯台の話 é\u00c9\n"


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 4)))


def test_the_index_finds_exactly_what_checking_every_key_finds() -> None:
    rng = random.Random(14)
    for _ in range(300):
        entries = tuple(
            LoreEntry(
                keys=tuple(_word(rng) for _ in range(rng.randint(0, 3))),
                content=f"content {n}",
                secondary_keys=tuple(_word(rng) for _ in range(rng.randint(0, 2))),
                selective=rng.random() < 0.3,
                constant=rng.random() < 0.05,
                enabled=rng.random() < 0.95,
                insertion_order=rng.choice([0, 1, 2]),
                case_sensitive=rng.random() < 0.3,
            )
            for n in range(rng.randint(1, 12))
        )
        book = Lorebook(entries=entries, scan_depth=rng.choice([None, 0, 1, 2]))
        for _ in range(5):
            texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))] * 1
            texts += [" ".join(_word(rng) for _ in range(rng.randint(0, 6)))]
            assert active_entries(book, texts) == reference(book, texts), (entries, texts)


def _big_book(count: int) -> Lorebook:
    entries: list[dict[str, Any]] = [
        {"keys": [f"thing{n}", f"other name {n}"], "content": f"Lore number {n}.", "enabled": True}
        for n in range(count)
    ]
    entries += [
        {"keys": [f"灯台{n}"], "content": f"灯台の話 {n}。", "enabled": True} for n in range(99)
    ]
    return Lorebook.from_dict({"entries": entries})


def test_a_100k_entry_book_is_indexed_once_and_a_turn_checks_few_keys() -> None:
    book = _big_book(100_000)
    texts = ["I found thing42 by the sea", "and other name 99999 too, near 灯台7"]
    assert active_entries(book, texts) == ["Lore number 42.", "Lore number 99999.", "灯台の話 7。"]
    index, first_checks = book.index, book.index.checks
    for n in range(50):  # fifty more turns
        assert active_entries(book, [f"thing{n * 7} was here"]) == [f"Lore number {n * 7}."]
        # Only the key filed under "thingN" is checked: the work does not grow with the book.
        assert book.index.checks <= 3
    assert book.index is index  # built on the first turn, kept for the book's life
    # Each key is filed under its rarest word ("99999", not "other" or "name", which 100,000
    # keys share), so even a turn that says the common words checks a handful of keys.
    assert first_checks <= 5


def test_at_most_so_many_entries_and_characters_join_a_turn() -> None:
    many = Lorebook(
        entries=tuple(LoreEntry(keys=("sea",), content=f"Fact {n}.") for n in range(500))
    )
    assert active_entries(many, ["the sea"]) == [f"Fact {n}." for n in range(MAX_ACTIVE_ENTRIES)]
    long = Lorebook(
        entries=(
            LoreEntry(constant=True, content="a" * (MAX_ACTIVE_CHARS - 10)),
            LoreEntry(constant=True, content="b" * 20),  # would go past: left out
            LoreEntry(constant=True, content="short"),
        )
    )
    assert active_entries(long, []) == ["a" * (MAX_ACTIVE_CHARS - 10), "short"]


def test_characters_equal_under_ignorecase_are_filed_alike() -> None:
    # The index files case-insensitive keys by folded characters: a fold that told apart two
    # characters re.IGNORECASE takes as equal would miss a key. Every character is compared
    # with its case variants (and the extra pairs re itself knows of).
    extra: dict[int, tuple[int, ...]] = {}
    try:
        from re import _casefix  # the table re compiles with; private, so optional

        extra = _casefix._EXTRA_CASES
    except (ImportError, AttributeError):
        pass
    fold = lorebook._fold_char
    wrong = []
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        variants = {char.lower(), char.upper(), char.title(), char.casefold()}
        variants |= {char.upper().lower(), char.lower().upper()}
        if len(char.lower()) == 1:
            variants |= {chr(other) for other in extra.get(ord(char.lower()), ())}
        for other in variants:
            if len(other) != 1 or other == char or fold(char) == fold(other):
                continue
            if re.fullmatch(re.escape(char), other, re.IGNORECASE):
                wrong.append((hex(code), hex(ord(other))))
    assert wrong == []
