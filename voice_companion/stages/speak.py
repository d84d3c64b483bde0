"""Speak: synthesise sentence by sentence and play each while the next is synthesised."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sinks import AudioSink
from voice_companion.dialogue.sentences import speakable
from voice_companion.engines import Synthesizer
from voice_companion.errors import TtsError

log = logging.getLogger(__name__)

PIECE_S = 0.4
"""Sentences are written to the sink in pieces this long, so an interruption knows, to
within a piece, how much of a sentence was heard."""

AUDIBLE_PEAK = 64
"""A chunk whose peak stays below this (int16) is silence for the `first_audio` mark."""


@dataclass
class SpeechProgress:
    """What has been said so far in one turn; read after an interruption to know what was heard."""

    played: list[str] = field(default_factory=list)
    playing: str = ""
    """The sentence being played now, and how much of its audio has been played (0 to 1)."""
    playing_share: float = 0.0
    first_audio_t: float | None = None
    tts_first_s: float | None = None
    first_sentence_t: float | None = None

    @property
    def heard_text(self) -> str:
        """Whole sentences played, then the words of the current one in proportion to the
        share of its audio played (the sink returns from a write once it is heard)."""
        words = self.playing.split()
        partial = " ".join(words[: round(len(words) * self.playing_share)])
        return " ".join([*self.played, partial] if partial else self.played)


async def speak(
    sentences: AsyncIterator[str],
    synthesizer: Synthesizer,
    sink: AudioSink,
    progress: SpeechProgress,
    now: Callable[[], float],
    pause_ms: int = 0,
    on_first_audio: Callable[[float], object] = lambda _t: None,
    before_first_audio: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Synthesise and play ``sentences`` in order; two stages run side by side, so sentence
    n+1 is synthesised while sentence n plays. A sentence piper cannot say is skipped.

    ``before_first_audio`` is awaited before anything reaches the sink (the session holds a
    speculative reply there until the user's silence is long enough)."""
    ready: asyncio.Queue[tuple[str, AudioChunk] | None] = asyncio.Queue(maxsize=2)

    async def synthesize_all() -> None:
        async for sentence in sentences:
            if progress.first_sentence_t is None:
                progress.first_sentence_t = now()
            text = speakable(sentence)
            if not text:
                continue
            started = now()
            try:
                audio = await asyncio.to_thread(synthesizer.synthesize, text)
            except TtsError as exc:
                log.warning("skipped a sentence the voice could not say: %s", exc)
                continue
            if progress.tts_first_s is None:
                progress.tts_first_s = now() - started
            await ready.put((sentence, audio))
        await ready.put(None)

    async def play_all() -> None:
        pause = AudioChunk.silence(pause_ms / 1000, synthesizer.rate_hz) if pause_ms else None
        held = before_first_audio is None
        while (item := await ready.get()) is not None:
            sentence, audio = item
            if not held and before_first_audio is not None:
                await before_first_audio()
                held = True
            if progress.first_audio_t is None and audio.peak() >= AUDIBLE_PEAK:
                progress.first_audio_t = now()
                on_first_audio(progress.first_audio_t)
            progress.playing, progress.playing_share = sentence, 0.0
            piece = max(1, round(PIECE_S * audio.rate_hz))
            for start in range(0, len(audio), piece):
                await sink.write(AudioChunk(audio.samples[start : start + piece], audio.rate_hz))
                progress.playing_share = min(1.0, (start + piece) / len(audio))
            progress.played.append(sentence)
            progress.playing, progress.playing_share = "", 0.0
            if pause is not None:
                await sink.write(pause)

    async with asyncio.TaskGroup() as group:
        group.create_task(synthesize_all(), name="synthesize")
        group.create_task(play_all(), name="play")
