"""Character cards (V2/V3) to personas and back.

A card's fields map onto a persona: ``description`` and ``scenario`` are its backstory,
``personality`` its personality, ``first_mes`` and ``alternate_greetings`` its greetings,
``mes_example`` its example exchanges, ``system_prompt`` and ``post_history_instructions`` its
instructions, ``character_book`` its lorebook. What a card has no field for (speaking style,
boundaries, the AI disclosure, the voice) travels in ``extensions.voice_companion``, so a
persona exported and imported again comes back whole. Export starts from the card as imported
and writes over it only what the user changed: everything else leaves byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from voice_companion.persona.card_format import Character, substitute
from voice_companion.persona.values import USER_PLACEHOLDER, Persona, VoiceChoice

EXTENSION = "voice_companion"
"""Our key in a card's ``data.extensions``."""
_EXTRA_TEXT = ("speaking_style", "boundaries", "disclosure")


def persona_from_character(character: Character) -> Persona:
    # The card's name is the persona's name (and so its key); a V3 nickname is how it is
    # called in the card's texts ({{char}}) and in talk.
    called = character.display_name.strip() or "Companion"
    name = character.name.strip() or called
    nickname = called if called != name else ""

    def sub(text: str) -> str:
        return substitute(text, called, USER_PLACEHOLDER).strip()

    backstory = sub(character.description)
    if character.scenario.strip():
        backstory = (backstory + "\n" if backstory else "") + "Scenario: " + sub(character.scenario)
    extra = character.extensions.get(EXTENSION)
    extra = extra if isinstance(extra, dict) else {}
    persona = Persona(
        name=name,
        nickname=nickname,
        personality=sub(character.personality),
        backstory=backstory,
        greetings=tuple(
            g.strip() for g in (character.first_mes, *character.alternate_greetings) if g.strip()
        ),
        examples=character.example_exchanges(user="User"),
        instructions=sub(character.system_prompt),
        after_history=sub(character.post_history_instructions),
        lorebook=character.character_book,
    )
    changes: dict[str, Any] = {
        k: v.strip() for k in _EXTRA_TEXT if isinstance(v := extra.get(k), str)
    }
    voice = extra.get("voice")
    if isinstance(voice, dict):
        changes["voice"] = _voice_from(voice)
    return persona.replace(**changes)


def character_from_persona(persona: Persona, card: Character | None = None) -> Character:
    """The card for ``persona``: ``card`` (as imported) with the persona's changes written over
    it, or a new card carrying the whole persona."""
    if card is not None:
        return _changed_card(persona, card)
    ours: dict[str, Any] = {k: getattr(persona, k) for k in _EXTRA_TEXT if getattr(persona, k)}
    ours["voice"] = dataclasses.asdict(persona.voice)
    raw = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {"name": persona.name, "extensions": {EXTENSION: ours}},
    }
    return Character(
        name=persona.name,
        nickname=persona.nickname,
        description=persona.backstory,
        personality=persona.personality,
        first_mes=persona.greetings[0] if persona.greetings else "",
        alternate_greetings=persona.greetings[1:],
        mes_example=_mes_example(persona),
        system_prompt=persona.instructions,
        post_history_instructions=persona.after_history,
        character_book=persona.lorebook,
        card_json=json.dumps(raw, ensure_ascii=False),
    )


def _changed_card(persona: Persona, card: Character) -> Character:
    """Write onto ``card`` only what differs between ``persona`` and the card's own persona."""
    base = persona_from_character(card)
    changes: dict[str, Any] = {}
    if persona.name != base.name:
        changes["name"] = persona.name
    if persona.nickname != base.nickname:
        changes["nickname"] = persona.nickname
    if persona.personality != base.personality:
        changes["personality"] = persona.personality
    if persona.backstory != base.backstory:
        changes["description"], changes["scenario"] = persona.backstory, ""
    if persona.greetings != base.greetings:
        changes["first_mes"] = persona.greetings[0] if persona.greetings else ""
        changes["alternate_greetings"] = persona.greetings[1:]
    if persona.examples != base.examples:
        changes["mes_example"] = _mes_example(persona)
    ours = {k: getattr(persona, k) for k in _EXTRA_TEXT if getattr(persona, k) != getattr(base, k)}
    if persona.voice != base.voice:
        ours["voice"] = dataclasses.asdict(persona.voice)
    if ours:
        # Our extension changes nothing the card models, so export still writes over the
        # card only the fields in ``changes``.
        raw = card.raw
        extensions = raw["data"].setdefault("extensions", {})
        mine = extensions.get(EXTENSION)
        extensions[EXTENSION] = {**(mine if isinstance(mine, dict) else {}), **ours}
        changes["card_json"] = json.dumps(raw, ensure_ascii=False)
    return dataclasses.replace(card, **changes)


def _mes_example(persona: Persona) -> str:
    blocks = []
    for exchange in persona.examples:
        lines = [("{{user}}: " if t.role == "user" else "{{char}}: ") + t.text for t in exchange]
        blocks.append("<START>\n" + "\n".join(lines))
    return "\n".join(blocks)


def _voice_from(table: dict[str, Any]) -> VoiceChoice:
    """Our voice settings from a card, where anything odd falls back to the default (a card
    from elsewhere is not ours to refuse over its extensions)."""
    default = VoiceChoice()
    name = table.get("name")
    speaker = table.get("speaker")
    speed = table.get("speed")
    expressive = table.get("expressiveness")

    def number(v: object, lo: float, hi: float, fallback: float) -> float:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi
        return float(v) if ok else fallback  # type: ignore[arg-type]

    return VoiceChoice(
        name=name.strip() if isinstance(name, str) and name.strip() else default.name,
        speaker=speaker
        if isinstance(speaker, int) and not isinstance(speaker, bool) and speaker >= -1
        else default.speaker,
        speed=number(speed, 0.5, 2.0, default.speed),
        expressiveness=number(expressive, 0.0, 2.0, default.expressiveness),
    )
