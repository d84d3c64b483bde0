"""Sample-rate conversion with soxr: whole chunks, or a stream of chunks for live audio."""

from __future__ import annotations

from typing import Any

import numpy as np

from voice_companion.audio.chunk import AudioChunk
from voice_companion.errors import AudioError

_QUALITY = "HQ"
"""soxr quality: 'HQ' is transparent for speech and cheap enough for 2 cores in real time."""


def resample(chunk: AudioChunk, rate_hz: int) -> AudioChunk:
    """``chunk`` at ``rate_hz``; the same chunk when it already has that rate."""
    _check_rate(rate_hz)
    if chunk.rate_hz == rate_hz:
        return chunk
    if len(chunk) == 0:
        return AudioChunk(np.zeros(0, dtype=np.int16), rate_hz)
    import soxr

    try:
        out = soxr.resample(chunk.samples, chunk.rate_hz, rate_hz, quality=_QUALITY)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"cannot resample audio from {chunk.rate_hz} Hz to {rate_hz} Hz: {exc}"
        ) from exc
    return AudioChunk(np.asarray(out, dtype=np.int16), rate_hz)


class StreamResampler:
    """Resamples consecutive chunks of one stream without clicks at chunk edges.

    soxr keeps filter state between calls, so output lags input by a few milliseconds;
    ``flush()`` returns that tail at the end of the stream and readies for a new one.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        _check_rate(in_rate_hz)
        _check_rate(out_rate_hz)
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self._stream: Any = None if in_rate_hz == out_rate_hz else self._new_stream()

    def _new_stream(self) -> Any:
        import soxr

        return soxr.ResampleStream(
            self.in_rate_hz, self.out_rate_hz, 1, dtype="int16", quality=_QUALITY
        )

    def process(self, chunk: AudioChunk) -> AudioChunk:
        """Resample the next chunk of the stream (may return fewer samples at first)."""
        if chunk.rate_hz != self.in_rate_hz:
            raise AudioError(
                f"stream resampler expects {self.in_rate_hz} Hz audio, got {chunk.rate_hz} Hz"
            )
        if self._stream is None:
            return chunk
        return self._run(chunk.samples, last=False)

    def flush(self) -> AudioChunk:
        """The samples still held back at the end of the stream; starts a fresh stream."""
        if self._stream is None:
            return AudioChunk(np.zeros(0, dtype=np.int16), self.out_rate_hz)
        tail = self._run(np.zeros(0, dtype=np.int16), last=True)
        self._stream = self._new_stream()
        return tail

    def _run(self, samples: np.ndarray[Any, np.dtype[np.int16]], last: bool) -> AudioChunk:
        try:
            out = self._stream.resample_chunk(samples, last=last)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise AudioError(
                f"cannot resample audio from {self.in_rate_hz} Hz to {self.out_rate_hz} Hz: {exc}"
            ) from exc
        return AudioChunk(np.asarray(out, dtype=np.int16).reshape(-1), self.out_rate_hz)


def _check_rate(rate_hz: int) -> None:
    if rate_hz <= 0:
        raise AudioError(f"cannot resample to a rate of {rate_hz} Hz")
