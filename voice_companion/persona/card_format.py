"""Character Card V2 and V3: import and export as JSON and as PNG.

A PNG card carries the card JSON, UTF-8 then base64, in a ``tEXt`` chunk: keyword ``chara``
for V2, ``ccv3`` for V3. Reading prefers ``ccv3`` when both exist; writing writes both, so V2-only
tools still load the card. A :class:`Character` keeps the card it was read from as JSON text,
and export writes that card back with only the fields the user changed written over it:
unknown ``extensions``, unknown fields and anything else we do not model survive untouched.

Every failure is a :class:`CardError` with a one-line message, raised before anything is
written; files are written to a temporary name and renamed, so nothing is ever half-written.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from voice_companion.atomic import write_atomic
from voice_companion.errors import CardError
from voice_companion.persona.lorebook import (
    Lorebook,
    _string,
    _strings,
    active_entries,
)
from voice_companion.private import read_regular

MAX_CARD_BYTES = 32 * 1024 * 1024
"""Largest card file (JSON or PNG) that is read at all, in bytes; bigger ones are refused."""

SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
_SPECS = {SPEC_V2: "2.0", SPEC_V3: "3.0"}
_V3_ONLY = (
    "group_only_greetings",
    "nickname",
    "creator_notes_multilingual",
    "source",
    "creation_date",
    "modification_date",
    "assets",
)
_LIST_FIELDS = ("alternate_greetings", "group_only_greetings", "tags")
_BACKFILL_NOTE = (
    "This character card is Character Card V3, but it is loaded as a Character Card V2. "
    "Please use a Character Card V3 compatible application to use this character card properly."
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MACRO = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(bot|char|user)>", re.IGNORECASE)


@dataclass(frozen=True)
class ExampleTurn:
    """One line of an example exchange: who speaks (``user`` or ``assistant``) and what."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class Character:
    """A character from a card: the fields we use, and the whole card as it was read.

    ``card_json`` is the source card (``{"spec": ..., "data": {...}}``) as JSON text; it is
    empty for a character made here. Change fields with ``dataclasses.replace``; export keeps
    everything in ``card_json`` that the changed fields do not overwrite. ``spec`` is the
    version written by default (:data:`SPEC_V2` or :data:`SPEC_V3`).
    """

    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: tuple[str, ...] = ()
    group_only_greetings: tuple[str, ...] = ()
    nickname: str = ""
    creator_notes: str = ""
    creator: str = ""
    character_version: str = ""
    tags: tuple[str, ...] = ()
    character_book: Lorebook | None = None
    spec: str = SPEC_V3
    card_json: str = ""

    @property
    def raw(self) -> dict[str, Any]:
        """A fresh copy of the card as read (an empty V3 card for a character made here)."""
        if not self.card_json:
            return {"spec": SPEC_V3, "spec_version": "3.0", "data": {}}
        card: dict[str, Any] = json.loads(self.card_json)
        return card

    @property
    def extensions(self) -> dict[str, Any]:
        """A fresh copy of the card's ``data.extensions``, unknown keys included."""
        ext = self.raw["data"].get("extensions")
        return ext if isinstance(ext, dict) else {}

    @property
    def display_name(self) -> str:
        """What ``{{char}}`` stands for: the V3 nickname when set, else the name."""
        return self.nickname or self.name

    def substitute(self, text: str, user: str) -> str:
        return substitute(text, self.display_name, user)

    def greetings(self, user: str = "User") -> tuple[str, ...]:
        """``first_mes`` then each ``alternate_greetings``, substituted; blank ones left out."""
        texts = (self.first_mes, *self.alternate_greetings)
        return tuple(self.substitute(t, user).strip() for t in texts if t.strip())

    def example_exchanges(self, user: str = "User") -> tuple[tuple[ExampleTurn, ...], ...]:
        """``mes_example`` split into exchanges at ``<START>``, each a run of speaker turns.

        A line opening with ``{{user}}:``/``<USER>:`` (or the user's name) starts a user turn;
        ``{{char}}:``/``<BOT>:`` (or the character's name or nickname) starts a character
        turn; other lines continue the turn before them (text before any speaker is the
        character's).
        """
        names = [re.escape(n) for n in {self.name, self.nickname} if n.strip()]
        char = r"\{\{\s*char\s*\}\}|<bot>|<char>" + "".join("|" + n for n in names)
        user_pat = r"\{\{\s*user\s*\}\}|<user>" + (f"|{re.escape(user)}" if user.strip() else "")
        speaker = re.compile(
            rf"^[ \t]*(?:(?P<user>{user_pat})|(?P<char>{char}))[ \t]*:[ \t]?", re.I
        )
        exchanges: list[tuple[ExampleTurn, ...]] = []
        for block in re.split(r"<start>", self.mes_example, flags=re.IGNORECASE):
            turns: list[tuple[Literal["user", "assistant"], list[str]]] = []
            for line in block.splitlines():
                m = speaker.match(line)
                if m:
                    turns.append(("user" if m.group("user") else "assistant", [line[m.end() :]]))
                elif turns:
                    turns[-1][1].append(line)
                elif line.strip():
                    turns.append(("assistant", [line]))
            exchange = tuple(
                ExampleTurn(role, self.substitute("\n".join(lines), user).strip())
                for role, lines in turns
                if "".join(lines).strip()
            )
            if exchange:
                exchanges.append(exchange)
        return tuple(exchanges)

    def lore(self, recent_texts: list[str], user: str = "User") -> list[str]:
        """The lorebook entries active for these messages, substituted, in insertion order."""
        if self.character_book is None:
            return []
        return [self.substitute(t, user) for t in active_entries(self.character_book, recent_texts)]


def substitute(text: str, char: str, user: str) -> str:
    """Replace ``{{char}}``/``<BOT>``/``<CHAR>`` and ``{{user}}``/``<USER>`` (any case), once.

    One pass, so a name that itself contains ``{{user}}`` is not expanded again.
    """

    def name(m: re.Match[str]) -> str:
        which = (m.group(1) or m.group(2)).lower()
        return user if which == "user" else char

    return _MACRO.sub(name, text)


# ---------------------------------------------------------------------------- reading


def read_card(path: str | os.PathLike[str], *, max_bytes: int = MAX_CARD_BYTES) -> Character:
    """Read a ``.json`` or ``.png`` character card (other names: sniffed from the content)."""
    p = Path(path)
    blob = _read_limited(p, max_bytes)
    suffix = p.suffix.lower()
    is_png = blob.startswith(_PNG_SIGNATURE)
    if suffix == ".png" and not is_png:
        raise CardError(f"{p}: not a PNG image (the PNG signature is missing)")
    if suffix == ".json" or (suffix != ".png" and not is_png):
        return parse_card(_decode_json(blob, p, "file"), p)
    chunks = _png_text_chunks(blob, p)
    for keyword in ("ccv3", "chara"):
        if keyword in chunks:
            return parse_card(_decode_chunk(chunks[keyword], keyword, p), p)
    raise CardError(f"{p}: PNG holds no character card (no 'ccv3' or 'chara' tEXt chunk)")


def parse_card(card: object, source: str | os.PathLike[str] = "card") -> Character:
    """Validate a decoded card (V2 or V3) and build its :class:`Character`."""
    where = Path(source) if not isinstance(source, str) else source
    if not isinstance(card, dict):
        raise CardError(f"{where}: a card must be a JSON object, not {type(card).__name__}")
    spec = card.get("spec")
    if spec not in _SPECS:
        shown = "missing" if spec is None else repr(spec)[:40]
        raise CardError(
            f"{where}: not a Character Card V2 or V3 (spec is {shown}, "
            f"expected '{SPEC_V2}' or '{SPEC_V3}')"
        )
    data = card.get("data")
    if not isinstance(data, dict):
        raise CardError(f"{where}: card has no 'data' object")
    try:
        values: dict[str, Any] = {}
        for f in fields(Character):
            if f.name in ("character_book", "spec", "card_json"):
                continue
            if f.name in _LIST_FIELDS:
                values[f.name] = _strings(data, f.name, "data")
            else:
                values[f.name] = _string(data, f.name, "data")
        ext = data.get("extensions")
        if ext is not None and not isinstance(ext, dict):
            raise ValueError("data.extensions must be an object")
        book = data.get("character_book")
        lorebook = None if book is None else Lorebook.from_dict(book, "data.character_book")
    except ValueError as exc:
        raise CardError(f"{where}: {exc}") from None
    if not values["name"].strip():
        raise CardError(f"{where}: the card has no name (data.name is empty)")
    return Character(
        **values,
        character_book=lorebook,
        spec=spec,
        card_json=json.dumps(card, ensure_ascii=False),
    )


def _read_limited(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise CardError(_too_large(path, size, max_bytes))
        # A regular file only: a fifo would be waited on forever, /dev/zero read endlessly.
        blob = read_regular(path, max_bytes)
    except OSError as exc:
        raise CardError(f"{path}: cannot read the card ({exc.strerror or exc})") from None
    if len(blob) > max_bytes:
        raise CardError(_too_large(path, len(blob), max_bytes))
    if not blob.strip():
        raise CardError(f"{path}: the file is empty")
    return blob


def _too_large(path: Path, size: int, max_bytes: int) -> str:
    mib = 2**20
    return (
        f"{path}: too large for a character card "
        f"({size / mib:.1f} MB, limit {max_bytes / mib:.0f} MB)"
    )


def _decode_json(blob: bytes, path: Path, what: str) -> object:
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CardError(f"{path}: the card {what} is not UTF-8 text") from None
    # Checked before parsing: json's recursion on hostile nesting can exhaust the stack of
    # whatever runs it (seen under pytest: an unraisable RecursionError) instead of failing.
    if _nesting_depth(text) > MAX_NESTING:
        raise CardError(f"{path}: the card {what} is nested too deeply")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CardError(f"{path}: the card {what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise CardError(f"{path}: the card {what} is nested too deeply") from None


MAX_NESTING = 256
"""Deepest nesting of lists and objects a card may have (real cards use under ten)."""

_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _nesting_depth(text: str) -> int:
    """The deepest nesting of brackets outside strings (the regex skips strings whole)."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _decode_chunk(value: bytes, keyword: str, path: Path) -> object:
    text = re.sub(rb"\s+", b"", value)
    text += b"=" * (-len(text) % 4)
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CardError(f"{path}: the '{keyword}' chunk is not valid base64") from None
    return _decode_json(blob, path, f"in the '{keyword}' chunk")


def _png_chunks(blob: bytes, path: Path) -> list[tuple[bytes, bytes]]:
    """(type, data) for each chunk up to IEND; checks lengths and CRCs."""
    if not blob.startswith(_PNG_SIGNATURE):
        raise CardError(f"{path}: not a PNG image (the PNG signature is missing)")
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 12 > len(blob):
            raise CardError(f"{path}: PNG is truncated (no IEND chunk)")
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        kind = blob[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(blob):
            raise CardError(f"{path}: PNG is truncated inside a {kind!r} chunk")
        data = blob[pos + 8 : end]
        (crc,) = struct.unpack(">I", blob[end : end + 4])
        if zlib.crc32(kind + data) != crc:
            raise CardError(f"{path}: PNG is corrupt (bad CRC in a {kind.decode('latin-1')} chunk)")
        chunks.append((kind, data))
        pos = end + 4
        if kind == b"IEND":
            return chunks


def _png_text_chunks(blob: bytes, path: Path) -> dict[str, bytes]:
    """The first ``tEXt`` value for each keyword."""
    out: dict[str, bytes] = {}
    for kind, data in _png_chunks(blob, path):
        if kind == b"tEXt" and b"\x00" in data:
            keyword, _, value = data.partition(b"\x00")
            out.setdefault(keyword.decode("latin-1"), value)
    return out


# ---------------------------------------------------------------------------- writing


def card_dict(character: Character, spec: str | None = None) -> dict[str, Any]:
    """The card as JSON-ready data, in ``spec`` (default: the character's own version).

    Starts from the card as read and writes over it only the fields that differ from it (and
    any required field it lacks), so untouched fields, unknown fields and ``extensions`` are
    kept exactly. V3 → V2 drops the V3-only fields and marks ``creator_notes`` as backfilled.
    """
    target = spec or character.spec
    if target not in _SPECS:
        raise CardError(f"unknown card spec {target!r}, expected '{SPEC_V2}' or '{SPEC_V3}'")
    card = character.raw
    data: dict[str, Any] = card["data"]
    base = parse_card(card) if character.card_json else Character(name="")
    for f in fields(Character):
        if f.name in ("spec", "card_json", "character_book"):
            continue
        value = getattr(character, f.name)
        optional = f.name in _V3_ONLY
        if value != getattr(base, f.name) or (f.name not in data and not optional):
            data[f.name] = list(value) if isinstance(value, tuple) else value
    if character.character_book != base.character_book or not character.card_json:
        if character.character_book is None:
            data.pop("character_book", None)
        else:
            data["character_book"] = character.character_book.to_dict()
    data.setdefault("extensions", {})
    if target == SPEC_V2:
        for key in _V3_ONLY:
            data.pop(key, None)
        if card["spec"] == SPEC_V3:
            notes = data.get("creator_notes", "")
            data["creator_notes"] = f"{_BACKFILL_NOTE}\n\n{notes}" if notes else _BACKFILL_NOTE
    else:
        data.setdefault("group_only_greetings", [])
    card["spec"] = target
    card["spec_version"] = _SPECS[target]
    return card


def write_card(
    character: Character,
    path: str | os.PathLike[str],
    *,
    image: str | os.PathLike[str] | bytes | None = None,
    spec: str | None = None,
) -> None:
    """Write a card to ``path``: ``.json`` in ``spec`` (default: its own), or ``.png``.

    A PNG gets both chunks, ``chara`` (V2) and ``ccv3`` (V3), embedded into ``image`` (a PNG
    file or its bytes; any card chunks it already holds are replaced) or into a 1x1 placeholder.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".json":
        text = json.dumps(card_dict(character, spec), ensure_ascii=False, indent=2) + "\n"
        _write_atomic(p, text.encode("utf-8"))
    elif suffix == ".png":
        if image is None:
            base = _placeholder_png()
        elif isinstance(image, bytes):
            base = image
        else:
            base = _read_limited(Path(image), MAX_CARD_BYTES)
        chunks = [
            c
            for c in _png_chunks(base, Path(image) if isinstance(image, str | os.PathLike) else p)
            if not (c[0] == b"tEXt" and c[1].partition(b"\x00")[0] in (b"chara", b"ccv3"))
        ]
        cards = [
            (b"tEXt", keyword + b"\x00" + _b64(card_dict(character, version)))
            for keyword, version in ((b"chara", SPEC_V2), (b"ccv3", SPEC_V3))
        ]
        out = _PNG_SIGNATURE + b"".join(_chunk(k, d) for k, d in chunks[:-1] + cards + chunks[-1:])
        _write_atomic(p, out)
    else:
        raise CardError(f"{p}: a card file must end in .json or .png")


def _b64(card: dict[str, Any]) -> bytes:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _placeholder_png() -> bytes:
    """A 1x1 opaque grey PNG."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\x80\x80\x80")  # filter byte, then one grey pixel
    return _PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def _write_atomic(path: Path, blob: bytes) -> None:
    try:
        write_atomic(path, blob)
    except OSError as exc:
        raise CardError(f"{path}: cannot write the card ({exc.strerror or exc})") from None
