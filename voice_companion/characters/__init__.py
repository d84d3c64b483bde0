"""Characters users bring and own: Character Card V2/V3 import and export, and lorebooks."""

from voice_companion.characters.card import (
    MAX_CARD_BYTES,
    SPEC_V2,
    SPEC_V3,
    CardError,
    Character,
    ExampleTurn,
    card_dict,
    parse_card,
    read_card,
    substitute,
    write_card,
)
from voice_companion.characters.lorebook import Lorebook, LoreEntry, active_entries

__all__ = [
    "MAX_CARD_BYTES",
    "SPEC_V2",
    "SPEC_V3",
    "CardError",
    "Character",
    "ExampleTurn",
    "LoreEntry",
    "Lorebook",
    "active_entries",
    "card_dict",
    "parse_card",
    "read_card",
    "substitute",
    "write_card",
]
