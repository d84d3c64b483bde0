"""The recent turns of the current conversation, bounded."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from voice_companion.dialogue.mood import MoodEstimate

Speaker = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One message of the conversation.

    For the assistant, ``text`` is what the user actually heard; ``interrupted`` says the user
    cut the reply short (barge-in), so the model knows it did not finish.
    """

    role: Speaker
    text: str
    interrupted: bool = False
    duration_s: float | None = None
    """How long the user spoke, seconds, for a spoken user turn."""
    mood: MoodEstimate | None = field(default=None, compare=False)
    """How the user seemed, for a user turn: read from it, not part of what was said (two
    turns with the same words are equal whatever mood was read)."""


class History:
    """The last ``max_turns`` exchanges (user + assistant), that is ``2 * max_turns`` messages.

    Older messages fall off the front; long-term recall is the memory store's job.
    """

    def __init__(self, max_turns: int) -> None:
        if max_turns < 0:
            raise ValueError(f"max_turns must be 0 or more, got {max_turns}")
        self.max_turns = max_turns
        self._turns: deque[Turn] = deque(maxlen=2 * max_turns)

    def append(self, turn: Turn) -> None:
        self._turns.append(turn)

    def recent(self, n: int | None = None) -> list[Turn]:
        """The last ``n`` messages (all kept ones when ``n`` is None), oldest first."""
        turns = list(self._turns)
        if n is None:
            return turns
        if n <= 0:
            return []
        return turns[-n:]

    def last_user(self) -> Turn | None:
        """The most recent user message, if any is still kept."""
        for turn in reversed(self._turns):
            if turn.role == "user":
                return turn
        return None

    def discard(self, turns: list[Turn]) -> None:
        """Drop these turns (the user asked to forget them)."""
        kept = [t for t in self._turns if not any(t is d for d in turns)]
        self._turns.clear()
        self._turns.extend(kept)

    def clear(self) -> None:
        self._turns.clear()

    def __len__(self) -> int:
        return len(self._turns)
