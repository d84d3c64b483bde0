"""The recent turns of the current conversation, bounded."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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

    Older messages fall off the front; long-term recall is the memory store's job. Each
    message may carry its id in the store, so a forgetting made anywhere (another process,
    the CLI) can be applied here too (``keep_stored``).
    """

    def __init__(self, max_turns: int) -> None:
        if max_turns < 0:
            raise ValueError(f"max_turns must be 0 or more, got {max_turns}")
        self.max_turns = max_turns
        self._turns: deque[tuple[Turn, int | None]] = deque(maxlen=2 * max_turns)

    def append(self, turn: Turn, stored_id: int | None = None) -> None:
        self._turns.append((turn, stored_id))

    def recent(self, n: int | None = None) -> list[Turn]:
        """The last ``n`` messages (all kept ones when ``n`` is None), oldest first."""
        turns = [t for t, _ in self._turns]
        if n is None:
            return turns
        if n <= 0:
            return []
        return turns[-n:]

    def last_user(self) -> Turn | None:
        """The most recent user message, if any is still kept."""
        for turn, _ in reversed(self._turns):
            if turn.role == "user":
                return turn
        return None

    def discard(self, turns: list[Turn]) -> None:
        """Drop these turns (the user asked to forget them)."""
        kept = [e for e in self._turns if not any(e[0] is d for d in turns)]
        self._turns.clear()
        self._turns.extend(kept)

    def entries(self) -> list[tuple[Turn, int | None]]:
        """The kept messages with their store ids (None: not stored), oldest first."""
        return list(self._turns)

    def stored_ids(self) -> list[int]:
        """The store ids of the messages that have one."""
        return [i for _, i in self._turns if i is not None]

    def keep_stored(self, texts: Mapping[int, str | None]) -> dict[int, Turn | None]:
        """Apply what the store holds now: ``texts`` maps stored ids to their text (None:
        forgotten). Messages without an id, or not in ``texts``, stay as they are."""
        return self.edit(
            lambda turn, stored_id: (
                turn.text if stored_id is None or stored_id not in texts else texts[stored_id]
            )
        )

    def edit(self, new_text: Callable[[Turn, int | None], str | None]) -> dict[int, Turn | None]:
        """Rewrite messages: ``new_text(turn, stored_id)`` is the text to keep, None to drop
        the message. Returns, by ``id()`` of each changed message, what replaced it (None
        when dropped)."""
        changed: dict[int, Turn | None] = {}
        kept: list[tuple[Turn, int | None]] = []
        for turn, stored_id in self._turns:
            text = new_text(turn, stored_id)
            if text == turn.text:
                kept.append((turn, stored_id))
            elif text is None:
                changed[id(turn)] = None
            else:
                new = replace(turn, text=text)
                changed[id(turn)] = new
                kept.append((new, stored_id))
        self._turns.clear()
        self._turns.extend(kept)
        return changed

    def clear(self) -> None:
        self._turns.clear()

    def __len__(self) -> int:
        return len(self._turns)
