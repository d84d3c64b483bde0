from __future__ import annotations

import numpy as np
import pytest

from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines.resample import StreamResampler, resample
from voice_companion.errors import AudioError


def _tone(rate_hz: int, duration_s: float, freq_hz: float = 440.0) -> AudioChunk:
    t = np.arange(round(rate_hz * duration_s)) / rate_hz
    return AudioChunk((np.sin(2 * np.pi * freq_hz * t) * 10_000).astype(np.int16), rate_hz)


def test_same_rate_returns_same_chunk() -> None:
    chunk = _tone(16_000, 0.1)
    assert resample(chunk, 16_000) is chunk


def test_resample_keeps_duration_and_level() -> None:
    out = resample(_tone(22_050, 1.0), 16_000)
    assert out.rate_hz == 16_000
    assert len(out) == 16_000
    assert out.peak() == pytest.approx(10_000, rel=0.03)


def test_empty_chunk() -> None:
    out = resample(AudioChunk(np.zeros(0, dtype=np.int16), 48_000), 16_000)
    assert (len(out), out.rate_hz) == (0, 16_000)


def test_bad_rate() -> None:
    with pytest.raises(AudioError):
        resample(_tone(16_000, 0.1), 0)


def test_stream_matches_whole_resample() -> None:
    source = _tone(48_000, 1.0)
    stream = StreamResampler(48_000, 16_000)
    pieces = [
        stream.process(AudioChunk(source.samples[i : i + 960], 48_000))
        for i in range(0, len(source), 960)
    ]
    pieces.append(stream.flush())
    joined = AudioChunk.concat(pieces, 16_000)
    assert len(joined) == 16_000
    whole = resample(source, 16_000)
    # The same filter run in pieces: no clicks at the 20 ms chunk edges.
    diff = np.abs(joined.samples.astype(np.int32) - whole.samples.astype(np.int32))
    assert int(diff[100:-100].max()) <= 2


def test_stream_rejects_other_rate_and_passes_through_same_rate() -> None:
    stream = StreamResampler(48_000, 16_000)
    with pytest.raises(AudioError):
        stream.process(_tone(44_100, 0.01))
    same = StreamResampler(16_000, 16_000)
    chunk = _tone(16_000, 0.02)
    assert same.process(chunk) is chunk
    assert len(same.flush()) == 0
