from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from voice_companion.engines import Synthesizer
from voice_companion.engines.stt import WhisperTranscriber
from voice_companion.engines.tts import PiperSynthesizer
from voice_companion.errors import ModelNotFoundError, TtsError

SENTENCE = "The weather is lovely today, so let us walk to the park."


def test_sentence_sounds_right(
    synthesizer: PiperSynthesizer, transcriber: WhisperTranscriber
) -> None:
    as_protocol: Synthesizer = synthesizer
    assert as_protocol.rate_hz == 22_050
    audio = as_protocol.synthesize(SENTENCE)
    assert audio.rate_hz == 22_050
    # 12 words at a normal speaking pace: roughly 2 to 6 seconds.
    assert 2.0 < audio.duration_s < 6.0
    assert audio.rms() > 500
    heard = set(re.findall(r"[a-z]+", transcriber.transcribe(audio).text.lower()))
    assert {"weather", "lovely", "park"} <= heard


@pytest.mark.parametrize("text", ["", "   \n\t", "..."])
def test_nothing_to_say_gives_empty_audio(synthesizer: PiperSynthesizer, text: str) -> None:
    audio = synthesizer.synthesize(text)
    assert (len(audio), audio.rate_hz) == (0, 22_050)


def test_length_scale_slows_speech(synthesizer: PiperSynthesizer) -> None:
    from voice_companion.engines import bundled

    # Without the voice's random variation (which alone moved a short phrase by 15 % in
    # CI), only the length scale tells the two apart.
    flat = {"noise_scale": 0.0, "noise_w_scale": 0.0}
    slow = PiperSynthesizer(bundled.piper_voice_path(), length_scale=1.5, **flat)
    normal = PiperSynthesizer(bundled.piper_voice_path(), **flat)
    normal_s = normal.synthesize("Good morning.").duration_s
    assert slow.synthesize("Good morning.").duration_s > normal_s * 1.2


def test_missing_voice(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such piper voice"):
        PiperSynthesizer(tmp_path / "nope.onnx")


def test_voice_without_its_json(tmp_path: Path) -> None:
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"not really a model")
    with pytest.raises(ModelNotFoundError, match=r"voice\.onnx\.json"):
        PiperSynthesizer(voice)


@pytest.mark.models
def test_without_noise_the_same_text_sounds_the_same() -> None:
    from voice_companion.engines import bundled

    steady = PiperSynthesizer(bundled.piper_voice_path(), noise_scale=0.0, noise_w_scale=0.0)
    first, second = steady.synthesize(SENTENCE), steady.synthesize(SENTENCE)
    assert len(first) > 0
    assert np.array_equal(first.samples, second.samples)


def test_the_voices_own_noise_varies_each_rendering(synthesizer: PiperSynthesizer) -> None:
    # piper's noise is drawn inside the model, unseeded: two renderings differ.
    first, second = synthesizer.synthesize(SENTENCE), synthesizer.synthesize(SENTENCE)
    assert not (len(first) == len(second) and np.array_equal(first.samples, second.samples))


def test_negative_noise_is_refused() -> None:
    from voice_companion.engines import bundled

    with pytest.raises(TtsError, match="noise_w_scale must be 0 or more"):
        PiperSynthesizer(bundled.piper_voice_path(), noise_w_scale=-0.1)
