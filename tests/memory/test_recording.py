"""``run --input`` answers a recording without making it part of the user's life: its turns
are kept in a conversation marked as a recording, not learnt from, not recalled, not in the
profile; with ``--remember`` (``remember=True``) they are, like a live conversation.

The real pipeline: the bundled STT, LLM and TTS answer "My name is Sam." spoken by the
bundled piper voice, into the memory of a user who said their name is Alex.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from tests.audio.test_prosody import piper_says
from tests.conftest import shipped_config
from voice_companion.audio.chunk import AudioChunk
from voice_companion.config import Config
from voice_companion.dialogue.history import Turn
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.store import RECORDING, MemoryDb
from voice_companion.runtime import runner


def _memory(config: Config) -> LongTermMemory:
    return LongTermMemory(MemoryDb(config.data_dir / "memory.db"), config.memory)


def _answer(config: Config, engines, tmp_path: Path, remember: bool) -> None:  # type: ignore[no-untyped-def]
    speech = piper_says("My name is Sam.", 1.0)
    room = AudioChunk.silence(0.5, speech.rate_hz)
    recording = AudioChunk(np.concatenate([room.samples, speech.samples]), speech.rate_hz)
    summary = asyncio.run(
        asyncio.wait_for(
            runner.run_recording(
                config, engines, recording, tmp_path / "out.wav", False, None, remember
            ),
            timeout=240,
        )
    )
    assert summary.turns == 1


def _names(memory: LongTermMemory) -> list[str]:
    return [f.value for f in memory.db.facts(valid_only=True, key="name")]


def test_a_recording_is_kept_apart_unless_remembered(engines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = shipped_config(tmp_path)
    life = _memory(config)
    life.record(Turn("user", "My name is Alex."), "life")
    life.wait_idle()
    assert _names(life) == ["Alex"]
    life.close()

    _answer(config, engines, tmp_path, remember=False)
    memory = _memory(config)
    try:
        recorded = [c for c, _, source in memory.db.conversations() if source == RECORDING]
        assert len(recorded) == 1  # kept, and marked
        heard = [t.text for t in memory.db.turns(conversation_id=recorded[0])]
        assert "sam" in heard[0].lower()  # the test can fail: the words were heard
        assert _names(memory) == ["Alex"]  # not learnt from
        memory.index_pending()
        for mode in ("hybrid", "bm25", "dense"):
            hits = memory.search("my name is Sam", 10, mode)
            assert all(h.turn.conversation_id != recorded[0] for h in hits), mode
        assert all("Sam" not in r.text for r in memory.recall("what is my name, Sam", 10))
        assert not any("Sam" in line for line in memory.notes())  # nor in the profile
    finally:
        memory.close()

    _answer(config, engines, tmp_path, remember=True)
    memory = _memory(config)
    try:
        assert _names(memory) == ["Sam"]  # learnt, the old name superseded
        memory.index_pending()
        assert any("Sam" in r.text for r in memory.recall("what is my name, Sam", 10))
    finally:
        memory.close()


def test_remember_without_a_recording_is_a_usage_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "voice_companion", "--data-dir", str(tmp_path), "run",
         "--remember"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "--remember need --input FILE" in line
