"""Endpointing: turns per-frame speech decisions into utterances.

A pure state machine (no clock, no engine): positions come from counting samples, so it gives
the same answer for a recording fed instantly and for a live microphone.
"""

from __future__ import annotations

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
    """Closes an utterance after ``config.end_silence_ms`` of silence. Speech shorter than
    ``min_utterance_ms`` (a cough, a click) is dropped, but only once ``discard_after_ms`` of
    silence has followed it (default: the end silence), so a short word the user goes on
    from ("Ask ... not ...") stays part of the utterance when the end silence is short."""

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
        self._window: deque[tuple[AudioChunk, bool]] = deque(maxlen=self._start_frames)
        self._preroll: deque[AudioChunk] = deque(maxlen=max(1, self._preroll_frames))
        self._utterance: list[AudioChunk] = []
        self._in_speech = False
        self._position = 0  # frames pushed so far
        self._start_frame = 0
        self._last_voiced_frame = 0
        self._silent_run = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def position_s(self) -> float:
        return self._position * self._frame_s

    def push(self, frame: AudioChunk, voiced: bool) -> list[Decision]:
        """Feed one frame and its speech decision; returns what that decided."""
        index = self._position
        self._position += 1
        if not self._in_speech:
            return self._push_idle(frame, voiced, index)
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

    def skip(self) -> None:
        """One frame passed unheard (muted, or push-to-talk owns the microphone): time moves
        on, and any speech in progress is dropped without an event."""
        self._position += 1
        self.reset()

    def reset(self) -> None:
        """Forget speech in progress and the start window; keep the position."""
        self._in_speech = False
        self._utterance = []
        self._window.clear()
        self._preroll.clear()
        self._silent_run = 0

    def finish(self) -> list[Decision]:
        """End of input: close an utterance that is still open."""
        return [self._finish()] if self._in_speech else []

    def _push_idle(self, frame: AudioChunk, voiced: bool, index: int) -> list[Decision]:
        if len(self._window) == self._window.maxlen:
            oldest, _ = self._window[0]
            if self._preroll_frames:
                self._preroll.append(oldest)
        self._window.append((frame, voiced))
        if sum(v for _, v in self._window) < self._start_needed:
            return []
        # Speech starts at the first voiced frame of the window; everything before is pre-roll.
        first_voiced = next(i for i, (_, v) in enumerate(self._window) if v)
        window_start = index - len(self._window) + 1
        self._start_frame = window_start + first_voiced
        self._last_voiced_frame = index
        self._silent_run = 0
        self._utterance = [*self._preroll, *(f for f, _ in self._window)]
        self._preroll.clear()
        self._window.clear()
        self._in_speech = True
        return [SpeechStarted(start_s=self._start_frame * self._frame_s)]

    def _finish(self) -> Decision:
        self._in_speech = False
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
