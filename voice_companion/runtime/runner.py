"""Runners of the one turn outside the live daemon: a recording answered as if a microphone
heard it (``run --input``), and the text chat (``chat``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sinks import PacedSink, WavFileSink
from voice_companion.audio.sources import recording_frames
from voice_companion.config import Config
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.engines import ChatModel
from voice_companion.runtime.session import Session
from voice_companion.runtime.turn import Conversation, Engines, Turn
from voice_companion.runtime.warmup import warm_up
from voice_companion.stages.endpointer import longest_end_silence_ms
from voice_companion.stages.listen import listen
from voice_companion.trace import Tracer

FRAME_MS = 30
"""Listening frame length: webrtcvad takes 10, 20 or 30 ms."""


@dataclass(frozen=True)
class RunSummary:
    turns: int
    output_s: float


async def run_recording(
    config: Config,
    engines: Engines,
    recording: AudioChunk | Iterable[AudioChunk],
    output: Path,
    realtime: bool,
    trace_path: Path | None,
    remember: bool = False,
) -> RunSummary:
    """Answer every utterance of ``recording`` (one chunk, or its pieces in order, e.g. an
    ``AudioStream`` read from disk as it goes) as if a microphone heard it; write the
    companion's voice to ``output``. Its turns are kept in a conversation marked as a
    recording, not learnt from nor recalled, unless ``remember``."""
    from voice_companion import app

    listener = app.build_listener(config, speculative=True)
    tracer = Tracer(trace_path)
    sink = WavFileSink(output)
    dialogue = app.build_dialogue(config, recording=not remember)
    await asyncio.to_thread(warm_up, engines, dialogue, timeout_s=config.llm.warm_up_timeout_s)
    # In real time the reply takes as long to play as it would aloud, so the user can go on
    # over it (and the companion back off); otherwise it is written at once.
    session = Session(config, engines, dialogue, PacedSink(sink) if realtime else sink, tracer)
    # A microphone keeps hearing the room after the user stops: feed enough silence for the
    # end of speech to be detected the way it would be live.
    tail_s = longest_end_silence_ms(config.vad) / 1000 + 0.3
    frames = recording_frames(recording, FRAME_MS, realtime, tail_s)
    try:
        tracer.start()
        await session.run(listen(frames, listener))
        await sink.close()
    finally:
        tracer.close()
        await asyncio.to_thread(session.close)
    return RunSummary(turns=session.turns_done, output_s=sink.audio().duration_s)


class TextChat:
    """The terminal chat: typed turns of one conversation (one memory thread for all)."""

    def __init__(self, config: Config, model: ChatModel, dialogue: Dialogue) -> None:
        self._conversation = Conversation(config, dialogue, Tracer(), model=model)

    async def reply(self, text: str) -> AsyncIterator[str]:
        """A typed turn: the reply's sentences as they come; a short apology if the model
        fails before saying anything."""
        async for sentence in Turn(self._conversation, typed=text, remind=False).written():
            yield sentence

    def close(self) -> None:
        """Finish what is being recorded and close the long-term memory (blocking)."""
        self._conversation.close()
