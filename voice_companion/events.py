"""Control events: frozen values matched by class in the session.

Past tense for facts the session is told about; imperative for commands it is asked to carry out.
Positions (``*_s``) are seconds of input audio since the first sample was fed, so they are the
same whether the input is a live microphone or a recording fed at any pace.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice_companion.audio.chunk import AudioChunk


@dataclass(frozen=True)
class SpeechStarted:
    """The user started speaking (after hysteresis)."""

    start_s: float


@dataclass(frozen=True, eq=False)
class UtteranceEnded:
    """The user stopped speaking long enough: one utterance, pre-roll included."""

    audio: AudioChunk
    start_s: float
    speech_end_s: float
    """Position just after the last voiced frame."""
    detected_s: float
    """Position at which the end of speech was decided."""
    speech_end_clock_s: float | None = None
    """Monotonic clock reading when the last voiced frame arrived (stamped by ``listen``)."""


@dataclass(frozen=True)
class UtteranceDiscarded:
    """Voice activity too short to be speech (a cough, a click); no turn follows."""

    start_s: float
    voiced_s: float


@dataclass(frozen=True)
class InputEnded:
    """The input stream is over (end of a recording)."""

    at_s: float


Event = SpeechStarted | UtteranceEnded | UtteranceDiscarded | InputEnded
