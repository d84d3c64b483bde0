"""Long recordings are read from disk a piece at a time: the same samples and frames as
decoding them whole, in memory that does not grow with their length."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import sox_audio
from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sources import recording_frames
from voice_companion.engines.decode import AudioStream, read_audio
from voice_companion.errors import AudioFileError


def test_the_pieces_are_the_whole_recording(jfk_path: Path) -> None:
    whole = read_audio(jfk_path)
    stream = AudioStream(jfk_path, piece_s=1.3)
    pieces = list(stream)
    assert len(pieces) > 5
    assert all(p.rate_hz == 16_000 for p in pieces)
    assert np.array_equal(np.concatenate([p.samples for p in pieces]), whole.samples)
    assert stream.duration_s == pytest.approx(whole.duration_s, abs=0.05)
    # Each iteration starts again from the beginning.
    assert np.array_equal(np.concatenate([p.samples for p in stream]), whole.samples)


async def _frames(recording: AudioChunk | AudioStream) -> list[AudioChunk]:
    return [f async for f in recording_frames(recording, 30, realtime=False, tail_silence_s=0.5)]


def test_frames_from_the_stream_match_frames_from_the_whole(jfk_path: Path) -> None:
    whole = asyncio.run(_frames(read_audio(jfk_path)))
    streamed = asyncio.run(_frames(AudioStream(jfk_path, piece_s=0.77)))  # pieces not frame-sized
    assert len(streamed) == len(whole)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(whole, streamed, strict=True))


def test_bad_files_are_refused_when_the_stream_is_made(tmp_path: Path) -> None:
    empty, text, folder = tmp_path / "empty.wav", tmp_path / "text.wav", tmp_path / "dir"
    empty.touch()
    text.write_text("hello, not audio\n" * 100)
    folder.mkdir()
    for path, message in [
        (tmp_path / "missing.wav", "no such file"),
        (empty, "holds no audio"),
        (text, "not an audio file"),
        (folder, "is a directory"),
    ]:
        with pytest.raises(AudioFileError, match=message):
            AudioStream(path)


def test_reading_twenty_minutes_takes_no_more_memory_than_a_piece(tmp_path: Path) -> None:
    long = tmp_path / "twenty-minutes.flac"
    sox_audio(long, 1200, tone_hz=300)
    stream = AudioStream(long)
    tracemalloc.start()
    try:
        samples = sum(len(piece) for piece in stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert samples == 1200 * 16_000
    # Decoded whole it is 38 MB; a 10 s piece is 320 kB.
    assert peak < 4_000_000, peak
