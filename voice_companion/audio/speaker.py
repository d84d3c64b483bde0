"""The live speaker as an ``AudioSink``: ``write`` returns once the chunk has been played,
so the session knows exactly what the user heard; ``flush`` silences it at once."""

from __future__ import annotations

import asyncio

from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines.audio_device import PlaybackStream


class SpeakerSink:
    def __init__(self, stream: PlaybackStream) -> None:
        self._stream = stream
        self._pending: set[asyncio.Future[None]] = set()

    @property
    def playing(self) -> bool:
        return self._stream.playing

    @property
    def level_rms(self) -> float:
        return self._stream.level_rms

    async def write(self, chunk: AudioChunk) -> None:
        from voice_companion.engines.resample import resample

        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.add(done)

        def finished() -> None:
            loop.call_soon_threadsafe(_resolve, done)

        samples = resample(chunk, self._stream.rate_hz).samples
        self._stream.enqueue(samples, finished)
        try:
            await done
        finally:
            self._pending.discard(done)

    async def flush(self) -> None:
        self._stream.clear()
        for future in list(self._pending):
            _resolve(future)

    async def close(self) -> None:
        await self.flush()
        await asyncio.to_thread(self._stream.close)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
