"""Defect 3 of issue 15: memory writes ran on the event loop. While memory.db is locked by
another process (a real second process holding ``BEGIN EXCLUSIVE``) and the turn's write waits
for it (up to ``store.QUEUE_AFTER_MS`` before it is queued), the session still handles speech
and barge-in lands. Real session, dialogue and long-term memory on disk; scripted words and
reply."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from tests.conftest import queued, shipped_config
from tests.fakes import NullSynth, PacedSink, ScriptedTranscriber, SlowScriptedModel
from tests.harness import WAIT_S, HeldLock
from voice_companion import app
from voice_companion.audio.chunk import AudioChunk
from voice_companion.events import Event, InputEnded, SpeechStarted, UtteranceEnded
from voice_companion.memory.store import MemoryDb
from voice_companion.runtime.session import Engines, Session
from voice_companion.trace import Tracer, TraceRecorder

LANDS_WITHIN_S = 15.0
"""Bound on the wait for the barge-in (never a measurement)."""


def test_barge_in_lands_while_a_memory_write_waits_for_a_lock(tmp_path: Path) -> None:
    config = shipped_config(
        tmp_path,
        VOICE_COMPANION_MEMORY_DENSE="false",
    )
    model = SlowScriptedModel([f"Sentence number {n} of a long story." for n in range(1, 30)], 0.02)
    engines = Engines(ScriptedTranscriber("Tell me a story."), model, NullSynth())
    tracer = Tracer(recorder=TraceRecorder())
    dialogue = app.build_dialogue(config)
    session = Session(config, engines, dialogue, PacedSink(), tracer, barge_in=True)
    db_path = config.data_dir / "memory.db"
    with MemoryDb(db_path):
        pass  # created, so that the locker can lock it
    locker = HeldLock(db_path)
    landed = threading.Event()
    saving_when_landed: list[dict[str, object] | None] = []

    def release_after_barge_in() -> None:
        # A thread of its own, so that a blocked event loop cannot hold the lock forever.
        deadline = time.monotonic() + LANDS_WITHIN_S
        while time.monotonic() < deadline:
            if any(e["event"] == "interrupted" for e in list(tracer.events)):
                saving_when_landed.append(session.memory_saving())  # takes no lock
                landed.set()
                break
            time.sleep(0.02)
        locker.release()

    def events(name: str) -> list[dict[str, object]]:
        return [e for e in tracer.events if e["event"] == name]

    async def go() -> None:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        runner = asyncio.create_task(session.run(queued(queue)))
        await queue.put(UtteranceEnded(AudioChunk.silence(1.0, 16_000), 0.0, 1.0, 1.6))
        while not events("confirmed"):  # the user's words are being written
            await asyncio.sleep(0.01)
        watcher = threading.Thread(target=release_after_barge_in)
        watcher.start()
        await queue.put(SpeechStarted(5.0))  # the user talks over it
        while not events("turn_end"):
            await asyncio.sleep(0.02)
        await asyncio.to_thread(watcher.join, WAIT_S)
        await queue.put(InputEnded(6.0))
        await queue.put(None)
        await asyncio.wait_for(runner, WAIT_S)

    try:
        asyncio.run(asyncio.wait_for(go(), 2 * WAIT_S))
    finally:
        session.close()
        locker.close()
    assert landed.is_set(), "barge-in never landed"
    assert events("speech_start")
    # It landed while the write still waited for the lock: not yet given up and queued.
    assert saving_when_landed[0] is not None
    assert saving_when_landed[0]["queued"] == 0, "barge-in waited for the locked database"
    # Nothing is lost: the user's words, then what was heard, once the lock was released.
    with MemoryDb(db_path) as db:
        turns = [t for t in db.turns() if t.conversation_id == dialogue.conversation_id]
    assert [t.speaker for t in turns][:1] == ["user"]
    assert turns[0].text == "Tell me a story."
