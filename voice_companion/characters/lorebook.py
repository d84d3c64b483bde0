"""Lorebooks (``character_book``): entries whose content joins the prompt when their keys occur.

Matching follows Character Card V2/V3: an entry is active when it is enabled and either
``constant`` or one of its ``keys`` occurs in the recent conversation (and, when ``selective``,
one of its ``secondary_keys`` too). Keys match case-insensitively unless ``case_sensitive``; a
key that starts or ends with an ASCII letter or digit only matches at a word edge there ("cat"
does not fire on "category"), while other keys (Chinese, Japanese, ...) match anywhere.
Active contents come back ordered by ``insertion_order`` (lower first; ties keep book order).

Not implemented: ``use_regex`` entries never activate (a card's regex would run on every
turn, and Python's backtracking engine has no time limit), V3 decorators other than being
trimmed from the content, ``recursive_scanning`` and ``token_budget`` (the prompt assembler
owns the budget).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

_DECORATOR_LINE = re.compile(r"\A(?:[ \t]*@@[^\n]*(?:\n|\Z))+")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]")


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
    entries are always active; disabled and empty entries never are; each content appears once.
    """
    texts = list(recent_texts)
    if book.scan_depth is not None:
        texts = texts[len(texts) - book.scan_depth :] if book.scan_depth else []
    haystack = "\n".join(texts)
    ordered = sorted(enumerate(book.entries), key=lambda pair: (pair[1].insertion_order, pair[0]))
    out: list[str] = []
    for _, entry in ordered:
        content = _DECORATOR_LINE.sub("", entry.content).strip()
        if not entry.enabled or not content or entry.use_regex:
            continue
        if entry.constant or _fires(entry, haystack):
            out.append(content)
    return out


def _fires(entry: LoreEntry, haystack: str) -> bool:
    if not _any_key(entry.keys, haystack, entry.case_sensitive):
        return False
    if entry.selective and any(k.strip() for k in entry.secondary_keys):
        return _any_key(entry.secondary_keys, haystack, entry.case_sensitive)
    return True


def _any_key(keys: Iterable[str], haystack: str, case_sensitive: bool) -> bool:
    flags = 0 if case_sensitive else re.IGNORECASE
    for raw in keys:
        key = raw.strip()
        if not key:
            continue
        head = r"(?<![A-Za-z0-9])" if _ASCII_WORD.match(key[0]) else ""
        tail = r"(?![A-Za-z0-9])" if _ASCII_WORD.match(key[-1]) else ""
        if re.search(head + re.escape(key) + tail, haystack, flags):
            return True
    return False


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
