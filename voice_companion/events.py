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
    start_clock_s: float | None = None
    """When the first voiced frame arrived (``time.monotonic``), if the listener knows: the
    start is only confirmed a little later (``vad.speech_start_ms``)."""


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


# Commands from the control socket (push-to-talk from a hotkey, mute, ...): imperative names.


@dataclass(frozen=True)
class PttPress:
    """Push-to-talk pressed: start listening now (interrupting a reply)."""


@dataclass(frozen=True)
class PttRelease:
    """Push-to-talk released: the utterance is over."""


@dataclass(frozen=True)
class PttToggle:
    """Push-to-talk toggled: press if released, release if pressed."""


@dataclass(frozen=True)
class Mute:
    """Stop listening until unmuted."""


@dataclass(frozen=True)
class Unmute:
    """Listen again."""


@dataclass(frozen=True)
class Say:
    """Speak this text aloud (as the companion)."""

    text: str


@dataclass(frozen=True)
class StopSpeaking:
    """Stop the current reply, as barge-in would."""


@dataclass(frozen=True)
class Quit:
    """Shut the daemon down gracefully."""


@dataclass(frozen=True)
class ReportStatus:
    """Answer with the current state (mode, listening/thinking/speaking, persona)."""


@dataclass(frozen=True)
class MemoryForgotten:
    """Something was forgotten from memory.db by another process (``memory forget``): drop
    what is held of it now, not only before the next turn."""


@dataclass(frozen=True)
class SwitchPersona:
    """Switch to the persona with this name."""

    name: str


Command = (
    PttPress
    | PttRelease
    | PttToggle
    | Mute
    | Unmute
    | Say
    | StopSpeaking
    | Quit
    | ReportStatus
    | SwitchPersona
    | MemoryForgotten
)
