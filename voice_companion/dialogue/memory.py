"""The seam for long-term memory: what the dialogue needs from a store, and a store of nothing.

A concrete store (SQLite, with search) implements ``MemoryStore``; the dialogue only records
turns and recalls text. Whatever is recalled is quoted to the model as data, never obeyed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from voice_companion.dialogue.history import Turn


@dataclass(frozen=True)
class Recollection:
    """Something said in an earlier conversation, with its receipt.

    ``speaker`` is "user" or "assistant"; ``source_id`` identifies the stored turn it came
    from, so every memory can be traced, edited or erased.
    """

    text: str
    when: datetime
    speaker: str
    source_id: str


@runtime_checkable
class MemoryStore(Protocol):
    """Long-term memory as the dialogue sees it."""

    def record(self, turn: Turn, conversation_id: str) -> None:
        """Keep one turn of the conversation ``conversation_id``."""
        ...

    def recall(self, query: str, limit: int) -> list[Recollection]:
        """Up to ``limit`` recollections relevant to ``query``, best first."""
        ...


class NoMemory:
    """The default store: remembers nothing beyond the current conversation's history."""

    def record(self, turn: Turn, conversation_id: str) -> None:
        return None

    def recall(self, query: str, limit: int) -> list[Recollection]:
        return []
