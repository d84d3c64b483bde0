from __future__ import annotations

import numpy as np
import pytest

from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines import FrameClassifier
from voice_companion.engines.vad import FRAME_SAMPLES, SpeechFrameClassifier
from voice_companion.errors import VadError


def _frames(chunk: AudioChunk) -> list[AudioChunk]:
    count = len(chunk) // FRAME_SAMPLES
    return [
        AudioChunk(chunk.samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES], chunk.rate_hz)
        for i in range(count)
    ]


def _voiced_share(classifier: SpeechFrameClassifier, chunk: AudioChunk) -> float:
    classifier.reset()
    return float(np.mean([classifier.is_speech(f) for f in _frames(chunk)]))


def _white_noise(duration_s: float) -> AudioChunk:
    rng = np.random.default_rng(1234)
    return AudioChunk.from_float(rng.normal(0.0, 0.3, round(16_000 * duration_s)), 16_000)


def test_satisfies_protocol(classifier: SpeechFrameClassifier) -> None:
    as_protocol: FrameClassifier = classifier
    assert as_protocol.frame_ms == 30


def test_speech_is_voiced(classifier: SpeechFrameClassifier, jfk: AudioChunk) -> None:
    # JFK speaks with long pauses; about 60 % of the frames are speech.
    assert _voiced_share(classifier, jfk) > 0.4


def test_silence_is_not_voiced(classifier: SpeechFrameClassifier) -> None:
    assert _voiced_share(classifier, AudioChunk.silence(3.0, 16_000)) < 0.02


def test_loud_white_noise_is_rejected_by_silero(classifier: SpeechFrameClassifier) -> None:
    noise = _white_noise(3.0)
    assert _voiced_share(classifier, noise) < 0.02
    # webrtcvad alone (threshold 0 makes Silero agree with everything) calls this noise
    # speech: Silero is what rejects it.
    webrtc_only = SpeechFrameClassifier(aggressiveness=2, silero_threshold=0.0)
    assert _voiced_share(webrtc_only, noise) > 0.5


def test_probability_follows_speech(classifier: SpeechFrameClassifier, jfk: AudioChunk) -> None:
    probabilities = []
    for frame in _frames(jfk):
        classifier.is_speech(frame)
        probabilities.append(classifier.last_probability)
    assert max(probabilities) > 0.9
    classifier.reset()
    assert classifier.last_probability == 0.0


def test_reset_makes_runs_repeatable(classifier: SpeechFrameClassifier, jfk: AudioChunk) -> None:
    part = AudioChunk(jfk.samples[:16_000], 16_000)
    first = [classifier.is_speech(f) for f in _frames(part)]
    classifier.reset()
    second = [classifier.is_speech(f) for f in _frames(part)]
    assert first == second


@pytest.mark.parametrize(("samples", "rate_hz"), [(479, 16_000), (960, 16_000), (240, 8_000)])
def test_wrong_frames_are_rejected(
    classifier: SpeechFrameClassifier, samples: int, rate_hz: int
) -> None:
    with pytest.raises(VadError, match="480 samples at 16000 Hz"):
        classifier.is_speech(AudioChunk(np.zeros(samples, dtype=np.int16), rate_hz))


def test_bad_settings() -> None:
    with pytest.raises(VadError):
        SpeechFrameClassifier(aggressiveness=4, silero_threshold=0.5)
    with pytest.raises(VadError):
        SpeechFrameClassifier(aggressiveness=2, silero_threshold=1.5)


def test_speech_after_a_minute_of_digital_silence_is_heard_as_well(
    classifier: SpeechFrameClassifier, jfk: AudioChunk
) -> None:
    # The first 4.5 s of speech ("And so my fellow Americans, ask not") decide whether the
    # companion hears the start of what the user says.
    opening = AudioChunk(jfk.samples[: 16_000 * 9 // 2], 16_000)
    fresh = _voiced_share(classifier, opening)  # starts from a reset
    quiet_then_speech = AudioChunk.concat([AudioChunk.silence(60.0, 16_000), opening], 16_000)
    decisions = [classifier.is_speech(f) for f in _frames(quiet_then_speech)]
    after_quiet = float(np.mean(decisions[-len(_frames(opening)) :]))
    assert after_quiet >= 0.8 * fresh
