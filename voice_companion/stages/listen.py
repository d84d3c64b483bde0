"""Listen: frames → speech decisions → endpointing events, by listening mode.

Hands-free, VAD decides where utterances begin and end; push-to-talk, a press and a release
do; muted, no frame goes any further than this module. While the companion is speaking, an
echo guard keeps its own voice, heard back through the microphone, from counting as the user.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

from voice_companion.audio.chunk import STT_RATE_HZ, AudioChunk
from voice_companion.engines import FrameClassifier
from voice_companion.events import (
    Event,
    InputEnded,
    SpeechStarted,
    UtteranceDiscarded,
    UtteranceEnded,
)
from voice_companion.stages.endpointer import Endpointer

log = logging.getLogger(__name__)

ARRIVALS_KEPT = 1024
"""Frames whose arrival time is remembered (30 s of 30 ms frames, beyond any end silence)."""


class ListeningMode(enum.Enum):
    HANDS_FREE = "hands_free"
    PUSH_TO_TALK = "push_to_talk"
    MUTED = "muted"


class EchoGuard:
    """While the companion speaks, a voiced frame counts only if it is ``margin_db`` louder
    than the echo expected from what is being played.

    The expected echo is the loudest playback level of the last ``window_s`` times the
    coupling between speaker and microphone. Each time playback starts, its first 300 ms
    measure the coupling again (the loudest microphone-to-playback ratio), and the coupling
    used is the lower median of the last ``HISTORY`` measurements. A user who talks over the
    start of one reply is heard as far louder "echo" in that measurement; the median keeps
    that one from deafening the guard to them for good, while a real change (the volume
    turned up) wins after a few replies. Measuring the echo from the microphone alone fails
    both ways: a mean sinks in the pauses between words and lets the next loud word through,
    and a peak learns the user's own voice as "echo".

    For ``ECHO_TAIL_FRAMES`` after playback stops (between sentences, and at the end of a
    reply, whose last words are still in the device's buffer and the room), the microphone is
    judged the same way. Speech that began after that, before playback started again, is the
    user's, not an echo: it counts for as long as it goes on unbroken, and the coupling is not
    measured on it. That matters most when nothing has been measured yet (``measured``, kept
    from the last run, is empty on a new install): a user who goes on talking as the first
    reply begins is heard, and the companion backs off.
    """

    WARMUP_FRAMES = 10
    """Frames at the start of playback that measure the coupling (300 ms)."""
    HISTORY = 5
    """Measurements the coupling is the median of."""
    ECHO_TAIL_FRAMES = 10
    """Quiet frames after playback (300 ms) past which what the microphone hears is no echo."""

    def __init__(
        self,
        margin_db: float,
        playback_level: Callable[[], float],
        window_s: float = 0.3,
        floor_rms: float = 100.0,
        measured: Sequence[float] = (),
        on_measured: Callable[[Sequence[float]], None] = lambda _measured: None,
    ) -> None:
        self._ratio = 10 ** (margin_db / 20)
        self._playback_level = playback_level
        self._floor_rms = floor_rms
        self._recent: deque[float] = deque(maxlen=max(1, round(window_s / 0.03)))
        self._measured: deque[float] = deque(measured, maxlen=self.HISTORY)
        self._on_measured = on_measured
        self._measuring: float | None = None
        self._playing_frames = 0
        self._quiet_frames = self.ECHO_TAIL_FRAMES
        self._user_talking = False
        """A voiced run that began in the quiet, unbroken since."""

    @property
    def coupling(self) -> float:
        """The lower median of the measurements so far (0 before the first)."""
        if not self._measured:
            return 0.0
        return sorted(self._measured)[(len(self._measured) - 1) // 2]

    def expected_echo_rms(self) -> float:
        return max(self._floor_rms, self.coupling * max(self._recent, default=0.0))

    def check(self, frame: AudioChunk, voiced: bool, playing: bool) -> bool:
        if not playing:
            self._playing_frames = 0
            self._measuring = None
            self._quiet_frames += 1
            if self._quiet_frames > self.ECHO_TAIL_FRAMES:
                self._recent.clear()
                self._user_talking = voiced  # a run that begins in the quiet is the user's
                return voiced
            # The last words still ring (in the room, in the device's buffer): judged as
            # echo of what was just played, fading as the silence goes on.
            self._recent.append(0.0)
            self._user_talking = False
            return self._louder_than_echo(frame.rms(), voiced)
        self._quiet_frames = 0
        self._recent.append(self._playback_level())
        level = frame.rms()
        self._playing_frames += 1
        if self._user_talking:
            self._user_talking = voiced
            if voiced:
                self._playing_frames = self.WARMUP_FRAMES + 1  # no measurement on their voice
                return True
        heard = self._louder_than_echo(level, voiced)
        if self._playing_frames <= self.WARMUP_FRAMES:
            reference = max(self._recent)
            if reference > self._floor_rms:
                self._measuring = max(self._measuring or 0.0, level / reference)
            if self._playing_frames == self.WARMUP_FRAMES and self._measuring is not None:
                self._measured.append(self._measuring)
                log.debug(
                    "speaker-to-microphone coupling measured %.3f; using %.3f",
                    self._measuring,
                    self.coupling,
                )
                self._on_measured(tuple(self._measured))
        return heard

    def _louder_than_echo(self, level_rms: float, voiced: bool) -> bool:
        # Judged by the coupling measured before (none yet: this speaker and microphone are
        # unknown, so nothing counts while the first measurement runs).
        return (
            bool(self._measured) and voiced and level_rms > self.expected_echo_rms() * self._ratio
        )


class Listener:
    def __init__(
        self,
        classifier: FrameClassifier,
        endpointer: Endpointer,
        mode: ListeningMode = ListeningMode.HANDS_FREE,
        preroll_ms: int = 500,
        min_utterance_ms: int = 300,
        guard: EchoGuard | None = None,
        playing: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._classifier = classifier
        classifier.reset()
        self._endpointer = endpointer
        self.mode = mode
        self._frame_s = classifier.frame_ms / 1000
        preroll_frames = max(1, round(preroll_ms / 1000 / self._frame_s))
        self._preroll: deque[AudioChunk] = deque(maxlen=preroll_frames)
        self._min_utterance_s = min_utterance_ms / 1000
        self._guard = guard
        self._playing = playing
        self._clock = clock
        self._arrivals: deque[float] = deque(maxlen=ARRIVALS_KEPT)
        self._pressed_at: int | None = None  # frame index of a push-to-talk press
        self._held: list[AudioChunk] = []
        self._frames = 0
        self.frames_heard = 0
        """Frames that reached voice-activity detection (none while muted)."""

    @property
    def position_s(self) -> float:
        return self._frames * self._frame_s

    @property
    def pressed(self) -> bool:
        return self._pressed_at is not None

    def push(self, frame: AudioChunk) -> list[Event]:
        self._frames += 1
        self._arrivals.append(self._clock())
        if self.mode is ListeningMode.MUTED:
            self._endpointer.skip()
            return []
        if self._pressed_at is not None:
            self._held.append(frame)
            self._endpointer.skip()
            return []
        self._preroll.append(frame)
        if self.mode is ListeningMode.PUSH_TO_TALK:
            self._endpointer.skip()
            return []
        self.frames_heard += 1
        voiced = self._classifier.is_speech(frame)
        if self._guard is not None:
            voiced = self._guard.check(frame, voiced, self._playing())
        return [self._stamped(d) for d in self._endpointer.push(frame, voiced)]

    def finish(self) -> list[Event]:
        """End of input: close what is open."""
        if self._pressed_at is not None:
            return self.release()
        return [self._stamped(d) for d in self._endpointer.finish()]

    def press(self) -> list[Event]:
        """Push-to-talk pressed: everything until the release is one utterance (pre-roll
        included, since people start talking as they press). Works in hands-free mode too."""
        if self.mode is ListeningMode.MUTED or self._pressed_at is not None:
            return []
        self._endpointer.reset()
        self._pressed_at = self._frames
        self._held = list(self._preroll)
        return [SpeechStarted(start_s=self.position_s)]

    def release(self) -> list[Event]:
        if self._pressed_at is None:
            return []
        start_s = self._pressed_at * self._frame_s
        self._pressed_at = None
        audio = AudioChunk.concat(self._held, STT_RATE_HZ)
        self._held = []
        self._preroll.clear()
        if self.position_s - start_s < self._min_utterance_s:
            return [UtteranceDiscarded(start_s=start_s, voiced_s=self.position_s - start_s)]
        return [
            UtteranceEnded(
                audio=audio,
                start_s=start_s,
                speech_end_s=self.position_s,
                detected_s=self.position_s,
                speech_end_clock_s=self._arrivals[-1] if self._arrivals else None,
            )
        ]

    def toggle(self) -> list[Event]:
        return self.release() if self.pressed else self.press()

    def set_mode(self, mode: ListeningMode) -> list[Event]:
        """Switch mode; muting drops an utterance in progress (its audio never goes further)."""
        events: list[Event] = []
        if mode is ListeningMode.MUTED and self._pressed_at is not None:
            start_s = self._pressed_at * self._frame_s
            events.append(UtteranceDiscarded(start_s=start_s, voiced_s=0.0))
            self._pressed_at = None
            self._held = []
        if mode is not ListeningMode.HANDS_FREE:
            self._endpointer.reset()
        if mode is ListeningMode.MUTED:
            self._preroll.clear()
        self.mode = mode
        return events

    def _stamped(self, decision: Event) -> Event:
        """Decisions come a little after what they are about: stamp them with when the frame
        they point at arrived."""
        if isinstance(decision, SpeechStarted):
            first_voiced = self._arrived(decision.start_s + self._frame_s)
            return dataclasses.replace(decision, start_clock_s=first_voiced)
        if isinstance(decision, UtteranceEnded):
            arrived = self._arrived(decision.speech_end_s)
            return dataclasses.replace(decision, speech_end_clock_s=arrived)
        return decision

    def _arrived(self, position_s: float) -> float:
        """When the frame ending at ``position_s`` arrived."""
        back = round((self.position_s - position_s) / self._frame_s)
        return self._arrivals[max(0, len(self._arrivals) - 1 - back)]


async def listen(frames: AsyncIterator[AudioChunk], listener: Listener) -> AsyncIterator[Event]:
    """Events heard in ``frames``, then ``InputEnded``. The classifier runs inline: one 30 ms
    frame costs about 0.1 ms, less than a hop to a worker thread would."""
    async for frame in frames:
        for event in listener.push(frame):
            yield event
    for event in listener.finish():
        yield event
    yield InputEnded(at_s=listener.position_s)
