"""Lorebooks (``character_book``): entries whose content joins the prompt when their keys occur.

Matching follows Character Card V2/V3: an entry is active when it is enabled and either
``constant`` or one of its ``keys`` occurs in the recent conversation (and, when ``selective``,
one of its ``secondary_keys`` too). Keys match case-insensitively unless ``case_sensitive``; a
key that starts or ends with an ASCII letter or digit only matches at a word edge there ("cat"
does not fire on "category"), while other keys (Chinese, Japanese, ...) match anywhere.
Active contents come back ordered by ``insertion_order`` (lower first; ties keep book order).

Bounded: the keys are indexed once per book (by their first word, or their first character
for keys without a word edge there), so a turn only checks the keys whose first word or
character occurs in the recent words, however many entries the card has; at most
``MAX_ACTIVE_ENTRIES`` entries and ``MAX_ACTIVE_CHARS`` characters of them join a turn.

Not implemented: ``use_regex`` entries never activate (a card's regex would run on every
turn, and Python's backtracking engine has no time limit), V3 decorators other than being
trimmed from the content, ``recursive_scanning`` and ``token_budget`` (the prompt assembler
owns the budget).
"""

from __future__ import annotations

import functools
import gc
import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

_DECORATOR_LINE = re.compile(r"\A(?:[ \t]*@@[^\n]*(?:\n|\Z))+")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]")

MAX_ACTIVE_ENTRIES = 64
"""Most lorebook entries that join one turn (the first in insertion order)."""
MAX_ACTIVE_CHARS = 16_000
"""Most characters of lorebook content that join one turn; an entry that would go past it is
left out."""

# Besides ASCII letters and digits, the only characters ``[A-Za-z0-9]`` matches under
# re.IGNORECASE (İ ı ſ and the Kelvin sign), with the letter each is equal to there.
_ASCII_TWINS = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
# Pairs re.IGNORECASE takes as equal that no case mapping of Python's joins (ΐ ΰ and the
# "st" ligatures); found by comparing every character with its case variants.
_CHAR_TWINS = str.maketrans({"\u1fd3": "\u0390", "\u1fe3": "\u03b0", "\ufb05": "\ufb06"})
_ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)
_ANY_CASE_ALNUM = _ASCII_ALNUM | {"\u0130", "\u0131", "\u017f", "\u212a"}
_WORDS = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class LoreEntry:
    """One lorebook entry; ``entry_json`` is the entry as read, kept so export loses nothing."""

    keys: tuple[str, ...] = ()
    content: str = ""
    secondary_keys: tuple[str, ...] = ()
    selective: bool = False
    constant: bool = False
    enabled: bool = True
    insertion_order: float = 0
    case_sensitive: bool = False
    use_regex: bool = False
    name: str = ""
    entry_json: str = ""

    @classmethod
    def from_dict(cls, obj: object, where: str) -> LoreEntry:
        """Validate one entry of a card; raises ``ValueError`` naming the bad field."""
        if not isinstance(obj, dict):
            raise ValueError(f"{where} must be an object")
        return cls(
            keys=_strings(obj, "keys", where),
            content=_string(obj, "content", where),
            secondary_keys=_strings(obj, "secondary_keys", where),
            selective=_bool(obj, "selective", where, default=False),
            constant=_bool(obj, "constant", where, default=False),
            enabled=_bool(obj, "enabled", where, default=True),
            insertion_order=_number(obj, "insertion_order", where),
            case_sensitive=_bool(obj, "case_sensitive", where, default=False),
            use_regex=_bool(obj, "use_regex", where, default=False),
            name=_string(obj, "name", where),
            entry_json=json.dumps(obj, ensure_ascii=False),
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry as card JSON: the original entry with this value's fields written over it."""
        out: dict[str, Any] = json.loads(self.entry_json) if self.entry_json else {}
        base = LoreEntry.from_dict(out, "entry") if out else LoreEntry()
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "entry_json":
                continue
            if value != getattr(base, f.name) or (f.name in _REQUIRED and f.name not in out):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        out.setdefault("extensions", {})
        return out


_REQUIRED = frozenset({"keys", "content", "enabled", "insertion_order"})


@dataclass(frozen=True)
class Lorebook:
    """A card's ``character_book``; ``book_json`` is the book as read, without its entries."""

    entries: tuple[LoreEntry, ...] = ()
    name: str = ""
    scan_depth: int | None = None
    book_json: str = ""

    @classmethod
    def from_dict(cls, obj: object, where: str = "character_book") -> Lorebook:
        """Validate a card's lorebook; raises ``ValueError`` naming the bad field."""
        if not isinstance(obj, dict):
            raise ValueError(f"{where} must be an object")
        entries = obj.get("entries", [])
        if not isinstance(entries, list):
            raise ValueError(f"{where}.entries must be a list")
        depth = obj.get("scan_depth")
        if depth is not None and (
            isinstance(depth, bool) or not isinstance(depth, int | float) or depth < 0
        ):
            raise ValueError(f"{where}.scan_depth must be a number of messages")
        rest = {k: v for k, v in obj.items() if k != "entries"}
        return cls(
            entries=tuple(
                LoreEntry.from_dict(e, f"{where}.entries[{i}]") for i, e in enumerate(entries)
            ),
            name=_string(obj, "name", where),
            scan_depth=None if depth is None else int(depth),
            book_json=json.dumps(rest, ensure_ascii=False),
        )

    @functools.cached_property
    def index(self) -> LoreIndex:
        """The entries indexed for scanning: built the first time a turn needs it, once."""
        return LoreIndex(self.entries)

    def to_dict(self) -> dict[str, Any]:
        """The book as card JSON, keeping every field of the original that was not changed."""
        out: dict[str, Any] = json.loads(self.book_json) if self.book_json else {}
        base = Lorebook.from_dict(out) if out else Lorebook()
        if self.name != base.name:
            out["name"] = self.name
        if self.scan_depth != base.scan_depth:
            if self.scan_depth is None:
                out.pop("scan_depth", None)
            else:
                out["scan_depth"] = self.scan_depth
        out.setdefault("extensions", {})
        out["entries"] = [e.to_dict() for e in self.entries]
        return out


def active_entries(book: Lorebook, recent_texts: Iterable[str]) -> list[str]:
    """Contents of the entries active for these messages (oldest first), in insertion order.

    Only the last ``book.scan_depth`` messages are scanned when the book sets it. Constant
    entries are always active; disabled and empty entries never are; each entry appears once;
    at most ``MAX_ACTIVE_ENTRIES`` entries and ``MAX_ACTIVE_CHARS`` characters.
    """
    texts = list(recent_texts)
    if book.scan_depth is not None:
        texts = texts[len(texts) - book.scan_depth :] if book.scan_depth else []
    return book.index.scan("\n".join(texts))


class LoreIndex:
    """A book's entries in insertion order, with their keys indexed for scanning.

    A key can only match where each of its whole words (letters and digits with a word edge
    on both sides: the key's own punctuation or spaces, or its ends when those are letters or
    digits) is a whole word of the text, and each of its characters is in the text. So each
    key is filed under the one of its words (else of its characters) that the fewest keys
    share, and a scan checks only the keys filed under the words and characters of the text,
    each with the exact rule of the module's docstring. ``checks`` counts the keys the last
    scan checked.
    """

    def __init__(self, entries: Iterable[LoreEntry]) -> None:
        # Hundreds of thousands of small tuples and no cycles: the cyclic collector would
        # walk the whole heap again and again meanwhile (60% of the time for 100k entries).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._build(entries)
        finally:
            if collecting:
                gc.enable()
        self.checks = 0

    def _build(self, entries: Iterable[LoreEntry]) -> None:
        ordered = sorted(enumerate(entries), key=lambda pair: (pair[1].insertion_order, pair[0]))
        self._contents: list[str] = []
        self._constant: list[int] = []
        self._selective: list[bool] = []  # needs a secondary key as well
        keys: list[tuple[_Filed, bool, list[_Term]]] = []
        for _, entry in ordered:
            content = _DECORATOR_LINE.sub("", entry.content).strip()
            if not entry.enabled or not content or entry.use_regex:
                continue
            rank = len(self._contents)
            self._contents.append(content)
            secondary = [k.strip() for k in entry.secondary_keys if k.strip()]
            self._selective.append(entry.selective and bool(secondary))
            if entry.constant:
                self._constant.append(rank)
                continue
            sensitive = entry.case_sensitive
            for key in dict.fromkeys(k.strip() for k in entry.keys if k.strip()):
                keys.append(((rank, False, key), sensitive, _terms(key, sensitive)))
            if entry.selective:
                for key in dict.fromkeys(secondary):
                    keys.append(((rank, True, key), sensitive, _terms(key, sensitive)))
        shared = Counter(term for _, _, terms in keys for term in terms)
        # (case sensitive?, word or character) -> the keys filed under it
        self._filed: dict[tuple[bool, _Term], list[_Filed]] = {}
        for filed, sensitive, terms in keys:
            rarest = min(terms, key=lambda term: shared[term])
            self._filed.setdefault((sensitive, rarest), []).append(filed)

    def scan(self, haystack: str) -> list[str]:
        """The contents active for ``haystack``, in insertion order, within the caps."""
        self.checks = 0
        found: dict[int, set[bool]] = {}  # rank -> which of its key kinds occur
        for sensitive, candidates in self._candidates(haystack):
            for rank, secondary, key in candidates:
                if secondary in found.get(rank, ()):
                    continue  # one key of this kind already occurs
                self.checks += 1
                if _key_pattern(key, sensitive).search(haystack):
                    found.setdefault(rank, set()).add(secondary)
        active = set(self._constant)
        for rank, kinds in found.items():
            if False in kinds and (True in kinds or not self._selective[rank]):
                active.add(rank)
        out: list[str] = []
        spent = 0
        for rank in sorted(active):
            content = self._contents[rank]
            if spent + len(content) > MAX_ACTIVE_CHARS:
                continue
            out.append(content)
            spent += len(content)
            if len(out) >= MAX_ACTIVE_ENTRIES:
                break
        return out

    def _candidates(self, haystack: str) -> Iterable[tuple[bool, list[_Filed]]]:
        chars = set(haystack)
        for sensitive in (True, False):
            if sensitive:
                words = set(_WORDS.findall(haystack))
                folded = chars
            else:
                words = set(_WORDS.findall(_fold_words(haystack)))
                folded = {_fold_char(c) for c in chars}
            terms = [("w", w) for w in words] + [("c", c) for c in folded]
            for term in terms:
                if bucket := self._filed.get((sensitive, term)):
                    yield sensitive, bucket


_Filed = tuple[int, bool, str]
"""A key as filed in the index: its entry's rank, whether it is a secondary key, the key."""
_Term = tuple[str, str]
"""("w", a whole word) or ("c", a character) that a text must hold for a key to match."""


def _terms(key: str, case_sensitive: bool) -> list[_Term]:
    """The whole words a match of ``key`` must have in the text, else its characters."""
    runs = _WORDS.findall(key if case_sensitive else _fold_words(key))
    if runs:
        # A run at an end of the key is a whole word only if the key has a word edge there:
        # not so when that end is one of the four twins (then the run reaches the end).
        word_chars = _ASCII_ALNUM if case_sensitive else _ANY_CASE_ALNUM
        start = 1 if key[0] in word_chars and key[0] not in _ASCII_ALNUM else 0
        end = len(runs) - (1 if key[-1] in word_chars and key[-1] not in _ASCII_ALNUM else 0)
        if start < end:
            return [("w", run) for run in runs[start:end]]
    return [("c", c if case_sensitive else _fold_char(c)) for c in dict.fromkeys(key)]


def _fold_words(text: str) -> str:
    """``text`` with its words as re.IGNORECASE compares them: the four twins become the
    ASCII letters they equal, then all is lower case. Its runs of ASCII letters and digits are
    then exactly the original's runs of characters ``[A-Za-z0-9]`` matches ignoring case (no
    other character lowers to an ASCII letter or digit)."""
    return text.translate(_ASCII_TWINS).lower()


def _fold_char(char: str) -> str:
    """One character as re.IGNORECASE sees it: characters it takes as equal fold alike."""
    char = char.translate(_ASCII_TWINS).translate(_CHAR_TWINS)
    for folded in (char.upper().lower(), char.lower()):
        if len(folded) == 1:
            return folded
    return char


@functools.lru_cache(maxsize=4096)
def _key_pattern(key: str, case_sensitive: bool) -> re.Pattern[str]:
    head = r"(?<![A-Za-z0-9])" if _ASCII_WORD.match(key[0]) else ""
    tail = r"(?![A-Za-z0-9])" if _ASCII_WORD.match(key[-1]) else ""
    return re.compile(head + re.escape(key) + tail, 0 if case_sensitive else re.IGNORECASE)


# Field validation shared with card.py: missing fields take the default, wrong types are errors.


def _string(obj: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be a string, not {_kind(value)}")
    return value


def _strings(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}.{key} must be a list of strings")
    return tuple(value)


def _bool(obj: Mapping[str, Any], key: str, where: str, *, default: bool) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key} must be true or false, not {_kind(value)}")
    return value


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}.{key} must be a number, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
