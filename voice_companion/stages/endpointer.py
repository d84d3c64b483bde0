"""Endpointing: where an utterance starts and ends, and how long the silence after it is.

A pure state machine (no clock, no engine): positions come from counting samples, so it gives
the same answer for a recording fed instantly and for a live microphone. The listener only
routes frames here by listening mode; the session asks ``end_silence_ms`` how long to hold a
reply that was prepared speculatively.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import deque

from voice_companion.audio.chunk import AudioChunk
from voice_companion.config import VadConfig
from voice_companion.events import SpeechStarted, UtteranceDiscarded, UtteranceEnded

Decision = SpeechStarted | UtteranceEnded | UtteranceDiscarded

START_SHARE = 0.7
"""Share of frames in the start window that must be voiced to start (hysteresis)."""


def first_end_silence_ms(config: VadConfig) -> int:
    """Silence after which an utterance is closed and its turn starts (speculatively when
    shorter than the end-of-speech silence the session then waits for)."""
    shortest = config.end_silence_ms
    if config.adaptive_end_silence:
        shortest = min(shortest, config.end_silence_min_ms)
    return min(config.speculate_ms, shortest) if config.speculate_ms > 0 else shortest


def longest_end_silence_ms(config: VadConfig) -> int:
    """The longest end-of-speech silence ``end_silence_ms`` may ask for."""
    if config.adaptive_end_silence:
        return max(config.end_silence_ms, config.end_silence_max_ms)
    return config.end_silence_ms


class Endpointer:
    """Where an utterance starts and ends: the one home of that decision.

    Hands-free (``push``), speech starts once ``START_SHARE`` of a ``speech_start_ms`` window
    is voiced and closes after ``config.end_silence_ms`` of silence, or at
    ``max_utterance_s``. Speech shorter than ``min_utterance_ms`` (a cough, a click) is
    dropped, but only once ``discard_after_ms`` of silence has followed it (default: the end
    silence), so a short word the user goes on from ("Ask ... not ...") stays part of the
    utterance when the end silence is short. Push-to-talk (``press``/``release``), everything
    in between is one utterance, dropped when shorter than ``min_utterance_ms``. Either way
    up to ``preroll_ms`` heard before the start is kept in front of it (people start
    talking as they press; the start window confirms speech a little late).

    It counts the frames (every frame passes through ``push``, ``hear`` or ``skip``), so
    positions come from counting samples, not from a clock.
    """

    def __init__(
        self, config: VadConfig, frame_ms: int, rate_hz: int, discard_after_ms: int | None = None
    ) -> None:
        self._frame_s = frame_ms / 1000
        self._rate_hz = rate_hz
        self._start_frames = max(1, round(config.speech_start_ms / frame_ms))
        self._start_needed = max(1, math.ceil(self._start_frames * START_SHARE))
        self._end_frames = max(1, round(config.end_silence_ms / frame_ms))
        self._discard_frames = max(self._end_frames, round((discard_after_ms or 0) / frame_ms))
        self._preroll_frames = round(config.preroll_ms / frame_ms)
        self._min_voiced_s = config.min_utterance_ms / 1000
        self._max_frames = max(1, round(config.max_utterance_s / self._frame_s))
        # The frames last heard and their decisions: the start window and the pre-roll.
        self._recent: deque[tuple[AudioChunk, bool]] = deque(
            maxlen=self._preroll_frames + self._start_frames
        )
        self._idle_from = 0  # first frame that a start may be found from
        self._utterance: list[AudioChunk] = []
        self._in_speech = False
        self._position = 0  # frames so far
        self._start_frame = 0
        self._last_voiced_frame = 0
        self._silent_run = 0
        self._pressed_at: int | None = None  # frame of a push-to-talk press
        self._held: list[AudioChunk] = []

    @classmethod
    def for_turns(
        cls, config: VadConfig, frame_ms: int, rate_hz: int, speculative: bool = False
    ) -> Endpointer:
        """The companion's endpointer. ``speculative``: an utterance closes as early as its
        reply may start being prepared (``first_end_silence_ms``), and the session holds the
        reply back until ``end_silence_ms(transcript)`` is over; otherwise it closes after
        ``end_silence_ms``. A short word is dropped only after the longest end silence."""
        longest = longest_end_silence_ms(config)
        if speculative:
            config = dataclasses.replace(config, end_silence_ms=first_end_silence_ms(config))
        return cls(config, frame_ms, rate_hz, longest)

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def pressed(self) -> bool:
        return self._pressed_at is not None

    @property
    def frame_s(self) -> float:
        return self._frame_s

    @property
    def position_s(self) -> float:
        return self._position * self._frame_s

    def push(self, frame: AudioChunk, voiced: bool) -> list[Decision]:
        """Feed one frame and its speech decision; returns what that decided."""
        if self._pressed_at is not None:
            self.hear(frame)
            return []
        index = self._position
        self._position += 1
        self._recent.append((frame, voiced))
        if not self._in_speech:
            return self._push_idle(index)
        self._utterance.append(frame)
        if voiced:
            self._silent_run = 0
            self._last_voiced_frame = index
        else:
            self._silent_run += 1
        if len(self._utterance) >= self._max_frames:
            return [self._finish()]
        if self._silent_run >= self._end_frames and (
            self._voiced_s() >= self._min_voiced_s or self._silent_run >= self._discard_frames
        ):
            return [self._finish()]
        return []

    def _voiced_s(self) -> float:
        return (self._last_voiced_frame + 1 - self._start_frame) * self._frame_s

    def hear(self, frame: AudioChunk) -> None:
        """One frame heard with no speech decision (push-to-talk owns the microphone): part
        of a press in progress, else pre-roll for the next one; no hands-free speech."""
        self._position += 1
        self._recent.append((frame, False))
        if self._pressed_at is not None:
            self._held.append(frame)
        else:
            self.reset()

    def skip(self) -> None:
        """One frame passed unheard (muted): time moves on, and any speech in progress and
        the pre-roll are dropped without an event."""
        self._position += 1
        self._recent.clear()
        self.reset()

    def reset(self) -> None:
        """Forget hands-free speech in progress and the start window; keep the position (and
        a press in progress)."""
        self._in_speech = False
        self._utterance = []
        self._idle_from = self._position
        self._silent_run = 0

    def press(self) -> list[Decision]:
        """Push-to-talk pressed: everything until the release is one utterance, the
        pre-roll included. Hands-free speech in progress is dropped."""
        if self._pressed_at is not None:
            return []
        self.reset()
        self._pressed_at = self._position
        preroll = max(1, self._preroll_frames)
        self._held = [f for f, _ in list(self._recent)[-preroll:]]
        return [SpeechStarted(start_s=self.position_s)]

    def release(self) -> list[Decision]:
        """Push-to-talk released: the utterance since the press (or a discard, if short)."""
        if self._pressed_at is None:
            return []
        start_s = self._pressed_at * self._frame_s
        self._pressed_at = None
        audio = AudioChunk.concat(self._held, self._rate_hz)
        self._held = []
        self._recent.clear()
        self.reset()
        if self.position_s - start_s < self._min_voiced_s:
            return [UtteranceDiscarded(start_s=start_s, voiced_s=self.position_s - start_s)]
        return [
            UtteranceEnded(
                audio=audio,
                start_s=start_s,
                speech_end_s=self.position_s,
                detected_s=self.position_s,
            )
        ]

    def drop(self) -> list[Decision]:
        """Forget all that was heard (muting: its audio goes no further); a press in
        progress is reported discarded."""
        decisions: list[Decision] = []
        if self._pressed_at is not None:
            decisions.append(
                UtteranceDiscarded(start_s=self._pressed_at * self._frame_s, voiced_s=0.0)
            )
            self._pressed_at = None
            self._held = []
        self._recent.clear()
        self.reset()
        return decisions

    def finish(self) -> list[Decision]:
        """End of input: close an utterance that is still open."""
        if self._pressed_at is not None:
            return self.release()
        return [self._finish()] if self._in_speech else []

    def _push_idle(self, index: int) -> list[Decision]:
        idle = self._position - self._idle_from  # frames since speech could last start
        window = min(idle, self._start_frames)
        votes = sum(v for _, v in itertools.islice(reversed(self._recent), window))
        if votes < self._start_needed:
            return []
        kept = list(self._recent)[-min(idle, len(self._recent)) :]
        # Speech starts at the first voiced frame of the window; everything before is pre-roll.
        first_voiced = next(i for i, (_, v) in enumerate(kept[-window:]) if v)
        self._start_frame = index - window + 1 + first_voiced
        self._last_voiced_frame = index
        self._silent_run = 0
        self._utterance = [f for f, _ in kept]
        self._in_speech = True
        return [SpeechStarted(start_s=self._start_frame * self._frame_s)]

    def _finish(self) -> Decision:
        self._in_speech = False
        self._idle_from = self._position
        start_s = self._start_frame * self._frame_s
        speech_end_s = (self._last_voiced_frame + 1) * self._frame_s
        audio = AudioChunk.concat(self._utterance, self._rate_hz)
        self._utterance = []
        voiced_s = self._voiced_s()
        if voiced_s < self._min_voiced_s:
            return UtteranceDiscarded(start_s=start_s, voiced_s=voiced_s)
        # Keep a little of the trailing silence only: whisper needs no more, and it is cheaper.
        keep = len(audio) - max(0, self._silent_run - 6) * round(self._frame_s * self._rate_hz)
        return UtteranceEnded(
            audio=AudioChunk(audio.samples[:keep], self._rate_hz),
            start_s=start_s,
            speech_end_s=speech_end_s,
            detected_s=self.position_s,
        )
