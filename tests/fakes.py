"""Every scripted fake the tests use, in one place.

The project's rule: tests use the real parts (SQLite on disk, whisper, piper, SmolLM2, MiniLM,
a real HTTP server process). A fake is allowed only beside a real-engine test of the same
behaviour, where determinism demands it: a reply that must be long and slow so an interruption
lands in its middle, words known exactly so a memory or a turn can be checked, a failure at a
chosen call. Each fake says below why it exists and which real-engine test it stands beside.
Before writing a new one, look here; before using one, check that the real test exists.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sinks import MemorySink
from voice_companion.dialogue.history import Turn
from voice_companion.engines import ChatMessage, Synthesizer, Transcriber, Transcript
from voice_companion.errors import SttError, TtsError
from voice_companion.memory.seam import NoMemory, Recollection

# --- speech to text -------------------------------------------------------------------------


class ScriptedTranscriber:
    """Hears ``text`` in any audio. For tests about what happens to known words (memory,
    commands, barge-in), which whisper's run-to-run variance would blur. Beside: real whisper
    on real speech in tests/test_session.py (``answer``) and tests/engines/test_stt.py."""

    def __init__(self, text: str) -> None:
        self.text = text

    def transcribe(self, audio: AudioChunk) -> Transcript:
        return Transcript(self.text, audio.duration_s)


class ByLengthTranscriber:
    """Hears ``short`` in audio under 1.5 s and ``long`` in longer audio: a speculative turn
    (the first part of an utterance) and its continuation (the whole) get different words,
    deterministically. Beside: the real listener and whisper on real speech in
    tests/bench/test_turn_taking.py and tests/test_session.py (real-time recordings)."""

    def __init__(self, short: str, long: str) -> None:
        self.short, self.long = short, long
        self.calls = 0

    def transcribe(self, audio: AudioChunk) -> Transcript:
        self.calls += 1
        text = self.short if audio.duration_s < 1.5 else self.long
        return Transcript(text, audio.duration_s)


class FailFirstTranscription:
    """Real faster-whisper, except that its first call fails: the failure lands on a chosen
    turn and the next turn is real. Beside: the real transcriber it wraps."""

    def __init__(self, real: Transcriber) -> None:
        self.real = real
        self.calls = 0

    def transcribe(self, audio: AudioChunk) -> Transcript:
        self.calls += 1
        if self.calls == 1:
            raise SttError("speech-to-text failed: injected")
        return self.real.transcribe(audio)


# --- language model -------------------------------------------------------------------------


class ScriptedModel:
    """Replies ``reply``, word by word (or in one piece with ``word_by_word=False``), at once.
    For tests of turn-taking, splitting and grounding rules where the real model's words would
    change the outcome. Beside: the real SmolLM2 in tests/engines/test_llm_llama.py,
    tests/test_session.py and tests/memory/test_facts_profile.py
    (``test_llm_extractor_on_the_real_model``)."""

    def __init__(self, reply: str, word_by_word: bool = True) -> None:
        self.reply = reply
        self.word_by_word = word_by_word

    def stream(self, messages: Sequence[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        if not self.word_by_word:
            yield self.reply
            return
        for word in self.reply.split(" "):
            if cancel.is_set():
                return
            yield word + " "


class SlowScriptedModel:
    """Streams a fixed long reply slowly, so that an interruption lands in the middle of it,
    deterministically; records how far it got and whether it was told to stop. Beside: barge-in
    on the real model in tests/live/test_daemon.py."""

    def __init__(self, sentences: list[str], delay_s: float) -> None:
        self.words = [w for sentence in sentences for w in sentence.split(" ")]
        self.delay_s = delay_s
        self.yielded = 0
        self.ended = threading.Event()

    def stream(self, messages: Sequence[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        try:
            for word in self.words:
                if cancel.is_set():
                    return
                time.sleep(self.delay_s)
                self.yielded += 1
                yield word + " "
        finally:
            self.ended.set()


class FailingModel:
    """The model crashes at once: the user's words must already be on disk, and the user hears
    the apology (any failure of the model is one, not silence). Beside: a real server process
    failing in each way in tests/faults/test_pipeline_faults.py."""

    def stream(self, messages: Sequence[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        raise RuntimeError("the model crashed")
        yield ""


class BrokenModel:
    """Streams ``pieces``, then raises ``error``: a model or server that breaks mid-reply, at a
    chosen word. Beside: a real server process breaking mid-stream in
    tests/faults/test_pipeline_faults.py."""

    def __init__(self, pieces: list[str], error: Exception) -> None:
        self.pieces, self.error = pieces, error

    def stream(self, messages: Sequence[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        yield from self.pieces
        raise self.error


class EndlessModel:
    """A model that never stops (a local one stops at max_tokens; this one won't), to prove the
    think stage's own bounds. Beside: the real server ignoring max_tokens in
    tests/engines/test_llm_bounds.py."""

    def stream(self, messages: object, cancel: threading.Event) -> Iterator[str]:
        while not cancel.is_set():
            yield "Again and again. "


# --- memory --------------------------------------------------------------------------------


class WordMemory(NoMemory):
    """A real (if simple) store: keeps every turn, recalls those sharing a word with the query,
    and records what it was asked. For the dialogue's own rules (what is recorded, what is
    recalled into the prompt, within which budget), which MiniLM's ranking would blur. Beside:
    the real LongTermMemory (SQLite on disk, MiniLM) under a Dialogue in
    tests/memory/test_conversation.py."""

    def __init__(self) -> None:
        self.recorded: list[tuple[Turn, str]] = []
        self.queries: list[tuple[str, int]] = []
        self.day = 1

    def record(self, turn: Turn, conversation_id: str) -> int | None:
        self.recorded.append((turn, conversation_id))
        return len(self.recorded)

    def recall(self, query: str, limit: int) -> list[Recollection]:
        self.queries.append((query, limit))
        words = {w.strip(".,?!").lower() for w in query.split()}
        found = [
            Recollection(turn.text, datetime(2026, 5, i + 1), turn.role, f"{conv}:{i}")
            for i, (turn, conv) in enumerate(self.recorded)
            if words & {w.strip(".,?!").lower() for w in turn.text.split()}
        ]
        return found[:limit]


class NotedMemory(WordMemory):
    """Notes that change whenever a fact is learnt, as the long-term memory's do, so a test
    decides exactly when they change. Beside: the real notes in
    tests/memory/test_facts_profile.py."""

    def __init__(self) -> None:
        super().__init__()
        self.facts: list[str] = []

    def notes(self) -> list[str]:
        return list(self.facts)

    def forget(self, turn_ids: Sequence[int], fact_ids: Sequence[int]) -> int:
        self.facts.clear()
        return super().forget(turn_ids, fact_ids)


# --- text to speech and playback ------------------------------------------------------------


class NullSynth:
    """A voice that says every sentence as 0.1 s of silence, for tests about memory and turns
    in which what is heard does not matter. Beside: real piper in tests/test_session.py and
    tests/engines/test_tts.py."""

    rate_hz = 16_000

    def synthesize(self, text: str) -> AudioChunk:
        return AudioChunk.silence(0.1, self.rate_hz)


class FailOneSentence:
    """Real piper, except that it fails on a sentence containing ``fail_on``: the failure lands
    on a chosen sentence and the rest is really spoken. Beside: the real synthesizer it wraps."""

    def __init__(self, real: Synthesizer, fail_on: str) -> None:
        self.real, self.fail_on = real, fail_on
        self.rate_hz = real.rate_hz
        self.failed = 0

    def synthesize(self, text: str) -> AudioChunk:
        if self.fail_on in text:
            self.failed += 1
            raise TtsError("text-to-speech failed: injected for this sentence")
        return self.real.synthesize(text)


class PacedSink(MemorySink):
    """Takes as long to 'play' audio as the audio lasts (scaled down to a fifth), like a
    speaker, so that a reply is still playing when the user barges in. Beside: the real
    ``audio.sinks.PacedSink`` at full pace (``run --input --realtime``) and the live daemon on
    a real sound server in tests/live/."""

    async def write(self, chunk: AudioChunk) -> None:
        await asyncio.sleep(chunk.duration_s * 0.2)
        await super().write(chunk)
