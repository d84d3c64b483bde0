"""Listen: frames → speech decisions → endpointing events, by listening mode.

Hands-free, VAD decides where utterances begin and end; push-to-talk, a press and a release
do; muted, no frame goes any further than this module. While the companion is speaking, an
echo guard keeps its own voice, heard back through the microphone, from counting as the user.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

from voice_companion.audio.chunk import AudioChunk
from voice_companion.config import ListeningMode
from voice_companion.engines import FrameClassifier
from voice_companion.events import Event, InputEnded, SpeechStarted, UtteranceEnded
from voice_companion.stages.endpointer import Endpointer

log = logging.getLogger(__name__)

ARRIVALS_KEPT = 1024
"""Frames whose arrival time is remembered (30 s of 30 ms frames, beyond any end silence)."""


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
    """Routes each frame by listening mode: hands-free, through voice-activity detection
    (and the echo guard while the companion speaks) to the endpointer; push-to-talk, to the
    endpointer unjudged, a press and a release marking the utterance; muted, nowhere. The
    endpointer decides where utterances start and end; this stamps its decisions with when
    the frames they point at arrived."""

    def __init__(
        self,
        classifier: FrameClassifier,
        endpointer: Endpointer,
        mode: ListeningMode = ListeningMode.HANDS_FREE,
        guard: EchoGuard | None = None,
        playing: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._classifier = classifier
        classifier.reset()
        self._endpointer = endpointer
        self.mode = mode
        self._guard = guard
        self._playing = playing
        self._clock = clock
        self._arrivals: deque[float] = deque(maxlen=ARRIVALS_KEPT)
        self.frames_heard = 0
        """Frames that reached voice-activity detection (none while muted)."""

    @property
    def position_s(self) -> float:
        return self._endpointer.position_s

    @property
    def pressed(self) -> bool:
        return self._endpointer.pressed

    def push(self, frame: AudioChunk) -> list[Event]:
        self._arrivals.append(self._clock())
        if self.mode is ListeningMode.MUTED:
            self._endpointer.skip()
            return []
        if self.mode is ListeningMode.PUSH_TO_TALK or self._endpointer.pressed:
            self._endpointer.hear(frame)
            return []
        self.frames_heard += 1
        voiced = self._classifier.is_speech(frame)
        if self._guard is not None:
            voiced = self._guard.check(frame, voiced, self._playing())
        return [self._stamped(d) for d in self._endpointer.push(frame, voiced)]

    def finish(self) -> list[Event]:
        """End of input: close what is open."""
        return [self._stamped(d) for d in self._endpointer.finish()]

    def press(self) -> list[Event]:
        """Push-to-talk pressed: everything until the release is one utterance (pre-roll
        included, since people start talking as they press). Works in hands-free mode too."""
        if self.mode is ListeningMode.MUTED:
            return []
        return list(self._endpointer.press())  # unstamped: a press is now

    def release(self) -> list[Event]:
        return [self._stamped(d) for d in self._endpointer.release()]

    def toggle(self) -> list[Event]:
        return self.release() if self.pressed else self.press()

    def set_mode(self, mode: ListeningMode) -> list[Event]:
        """Switch mode; muting drops an utterance in progress (its audio never goes further)."""
        events: list[Event] = []
        if mode is ListeningMode.MUTED:
            events += self._endpointer.drop()
        elif mode is not ListeningMode.HANDS_FREE:
            self._endpointer.reset()
        self.mode = mode
        return events

    def _stamped(self, decision: Event) -> Event:
        """Decisions come a little after what they are about: stamp them with when the frame
        they point at arrived."""
        if isinstance(decision, SpeechStarted):
            first_voiced = self._arrived(decision.start_s + self._endpointer.frame_s)
            return dataclasses.replace(decision, start_clock_s=first_voiced)
        if isinstance(decision, UtteranceEnded):
            arrived = self._arrived(decision.speech_end_s)
            return dataclasses.replace(decision, speech_end_clock_s=arrived)
        return decision

    def _arrived(self, position_s: float) -> float | None:
        """When the frame ending at ``position_s`` arrived (None before any frame)."""
        if not self._arrivals:
            return None
        back = round((self.position_s - position_s) / self._endpointer.frame_s)
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
