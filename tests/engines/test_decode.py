from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines.decode import read_audio, write_wav
from voice_companion.errors import AudioError, AudioFileError


def _tone(rate_hz: int, duration_s: float, freq_hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(rate_hz * duration_s)) / rate_hz
    return (np.sin(2 * np.pi * freq_hz * t) * 12_000).astype(np.int16)


def _write_raw_wav(path: Path, interleaved: np.ndarray, rate_hz: int, channels: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(interleaved.astype("<i2").tobytes())


def _encode(path: Path, codec: str, rate_hz: int, layout: str, mono: np.ndarray) -> None:
    """Write ``mono`` (duplicated per channel) with PyAV's encoder, e.g. MP3 or Vorbis."""
    import av

    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream(codec, rate=rate_hz, layout=layout)
        channels = stream.codec_context.layout.nb_channels
        frame_samples = 1152
        for start in range(0, len(mono), frame_samples):
            part = mono[start : start + frame_samples]
            planes = np.tile(part.astype(np.float32) / 32768.0, (channels, 1))
            frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
            frame.sample_rate = rate_hz
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_jfk_flac_decodes_to_16k(jfk_path: Path) -> None:
    chunk = read_audio(jfk_path, 16_000)
    assert chunk.rate_hz == 16_000
    assert chunk.duration_s == pytest.approx(11.0, abs=0.05)
    assert chunk.peak() > 10_000


def test_stereo_44k_wav_is_mixed_down_and_resampled(tmp_path: Path) -> None:
    left = _tone(44_100, 2.0)
    path = tmp_path / "eng_stereo.wav"
    _write_raw_wav(path, np.stack([left, left], axis=1).reshape(-1), 44_100, 2)
    chunk = read_audio(path, 16_000)
    assert chunk.rate_hz == 16_000
    assert len(chunk) == pytest.approx(32_000, abs=32)
    # Identical channels mix to the same tone, not to double or half of it.
    assert chunk.peak() == pytest.approx(12_000, rel=0.05)


def test_8k_wav_is_upsampled(tmp_path: Path) -> None:
    path = tmp_path / "eng_8k.wav"
    _write_raw_wav(path, _tone(8_000, 1.5, 300.0), 8_000, 1)
    chunk = read_audio(path, 16_000)
    assert chunk.duration_s == pytest.approx(1.5, abs=0.01)
    assert chunk.rms() > 5_000


def test_other_target_rate(jfk_path: Path) -> None:
    chunk = read_audio(jfk_path, 22_050)
    assert chunk.rate_hz == 22_050
    assert chunk.duration_s == pytest.approx(11.0, abs=0.05)


@pytest.mark.parametrize(
    ("name", "codec", "rate_hz", "layout"),
    [("eng_tone.mp3", "libmp3lame", 44_100, "stereo"), ("eng_tone.ogg", "libopus", 48_000, "mono")],
)
def test_compressed_formats(
    tmp_path: Path, name: str, codec: str, rate_hz: int, layout: str
) -> None:
    path = tmp_path / name
    _encode(path, codec, rate_hz, layout, _tone(rate_hz, 1.0))
    chunk = read_audio(path, 16_000)
    # Encoders add a little padding; the length and level must still be right.
    assert chunk.duration_s == pytest.approx(1.0, abs=0.1)
    assert chunk.rms() > 4_000


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="no such file"):
        read_audio(tmp_path / "nope.wav")


def test_text_file_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are not the samples you are looking for\n" * 20)
    with pytest.raises(AudioFileError, match="not an audio file PyAV can decode"):
        read_audio(path)


def test_wav_with_no_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    _write_raw_wav(path, np.zeros(0, dtype=np.int16), 16_000, 1)
    with pytest.raises(AudioFileError, match="holds no audio"):
        read_audio(path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    path.touch()
    with pytest.raises(AudioFileError, match="holds no audio"):
        read_audio(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="directory"):
        read_audio(tmp_path)


def test_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.flac"
    path.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(AudioFileError) as info:
        read_audio(path)
    assert "\n" not in str(info.value)


def test_write_wav_round_trip(tmp_path: Path) -> None:
    samples = np.random.default_rng(7).integers(-32768, 32767, 24_000, dtype=np.int16)
    path = tmp_path / "out.wav"
    write_wav(path, AudioChunk(samples, 24_000))
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
    back = read_audio(path, 24_000)
    assert np.array_equal(back.samples, samples)
    # Only the finished file is left behind, no temporary sibling.
    assert os.listdir(tmp_path) == ["out.wav"]


def test_write_wav_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="cannot write"):
        write_wav(tmp_path / "no" / "such" / "out.wav", AudioChunk.silence(0.1, 16_000))


def test_ten_minute_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = rng.integers(-2000, 2000, 16_000 * 600, dtype=np.int16)
    path = tmp_path / "long.wav"
    write_wav(path, AudioChunk(samples, 16_000))
    back = read_audio(path, 16_000)
    assert np.array_equal(back.samples, samples)
