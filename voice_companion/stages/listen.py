"""Listen: frames → speech decisions → endpointing events."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines import FrameClassifier
from voice_companion.events import Event, InputEnded, UtteranceEnded
from voice_companion.stages.endpointer import Endpointer

ARRIVALS_KEPT = 1024
"""Frames whose arrival time is remembered (30 s of 30 ms frames, beyond any end silence)."""


async def listen(
    frames: AsyncIterator[AudioChunk],
    classifier: FrameClassifier,
    endpointer: Endpointer,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Event]:
    """Classify each frame and yield what the endpointer decides, then ``InputEnded``.

    Each ended utterance is stamped with the clock reading at which its last voiced frame
    arrived: the moment the user stopped speaking, from which response latency is measured.
    The classifier runs inline: one 30 ms frame costs well under a millisecond, less than a
    hop to a worker thread would.
    """
    classifier.reset()
    arrivals: deque[float] = deque(maxlen=ARRIVALS_KEPT)
    frame_s = classifier.frame_ms / 1000
    async for frame in frames:
        arrivals.append(clock())
        for decision in endpointer.push(frame, classifier.is_speech(frame)):
            if isinstance(decision, UtteranceEnded):
                back = round((decision.detected_s - decision.speech_end_s) / frame_s)
                arrived = arrivals[max(0, len(arrivals) - 1 - back)]
                decision = dataclasses.replace(decision, speech_end_clock_s=arrived)
            yield decision
    for decision in endpointer.finish():
        yield decision
    yield InputEnded(at_s=endpointer.position_s)
