"""Where the companion's hearing comes from: a recording (now) or a microphone (live audio).

Sources yield 16 kHz frames of ``frame_ms``; a recording can be fed instantly or at real-time
pace, as a microphone would deliver it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable

import numpy as np

from voice_companion.audio.chunk import PCM, AudioChunk


async def recording_frames(
    recording: AudioChunk | Iterable[AudioChunk],
    frame_ms: int,
    realtime: bool,
    tail_silence_s: float = 0.0,
) -> AsyncIterator[AudioChunk]:
    """Frames of ``recording`` followed by ``tail_silence_s`` of silence (a mic keeps hearing
    the room after the speaker stops). A partial last frame is padded with silence.

    ``recording`` is one chunk, or pieces of one at a single rate (``AudioStream``: a long
    recording is then read from disk as it is fed, never held whole).

    Not in real time, the whole recording is there at once: frames are yielded without ever
    suspending, so it is segmented completely before the first turn starts and the result
    does not depend on how fast this machine answers.
    """
    pieces = [recording] if isinstance(recording, AudioChunk) else recording
    start = time.monotonic()
    n = 0
    carry: PCM | None = None
    rate = 0
    size = 0

    async def paced(samples: PCM) -> AudioChunk:
        nonlocal n
        if realtime:
            delay = start + n * frame_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        n += 1
        return AudioChunk(samples, rate)

    for piece in pieces:
        if not rate:
            rate, size = piece.rate_hz, piece.rate_hz * frame_ms // 1000
        elif piece.rate_hz != rate:
            raise ValueError(f"a recording's pieces must share one rate ({piece.rate_hz} Hz)")
        samples = piece.samples if carry is None else np.concatenate([carry, piece.samples])
        whole = len(samples) // size * size
        for offset in range(0, whole, size):
            yield await paced(samples[offset : offset + size])
        carry = samples[whole:] if whole < len(samples) else None
    if not rate:
        return
    if carry is not None:
        padded = np.zeros(size, dtype=np.int16)
        padded[: len(carry)] = carry
        yield await paced(padded)
    for _ in range(round(tail_silence_s * rate / size)):
        yield await paced(np.zeros(size, dtype=np.int16))
