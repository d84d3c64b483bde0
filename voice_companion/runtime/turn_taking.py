"""Turn-taking policy, in one home: how long a silence ends the user's turn, when their going
on resumes a turn not yet heard (or heard only for an instant: the companion backs off), and
holding a speculative reply until that silence is over.

Pure decisions on the trace's clock; the session applies them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from voice_companion.config import Config, VadConfig
from voice_companion.events import SpeechStarted, UtteranceEnded
from voice_companion.trace import Tracer

CONTINUATIONS = frozenset(
    {
        "and", "but", "or", "so", "because", "cause", "then", "um", "uh", "er", "erm", "hmm",
        "like", "with", "to", "of", "the", "a", "an", "my", "your", "if", "when", "that",
        "which", "who", "for", "in", "on", "at", "about", "is", "was", "i", "i'm", "we",
    }
)  # fmt: skip
"""Last words after which a speaker usually goes on: "and", "um", "because", ..."""
_TRAILING_OFF = ("...", "…", ",", "-", "—", ":", ";")


def end_silence_ms(transcript: str, config: VadConfig) -> int:
    """The end-of-speech silence to wait for, given what the user has said so far.

    Cheap and honest: it reads the speculative transcript, which is there anyway before the
    silence is over. A complete-sounding sentence (whisper closed it with . ! or ?) gets
    ``end_silence_min_ms``; a trailing "and", "um", ... or a phrase whisper left open with
    "..." or a comma gets ``end_silence_max_ms``; anything else ``end_silence_ms``. The
    bounds widen to include ``end_silence_ms`` when it lies outside them.
    """
    default = config.end_silence_ms
    text = transcript.strip()
    if not config.adaptive_end_silence or not text:
        return default
    last = text.split()[-1].strip("\"'“”‘’()[].,!?…:;-—").lower()
    if last in CONTINUATIONS or text.endswith(_TRAILING_OFF):
        return max(default, config.end_silence_max_ms)
    if text.endswith((".", "!", "?")):
        return min(default, config.end_silence_min_ms)
    return default


@dataclass(frozen=True)
class TurnTaking:
    """The session's turn-taking windows (``dialogue.resume_ms``, ``dialogue.backoff_ms``)."""

    vad: VadConfig
    resume_s: float
    backoff_s: float

    @classmethod
    def of(cls, config: Config) -> TurnTaking:
        return cls(config.vad, config.dialogue.resume_ms / 1000, config.dialogue.backoff_ms / 1000)

    def joins(self, earlier: UtteranceEnded, later: UtteranceEnded) -> bool:
        """The user resumed within the resume window: the two utterances are one."""
        return later.start_s - earlier.speech_end_s <= self.resume_s

    def resumes(
        self,
        started: SpeechStarted,
        utterance: UtteranceEnded,
        first_audio_t: float | None,
        tracer: Tracer,
    ) -> bool:
        """The user goes on within the resume window, before the reply was heard or when it
        had only just started (both started at once: the companion backs off). Measured at
        the user's first voiced frame, not when that was confirmed as speech."""
        if started.start_s - utterance.speech_end_s > self.resume_s:
            return False
        if first_audio_t is None:
            return True
        onset_t = (
            tracer.now() if started.start_clock_s is None else tracer.at(started.start_clock_s)
        )
        return onset_t - first_audio_t <= self.backoff_s

    def hold_s(self, transcript: str) -> float:
        """How long after the end of speech a reply to ``transcript`` may be heard."""
        return end_silence_ms(transcript, self.vad) / 1000

    async def silence_over(self, transcript: str, end_t: float, tracer: Tracer) -> None:
        """Wait until the end-of-speech silence ``transcript`` calls for is over (the turn
        may have started speculatively, before it was)."""
        waited = end_t + self.hold_s(transcript) - tracer.now()
        if waited > 0:
            await asyncio.sleep(waited)
