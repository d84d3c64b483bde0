"""Persona files: TOML the user owns, read into a ``Persona`` and written back.

A persona file::

    name = "Robin"
    nickname = "Rob"            # optional: how it is called in talk; the name stays its name
    personality = "warm, curious and gently funny"
    speaking_style = "short, natural spoken sentences"
    backstory = "..."
    boundaries = "..."
    greetings = ["Hi, I'm Robin."]
    disclosure = "..."          # how it says it is an AI, the first time
    card = "robin.card.png"     # optional: the character card it was imported from

    [voice]
    name = "joe"                # `voice-companion voices list`
    speaker = -1
    speed = 1.0
    expressiveness = 1.0

    [[examples]]
    user = "I had a long day."
    companion = "Oh, come sit with me. What happened?"

    [[lore]]                    # brought up when a key is said
    keys = ["garden"]
    content = "Robin loves hearing about the user's tomatoes."

With ``card``, the card supplies every field and the keys present in the file override it.
Any mistake is a ``PersonaError`` naming the file and the key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voice_companion.errors import ConfigError, PersonaError
from voice_companion.persona.card_format import ExampleTurn, read_card
from voice_companion.persona.lorebook import Lorebook, LoreEntry
from voice_companion.persona.values import (
    EXPRESSIVENESS_RANGE,
    SPEED_RANGE,
    Persona,
    VoiceChoice,
)
from voice_companion.private import read_regular

MAX_PERSONA_BYTES = 1024 * 1024
"""Largest persona file read; a persona is text, a megabyte is already a novel."""
MAX_TEXT_CHARS = 20_000
"""Longest single text field."""

_TEXT_KEYS = (
    "name",
    "nickname",
    "personality",
    "speaking_style",
    "backstory",
    "boundaries",
    "disclosure",
)
_KEYS = (*_TEXT_KEYS, "greetings", "card", "voice", "examples", "lore")
_VOICE_KEYS = ("name", "speaker", "speed", "expressiveness")

VoiceCheck = Callable[[VoiceChoice], None]
"""Raises ``ConfigError`` when a persona's voice cannot be used (a missing voice file)."""


def read_persona(path: Path, check_voice: VoiceCheck | None = None) -> Persona:
    """The persona in ``path`` (its key is the file name without ``.toml``)."""
    table = _read_table(path)
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise PersonaError(f"{path}: unknown key {unknown[0]!r}; allowed keys: {', '.join(_KEYS)}")
    persona = Persona(name="", key=path.stem)
    if "card" in table:
        card_name = _text(table, "card", path)
        if not card_name or "/" in card_name or card_name.startswith("."):
            raise PersonaError(f"{path}: 'card' must name a card file beside it, got {card_name!r}")
        card_path = path.parent / card_name
        from voice_companion.persona.cards import persona_from_character

        try:
            persona = persona_from_character(read_card(card_path)).replace(key=path.stem)
        except ConfigError as exc:
            raise PersonaError(f"{path}: its card cannot be read: {exc}") from None
    changes: dict[str, Any] = {k: _text(table, k, path) for k in _TEXT_KEYS if k in table}
    if "greetings" in table:
        changes["greetings"] = _texts(table, "greetings", path)
    if "examples" in table:
        changes["examples"] = _examples(table["examples"], path)
    if "voice" in table:
        changes["voice"] = _voice(table["voice"], path)
    if "lore" in table:
        changes["lorebook"] = _lore(table["lore"], path)
    persona = persona.replace(**changes)
    if not persona.name.strip():
        raise PersonaError(f"{path}: 'name' is missing or empty")
    if check_voice is not None:
        try:
            check_voice(persona.voice)
        except PersonaError:
            raise
        except ConfigError as exc:
            raise PersonaError(f"{path}: [voice] {exc}") from None
    return persona


def persona_toml(persona: Persona, card: str = "", only: tuple[str, ...] | None = None) -> str:
    """``persona`` as the text of a persona file. With ``card``, the file refers to that card
    and holds only the keys in ``only`` (what the user set on top of the card)."""
    keys = only if card and only is not None else _KEYS
    lines = [f"# Persona {persona.name!r}: edit freely, then `voice-companion persona use`."]
    if card:
        lines += [
            "# Made from a character card, which supplies everything not set here. Any key of a",
            "# persona file set here overrides the card (see config/personas/robin.toml), e.g.",
            '# speaking_style = "short spoken sentences", or a [voice] table.',
            f"card = {_quote(card)}",
        ]
    for key in _TEXT_KEYS:
        value = getattr(persona, key)
        if key in keys and (value or key == "name"):
            lines.append(f"{key} = {_quote(value)}")
    if "greetings" in keys and persona.greetings:
        lines.append("greetings = [" + ", ".join(_quote(g) for g in persona.greetings) + "]")
    if "voice" in keys:
        v = persona.voice
        lines += [
            "",
            "[voice]",
            f"name = {_quote(v.name)}",
            f"speaker = {v.speaker}",
            f"speed = {v.speed!r}",
            f"expressiveness = {v.expressiveness!r}",
        ]
    if "examples" in keys:
        for exchange in persona.examples:
            user = [t.text for t in exchange if t.role == "user"]
            said = [t.text for t in exchange if t.role == "assistant"]
            if user and said:
                lines += [
                    "",
                    "[[examples]]",
                    f"user = {_quote(user[0])}",
                    f"companion = {_quote(said[0])}",
                ]
    if "lore" in keys and persona.lorebook is not None:
        for entry in persona.lorebook.entries:
            if entry.enabled and entry.keys and entry.content.strip():
                lines += [
                    "",
                    "[[lore]]",
                    "keys = [" + ", ".join(_quote(k) for k in entry.keys) + "]",
                    f"content = {_quote(entry.content)}",
                ]
    return "\n".join(lines) + "\n"


def _read_table(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_PERSONA_BYTES:
            raise PersonaError(
                f"{path}: {size} bytes is too large for a persona file "
                f"(at most {MAX_PERSONA_BYTES // 1024} KiB)"
            )
        # A regular file only: /dev/zero (size 0) or a fifo would be read or waited on forever.
        return tomllib.loads(read_regular(path, MAX_PERSONA_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise PersonaError(f"{path}: no such persona file") from None
    except OSError as exc:
        raise PersonaError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PersonaError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise PersonaError(f"{path}: not valid TOML: {exc}") from None


def _text(table: dict[str, Any], key: str, path: Path) -> str:
    value = table[key]
    if not isinstance(value, str):
        raise PersonaError(f"{path}: {key!r} must be text, got {_kind(value)}")
    if len(value) > MAX_TEXT_CHARS:
        raise PersonaError(f"{path}: {key!r} is longer than {MAX_TEXT_CHARS} characters")
    return value.strip()


def _texts(table: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = table[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PersonaError(f"{path}: {key!r} must be a list of texts, got {_kind(value)}")
    return tuple(_text({key: v}, key, path) for v in value if v.strip())


def _examples(value: object, path: Path) -> tuple[tuple[ExampleTurn, ...], ...]:
    if not isinstance(value, list):
        raise PersonaError(f"{path}: 'examples' must be [[examples]] tables, got {_kind(value)}")
    out: list[tuple[ExampleTurn, ...]] = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict) or set(item) - {"user", "companion"}:
            raise PersonaError(
                f"{path}: examples #{n} must have exactly the keys 'user' and 'companion'"
            )
        turns = []
        if "user" in item:
            turns.append(ExampleTurn("user", _text(item, "user", path)))
        if "companion" in item:
            turns.append(ExampleTurn("assistant", _text(item, "companion", path)))
        out.append(tuple(turns))
    return tuple(out)


def _lore(value: object, path: Path) -> Lorebook | None:
    """``[[lore]]`` tables, each ``keys`` (words that bring it up) and ``content``."""
    if not isinstance(value, list):
        raise PersonaError(f"{path}: 'lore' must be [[lore]] tables, got {_kind(value)}")
    entries = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict) or set(item) != {"keys", "content"}:
            raise PersonaError(f"{path}: lore #{n} must have exactly the keys 'keys' and 'content'")
        keys = _texts(item, "keys", path)
        if not keys:
            raise PersonaError(f"{path}: lore #{n} needs at least one key")
        entries.append(LoreEntry(keys=keys, content=_text(item, "content", path)))
    return Lorebook(entries=tuple(entries)) if entries else None


def _voice(value: object, path: Path) -> VoiceChoice:
    if not isinstance(value, dict):
        raise PersonaError(f"{path}: [voice] must be a table, got {_kind(value)}")
    unknown = sorted(set(value) - set(_VOICE_KEYS))
    if unknown:
        raise PersonaError(
            f"{path}: unknown key {unknown[0]!r} in [voice]; allowed: {', '.join(_VOICE_KEYS)}"
        )
    voice = VoiceChoice()
    name = value.get("name", voice.name)
    if not isinstance(name, str):
        raise PersonaError(f"{path}: [voice] name must be a voice name, got {_kind(name)}")
    speaker = value.get("speaker", voice.speaker)
    if not isinstance(speaker, int) or isinstance(speaker, bool) or speaker < -1:
        raise PersonaError(f"{path}: [voice] speaker must be a number from -1, got {speaker!r}")
    speed = _number(value, "speed", voice.speed, SPEED_RANGE, path)
    expressive = _number(value, "expressiveness", voice.expressiveness, EXPRESSIVENESS_RANGE, path)
    return VoiceChoice(name.strip(), speaker, speed, expressive)


def _number(
    table: dict[str, Any], key: str, default: float, bounds: tuple[float, float], path: Path
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PersonaError(f"{path}: [voice] {key} must be a number, got {value!r}")
    lo, hi = bounds
    if not lo <= value <= hi:
        raise PersonaError(f"{path}: [voice] {key} = {value} is outside {lo} to {hi}")
    return float(value)


def _quote(text: str) -> str:
    """A TOML basic string. JSON's escapes are TOML's, except that TOML also forbids DEL."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _kind(value: object) -> str:
    return {dict: "a table", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )
