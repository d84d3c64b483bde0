"""A reply ends after ``dialogue.max_reply_sentences`` sentences: the personas ask for one or
two, and the bundled model otherwise talks on to its token limit (measured: a median reply of
360 characters, most of them cut by the limit). Scripted beside the real model: the real
SmolLM2's length varies with the prompt; the rule is about counting, which a script pins."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from tests.conftest import shipped_config
from tests.fakes import ScriptedModel
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.memory.seam import NoMemory
from voice_companion.persona.values import Persona
from voice_companion.runtime.turn import Conversation, Turn
from voice_companion.trace import Tracer

LONG = (
    "Oh, that sounds lovely, really. It is good to hear from you. Did you sleep well? "
    "I was thinking about the sea today. The waves were loud. Anyway, tell me more!"
)


class CountingModel(ScriptedModel):
    """The scripted reply, remembering whether it was told to stop."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.cancel: threading.Event | None = None

    def stream(self, messages, cancel):  # type: ignore[no-untyped-def]
        self.cancel = cancel
        yield from super().stream(messages, cancel)


def reply(tmp_path: Path, **env: str) -> tuple[list[str], CountingModel]:
    config = shipped_config(tmp_path, **env)
    dialogue = Dialogue(Persona(name="Robin"), NoMemory(), 4, 1500, "c")
    model = CountingModel(LONG)
    conversation = Conversation(config, dialogue, Tracer(), model=model)
    turn = Turn(conversation, typed="I went to the beach.", remind=False)

    async def said() -> list[str]:
        async with asyncio.timeout(30):
            return [s async for s in turn.written()]

    try:
        return asyncio.run(said()), model
    finally:
        conversation.close()


def test_a_reply_ends_after_three_sentences_and_the_model_is_told_to_stop(
    tmp_path: Path,
) -> None:
    said, model = reply(tmp_path)
    # The first piece may be a clause ("Oh, that sounds lovely,"): it is not a sentence yet.
    assert (
        " ".join(said)
        == "Oh, that sounds lovely, really. It is good to hear from you. Did you sleep well?"
    )
    assert model.cancel is not None and model.cancel.is_set()


@pytest.mark.parametrize(("limit", "sentences"), [("1", 1), ("0", 6)])
def test_the_limit_is_the_users_to_set(tmp_path: Path, limit: str, sentences: int) -> None:
    said, _ = reply(tmp_path, VOICE_COMPANION_DIALOGUE_MAX_REPLY_SENTENCES=limit)
    ended = [s for s in said if s.rstrip().endswith((".", "!", "?"))]
    assert len(ended) == sentences, said
