"""The seam for long-term memory: what the dialogue needs from a store, and a store of nothing.

A concrete store (``voice_companion.memory.longterm``: SQLite, hybrid search, facts) implements
``MemoryStore``; the dialogue records turns, recalls text, reads notes about the user and
forgets on request. Whatever is recalled is quoted to the model as data, never obeyed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from voice_companion.dialogue.history import Turn
from voice_companion.dialogue.mood import VoiceBaseline


@dataclass(frozen=True)
class Recollection:
    """Something said in an earlier conversation, with its receipt.

    ``speaker`` is "user" or "assistant"; ``source_id`` identifies the stored turn it came
    from, so every memory can be traced, edited or erased. ``turn_id`` is its id in the store.
    """

    text: str
    when: datetime
    speaker: str
    source_id: str
    turn_id: int | None = None


@dataclass(frozen=True)
class Fact:
    """Something durable about the user, with the turns it came from.

    ``key`` names what the fact is about (``name``, ``relation:sister``, ``taste:coffee``);
    a newer fact with the same single-valued key supersedes an older one: the older one is
    kept, with ``valid_to`` set and ``superseded_by`` pointing at the newer one.
    """

    id: int
    kind: str
    key: str
    value: str
    valid_from: datetime
    valid_to: datetime | None
    event_date: date | None
    superseded_by: int | None
    extractor: str
    source_turn_ids: tuple[int, ...]

    @property
    def valid(self) -> bool:
        return self.valid_to is None


@dataclass(frozen=True)
class TopicMatches:
    """What forgetting a topic (or some ids) takes: whole turns, turns that also said other
    things (rewritten without the part about the topic), facts, and the receipts that a
    rewritten turn no longer supports ((fact id, turn id) pairs)."""

    turn_ids: tuple[int, ...] = ()
    fact_ids: tuple[int, ...] = ()
    redactions: tuple[tuple[int, str], ...] = ()
    """(turn id, its text without what is forgotten)."""
    dropped_sources: tuple[tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self.turn_ids) + len(self.redactions) + len(self.fact_ids)


@runtime_checkable
class MemoryStore(Protocol):
    """Long-term memory as the dialogue sees it."""

    def record(self, turn: Turn, conversation_id: str) -> int | None:
        """Keep one turn of the conversation ``conversation_id``, durably, now; its id in the
        store (None when the store keeps nothing)."""
        ...

    def recall(self, query: str, limit: int) -> list[Recollection]:
        """Up to ``limit`` recollections relevant to ``query``, best first."""
        ...

    def said(self, query: str, limit: int, speaker: str = "user") -> list[Recollection]:
        """Up to ``limit`` stored turns said by ``speaker`` that the search finds for
        ``query``, best first: "user" for the user's own words (what is known about them),
        "assistant" only for what the companion itself said."""
        ...

    def known_facts(self) -> list[Fact]:
        """The facts about the user that hold now (not superseded or ended), oldest first."""
        ...

    def now(self) -> datetime:
        """The time by the store's clock (turns are dated by it)."""
        ...

    def retract(self, turn_id: int) -> None:
        """Remove a turn just recorded that is being replaced (the user went on speaking)."""
        ...

    def notes(self) -> list[str]:
        """What is known about the user (profile, how to talk with them, then facts), as
        short lines written as the companion would say them to the user ("Your dog is called
        “Biscuit”."), the user's own words in quotes; most important first."""
        ...

    def summary(self, limit: int) -> list[str]:
        """Up to ``limit`` things about the user, in the second person, to be said aloud:
        facts, and how they seemed lately ("you sounded tired on Sunday")."""
        ...

    def voice_baseline(self) -> VoiceBaseline:
        """The user's usual voice, from their remembered voice turns."""
        ...

    def topic_matches(self, topic: str) -> TopicMatches:
        """Stored turns and facts about ``topic``."""
        ...

    def forget(self, turn_ids: Sequence[int], fact_ids: Sequence[int]) -> int:
        """Erase these turns and facts for real; how many were erased."""
        ...

    def forget_topic(self, matches: TopicMatches) -> int:
        """Carry out what ``topic_matches`` found; how many turns and facts were erased or
        rewritten."""
        ...

    def forget_generation(self) -> int:
        """A number every forgetting changes, in any process sharing the store (read before
        each turn); the store drops its own caches when it sees it change."""
        ...

    def stored_texts(self, turn_ids: Sequence[int]) -> Mapping[int, str | None]:
        """The text each of these stored turns has now (rewritten when part of it was
        forgotten), None for a turn that is gone; ids it cannot tell about yet are left out."""
        ...

    def close(self) -> None:
        """Finish background work and close: native threads must not outlive the process's
        orderly exit (onnxruntime aborts when torn down under a running inference)."""
        ...


class NoMemory:
    """The default store: remembers nothing beyond the current conversation's history."""

    def record(self, turn: Turn, conversation_id: str) -> int | None:
        return None

    def recall(self, query: str, limit: int) -> list[Recollection]:
        return []

    def said(self, query: str, limit: int, speaker: str = "user") -> list[Recollection]:
        return []

    def known_facts(self) -> list[Fact]:
        return []

    def now(self) -> datetime:
        return datetime.now().astimezone()

    def retract(self, turn_id: int) -> None:
        return None

    def notes(self) -> list[str]:
        return []

    def summary(self, limit: int) -> list[str]:
        return []

    def voice_baseline(self) -> VoiceBaseline:
        return VoiceBaseline()

    def topic_matches(self, topic: str) -> TopicMatches:
        return TopicMatches()

    def forget(self, turn_ids: Sequence[int], fact_ids: Sequence[int]) -> int:
        return 0

    def forget_topic(self, matches: TopicMatches) -> int:
        return 0

    def forget_generation(self) -> int:
        return 0

    def stored_texts(self, turn_ids: Sequence[int]) -> Mapping[int, str | None]:
        return {}

    def close(self) -> None:
        return None
