"""The dialogue core: what to send the model for a user's words, and what to remember after.

Synchronous, pure logic. The async stage that streams the model's reply and speaks it calls
``messages_for`` before the reply and ``record_exchange`` after it (with only the part the user
heard, when they interrupted).
"""

from __future__ import annotations

import logging

from voice_companion.dialogue.history import History, Turn
from voice_companion.dialogue.memory import MemoryStore, Recollection
from voice_companion.dialogue.persona import Persona
from voice_companion.dialogue.prompt import build_messages, prompt_tokens
from voice_companion.engines import ChatMessage

log = logging.getLogger(__name__)

DEFAULT_RECALL_LIMIT = 5
"""Recollections asked of the memory store per turn."""


class Dialogue:
    """One conversation: persona, recent history and long-term memory behind one seam."""

    def __init__(
        self,
        persona: Persona,
        memory: MemoryStore,
        history_turns: int,
        budget_tokens: int,
        conversation_id: str,
        recall_limit: int = DEFAULT_RECALL_LIMIT,
    ) -> None:
        if budget_tokens <= 0:
            raise ValueError(f"budget_tokens must be positive, got {budget_tokens}")
        if recall_limit < 0:
            raise ValueError(f"recall_limit must be 0 or more, got {recall_limit}")
        self.persona = persona
        self.conversation_id = conversation_id
        self._memory = memory
        self._history = History(history_turns)
        self._budget_tokens = budget_tokens
        self._recall_limit = recall_limit

    @property
    def history(self) -> History:
        return self._history

    def command_reply(self, user_text: str) -> str | None:
        """The answer to a voice command ("forget that", ...), handled before the model;
        None when ``user_text`` is ordinary conversation."""
        return None

    def messages_for(self, user_text: str) -> list[ChatMessage]:
        """The chat prompt answering ``user_text``: persona, history, recollections, new text."""
        recent = self._history.recent()
        recollections: list[Recollection] = []
        if user_text.strip() and self._recall_limit:
            # Turns still in the history are already in the prompt; quoting them again as
            # memories would only spend tokens.
            in_history = {t.text.strip() for t in recent}
            recollections = [
                r
                for r in self._memory.recall(user_text, self._recall_limit)
                if r.text.strip() not in in_history
            ]
        messages = build_messages(
            self.persona, recent, recollections, user_text, self._budget_tokens
        )
        log.debug(
            "prompt: %d messages, about %d tokens, %d recollections offered",
            len(messages),
            prompt_tokens(messages),
            len(recollections),
        )
        return messages

    def record_exchange(self, user_text: str, reply_heard: str, interrupted: bool) -> None:
        """Remember a finished turn: the user's words, and the part of the reply they heard.

        An empty reply (nothing was heard) records the user's words alone.
        """
        turns: list[Turn] = []
        if user_text.strip():
            turns.append(Turn("user", user_text.strip()))
        if reply_heard.strip():
            turns.append(Turn("assistant", reply_heard.strip(), interrupted=interrupted))
        for turn in turns:
            self._history.append(turn)
            self._memory.record(turn, self.conversation_id)
