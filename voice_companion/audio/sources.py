"""Where the companion's hearing comes from: a recording (now) or a microphone (live audio).

Sources yield 16 kHz frames of ``frame_ms``; a recording can be fed instantly or at real-time
pace, as a microphone would deliver it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from voice_companion.audio.chunk import AudioChunk


async def recording_frames(
    recording: AudioChunk,
    frame_ms: int,
    realtime: bool,
    tail_silence_s: float = 0.0,
) -> AsyncIterator[AudioChunk]:
    """Frames of ``recording`` followed by ``tail_silence_s`` of silence (a mic keeps hearing
    the room after the speaker stops). A partial last frame is padded with silence.

    Not in real time, the whole recording is there at once: frames are yielded without ever
    suspending, so it is segmented completely before the first turn starts and the result
    does not depend on how fast this machine answers.
    """
    rate = recording.rate_hz
    size = rate * frame_ms // 1000
    padded_len = -(-len(recording) // size) * size + round(tail_silence_s * rate / size) * size
    samples = recording.samples
    start = time.monotonic()
    for n, offset in enumerate(range(0, padded_len, size)):
        if realtime:
            delay = start + n * frame_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        piece = samples[offset : offset + size]
        if len(piece) < size:
            piece = AudioChunk.silence(size / rate, rate).samples.copy()
            tail = samples[offset : offset + size]
            piece[: len(tail)] = tail
        yield AudioChunk(piece, rate)
