"""Prosody on real speech: the JFK recording, the benchmark's utterances, and piper speaking
the same words fast and slow, loud and quiet, high and low."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from voice_companion.audio.chunk import STT_RATE_HZ, AudioChunk
from voice_companion.audio.prosody import Prosody, count_syllables, measure
from voice_companion.engines import bundled
from voice_companion.engines.decode import read_audio
from voice_companion.engines.resample import resample
from voice_companion.engines.tts import PiperSynthesizer

DATA = Path(__file__).resolve().parents[1] / "data"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
SENTENCE = "I went for a long walk by the river this morning, and the weather was lovely."


@pytest.fixture(scope="module")
def jfk() -> AudioChunk:
    return read_audio(DATA / "jfk.flac", STT_RATE_HZ)


def piper_says(text: str, length_scale: float) -> AudioChunk:
    voice = PiperSynthesizer(bundled.piper_voice_path(), length_scale=length_scale, threads=1)
    return resample(voice.synthesize(text), STT_RATE_HZ)


@pytest.fixture(scope="module")
def piper_normal() -> AudioChunk:
    return piper_says(SENTENCE, 1.0)


def scaled(audio: AudioChunk, gain: float) -> AudioChunk:
    return AudioChunk.from_float(audio.to_float32() * gain, audio.rate_hz)


def test_syllables_are_counted_closely_enough() -> None:
    assert count_syllables("How are you today?") == 5
    assert count_syllables("I had a long day at work.") == 7
    assert count_syllables("Chocolate makes everyone happy") in (9, 10, 11)
    assert count_syllables("") == 0


def test_jfk_has_a_plausible_rate_level_and_male_pitch(jfk: AudioChunk) -> None:
    p = measure(jfk, JFK_TEXT)
    assert p.rate_sps is not None and 2.5 < p.rate_sps < 7.0
    assert p.loudness_dbfs is not None and -30 < p.loudness_dbfs < -6
    # A man speaking to a crowd: raised, but well below a child's or most women's voices.
    # (Autocorrelation, harmonic sum and cepstrum all put it near 240 Hz.)
    assert p.pitch_hz is not None and 85 < p.pitch_hz < 300
    assert 5.0 < p.speech_s < jfk.duration_s


def test_the_benchmark_utterances_measure_sensibly() -> None:
    manifest = json.loads((DATA / "utterances" / "manifest.json").read_text())
    by_voice: dict[str, list[Prosody]] = {}
    for u in manifest["utterances"]:
        p = measure(read_audio(DATA / "utterances" / u["file"], STT_RATE_HZ), u["text"])
        assert p.rate_sps is not None and 1.5 < p.rate_sps < 9.0, u
        assert p.loudness_dbfs is not None and -30 < p.loudness_dbfs < -10, u
        assert p.pitch_hz is not None and 70 < p.pitch_hz < 160, u  # two male voices
        assert p.speech_s <= u["speech_end_s"] - u["speech_start_s"] + 0.05, u
        by_voice.setdefault(u["voice"], []).append(p)
    # piper-slow is piper at length_scale 1.15: the same voice, a little slower.
    fast = statistics.median(p.rate_sps or 0 for p in by_voice["piper"])
    slow = statistics.median(p.rate_sps or 0 for p in by_voice["piper-slow"])
    assert fast > slow


@pytest.mark.models
def test_faster_speech_has_a_higher_rate(piper_normal: AudioChunk) -> None:
    fast_audio, slow_audio = piper_says(SENTENCE, 0.7), piper_says(SENTENCE, 1.4)
    fast, slow = measure(fast_audio, SENTENCE), measure(slow_audio, SENTENCE)
    normal = measure(piper_normal, SENTENCE)
    assert fast.rate_sps and normal.rate_sps and slow.rate_sps
    assert fast.rate_sps > normal.rate_sps > slow.rate_sps
    # piper stretches the speech by less than the length scale (its sentence padding is
    # fixed, and its durations vary from run to run): compare with what it actually made.
    stretch = slow_audio.duration_s / fast_audio.duration_s
    assert stretch > 1.4
    assert fast.rate_sps / slow.rate_sps == pytest.approx(stretch, rel=0.15)


@pytest.mark.models
def test_a_gain_change_moves_loudness_by_the_gain_and_nothing_else(
    jfk: AudioChunk, piper_normal: AudioChunk
) -> None:
    for audio, text in ((jfk, JFK_TEXT), (piper_normal, SENTENCE)):
        base = measure(audio, text)
        for gain in (0.25, 0.5):
            quiet = measure(scaled(audio, gain), text)
            assert base.loudness_dbfs is not None and quiet.loudness_dbfs is not None
            expected_db = 20 * np.log10(gain)
            assert quiet.loudness_dbfs - base.loudness_dbfs == pytest.approx(expected_db, abs=0.5)
            assert quiet.rate_sps == pytest.approx(base.rate_sps, rel=0.05)
            assert quiet.pitch_hz == pytest.approx(base.pitch_hz, rel=0.05)


@pytest.mark.models
def test_pitch_follows_a_known_shift(piper_normal: AudioChunk) -> None:
    # The same samples declared at a 25 % higher rate play 25 % higher (and faster).
    raised = resample(AudioChunk(piper_normal.samples, round(STT_RATE_HZ * 1.25)), STT_RATE_HZ)
    base = measure(piper_normal, SENTENCE)
    high = measure(raised, SENTENCE)
    assert base.pitch_hz and high.pitch_hz
    assert high.pitch_hz / base.pitch_hz == pytest.approx(1.25, rel=0.06)
    assert 70 < base.pitch_hz < 160


def test_silence_and_scraps_measure_as_nothing() -> None:
    assert measure(AudioChunk.silence(1.0, STT_RATE_HZ), "hello") == Prosody(0.0, None, None, None)
    assert measure(AudioChunk.silence(0.005, STT_RATE_HZ), "hi") == Prosody(0.0, None, None, None)
    noise = AudioChunk(
        np.random.default_rng(1).normal(0, 30, STT_RATE_HZ).astype(np.int16), STT_RATE_HZ
    )
    p = measure(noise, "")
    assert p.rate_sps is None  # no words, no rate
    assert p.pitch_hz is None  # noise has no period
