"""Where the companion's voice goes: a WAV file, memory (tests); the speaker comes with live audio.

A sink takes chunks at any rate; it converts them to its own rate. ``flush`` drops whatever is
queued but not yet heard (barge-in); ``close`` finishes the output.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from voice_companion.audio.chunk import AudioChunk


class AudioSink(Protocol):
    async def write(self, chunk: AudioChunk) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class MemorySink:
    """Keeps everything written, in order; for tests and for `say` into a file."""

    def __init__(self) -> None:
        self.chunks: list[AudioChunk] = []
        self.flushes = 0
        self.closed = False

    async def write(self, chunk: AudioChunk) -> None:
        self.chunks.append(chunk)

    async def flush(self) -> None:
        self.flushes += 1

    async def close(self) -> None:
        self.closed = True

    def audio(self, rate_hz: int | None = None) -> AudioChunk:
        """Everything written so far as one chunk at ``rate_hz`` (default: the first rate)."""
        from voice_companion.engines.resample import resample

        if rate_hz is None:
            rate_hz = self.chunks[0].rate_hz if self.chunks else 22_050
        return AudioChunk.concat([resample(c, rate_hz) for c in self.chunks], rate_hz)


class WavFileSink(MemorySink):
    """Collects the reply audio and writes one WAV file on close (atomically: no half file)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    async def close(self) -> None:
        from voice_companion.engines.decode import write_wav

        if self.closed:
            return
        await super().close()
        write_wav(self.path, self.audio())


class PacedSink:
    """Plays into ``inner`` at a speaker's pace: ``write`` returns once the chunk would have
    been heard, and a reply stopped mid-chunk keeps only the part heard by then. Answering a
    recording in real time (``run --input --realtime``) then takes turns as it would live:
    the user can go on while a reply is playing, and the companion backs off."""

    def __init__(self, inner: AudioSink) -> None:
        self._inner = inner

    async def write(self, chunk: AudioChunk) -> None:
        clock = asyncio.get_running_loop().time  # the clock the sleep runs on
        started = clock()
        heard = len(chunk)
        try:
            await asyncio.sleep(chunk.duration_s)
        except asyncio.CancelledError:
            share = min(1.0, (clock() - started) / max(chunk.duration_s, 1e-9))
            heard = round(len(chunk) * share)
            raise
        finally:
            if heard:
                await self._inner.write(AudioChunk(chunk.samples[:heard], chunk.rate_hz))

    async def flush(self) -> None:
        await self._inner.flush()

    async def close(self) -> None:
        await self._inner.close()
