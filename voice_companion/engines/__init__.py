"""Thin synchronous adapters over third-party libraries, and the contract they meet.

Each module here imports its library lazily (inside the constructor or the function that
needs it), wraps library errors in ``voice_companion.errors`` and exposes one small class.
Stages call these from worker threads (``asyncio.to_thread``) one small unit at a time: one
frame, one utterance, one sentence, one token.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from voice_companion.audio.chunk import AudioChunk

# OpenMP's waiting threads (CTranslate2's) spin by default. On two cores shared by the
# speech model, the language model, the voice and the microphone, a descheduled thread left
# the others spinning: a 0.5 s transcription took up to 11 s under load. Waiting threads
# sleep instead. OpenMP reads this when its runtime loads, so it is set here, before any
# engine's library is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat prompt."""

    role: Role
    content: str


@dataclass(frozen=True)
class Transcript:
    """What speech-to-text heard in one utterance."""

    text: str
    audio_s: float
    """Duration of the transcribed audio, seconds."""
    language: str = "en"


class FrameClassifier(Protocol):
    """Says whether one 30 ms frame of 16 kHz audio holds speech."""

    frame_ms: int

    def is_speech(self, frame: AudioChunk) -> bool: ...

    def reset(self) -> None:
        """Forget any state carried between frames (start of a new stream)."""


class Transcriber(Protocol):
    def transcribe(self, audio: AudioChunk) -> Transcript: ...


class ChatModel(Protocol):
    def stream(self, messages: Sequence[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        """Yield reply text pieces as the model produces them.

        Stops early (without error) once ``cancel`` is set. Raises ``LlmError`` on failure and
        ``LlmTimeoutError`` when the model does not answer in time.
        """
        ...


class Synthesizer(Protocol):
    rate_hz: int

    def synthesize(self, text: str) -> AudioChunk: ...
