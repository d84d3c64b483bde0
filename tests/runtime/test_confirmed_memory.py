"""Defect 1 of issue 15: a speculative turn wrote memory before it was confirmed. Real
session, real dialogue, real long-term memory on disk; scripted words and reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import queued, shipped_config
from tests.fakes import ByLengthTranscriber, NullSynth, ScriptedModel
from voice_companion import app
from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sinks import MemorySink
from voice_companion.events import Event, InputEnded, SpeechStarted, UtteranceEnded
from voice_companion.memory.store import MemoryDb
from voice_companion.runtime.session import Engines, Session
from voice_companion.trace import Tracer, TraceRecorder

FIRST = "I really love jazz."
JOINED = "I really love jazz. And blues, too."


def _stored(db_path: Path) -> tuple[list[str], list[tuple[str, tuple[int, ...]]]]:
    with MemoryDb(db_path) as db:
        return [t.text for t in db.turns()], [
            (f.key, f.source_turn_ids) for f in db.facts(valid_only=False)
        ]


def test_a_dropped_speculative_turn_leaves_no_turn_and_no_fact(tmp_path: Path) -> None:
    config = shipped_config(
        tmp_path,
        # Closed after 240 ms of silence, heard after 1.5 s: the turn is speculative long
        # enough for the user to go on.
        VOICE_COMPANION_VAD_SPECULATE_MS="240",
        VOICE_COMPANION_VAD_ADAPTIVE_END_SILENCE="false",
        VOICE_COMPANION_VAD_END_SILENCE_MS="1500",
        VOICE_COMPANION_MEMORY_DENSE="false",
    )
    engines = Engines(
        ByLengthTranscriber(FIRST, JOINED), ScriptedModel("Jazz is wonderful."), NullSynth()
    )
    dialogue = app.build_dialogue(config)
    tracer = Tracer(recorder=TraceRecorder())
    session = Session(config, engines, dialogue, MemorySink(), tracer)
    db_path = config.data_dir / "memory.db"
    one_s = AudioChunk.silence(1.0, 16_000)
    seen: dict[str, tuple[list[str], list[tuple[str, tuple[int, ...]]]]] = {}

    def events(name: str) -> list[dict[str, object]]:
        return [e for e in tracer.events if e["event"] == name]

    async def go() -> None:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        runner = asyncio.create_task(session.run(queued(queue)))
        await queue.put(UtteranceEnded(one_s, 0.0, 1.0, 1.24))
        while not events("transcript"):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        seen["held"] = await asyncio.to_thread(_stored, db_path)
        await queue.put(SpeechStarted(1.5))  # the user goes on: the turn is dropped
        while not events("turn_abandoned"):
            await asyncio.sleep(0.01)
        seen["dropped"] = await asyncio.to_thread(_stored, db_path)
        await queue.put(UtteranceEnded(one_s, 1.5, 2.5, 2.74))
        while not events("turn_end"):
            await asyncio.sleep(0.02)
        await queue.put(InputEnded(3.0))
        await queue.put(None)
        await asyncio.wait_for(runner, 30)

    try:
        asyncio.run(asyncio.wait_for(go(), 60))
    finally:
        session.close()
    for moment in ("held", "dropped"):
        texts, facts = seen[moment]
        assert FIRST not in texts, moment
        assert not [key for key, _ in facts if key == "taste:jazz"], moment
    # The joined turn, once confirmed, is kept, and what it taught has it as its receipt.
    texts, facts = _stored(db_path)
    assert texts == [JOINED, "Jazz is wonderful."]
    jazz = [sources for key, sources in facts if key == "taste:jazz"]
    assert jazz and all(sources for sources in jazz)
