from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.engines.conftest import JFK_TEXT
from voice_companion.audio.chunk import AudioChunk
from voice_companion.bench.latency import default_utterances_dir, load_utterances
from voice_companion.engines import Transcriber
from voice_companion.engines.decode import read_audio
from voice_companion.engines.resample import resample
from voice_companion.engines.stt import FULL_WINDOW_S, WhisperTranscriber, _loops
from voice_companion.errors import ModelNotFoundError


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words, divided by the reference length."""
    ref, hyp = _words(reference), _words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution
                )
            )
        previous = current
    return previous[-1] / max(len(ref), 1)


def test_wer_helper() -> None:
    assert word_error_rate("a b c d", "a b c d") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert word_error_rate("Ask, not!", "ask not") == 0.0


def test_jfk(transcriber: WhisperTranscriber, jfk: AudioChunk) -> None:
    as_protocol: Transcriber = transcriber
    transcript = as_protocol.transcribe(jfk)
    assert word_error_rate(JFK_TEXT, transcript.text) <= 0.10, transcript.text
    assert transcript.audio_s == pytest.approx(11.0, abs=0.05)
    assert transcript.text == transcript.text.strip()


def test_other_rates_are_resampled(transcriber: WhisperTranscriber, jfk: AudioChunk) -> None:
    part = AudioChunk(jfk.samples[: 16_000 * 4], 16_000)  # "And so my fellow Americans"
    transcript = transcriber.transcribe(resample(part, 44_100))
    assert "americans" in _words(transcript.text)
    assert transcript.audio_s == pytest.approx(4.0, abs=0.01)


def test_empty_audio(transcriber: WhisperTranscriber) -> None:
    transcript = transcriber.transcribe(AudioChunk(np.zeros(0, dtype=np.int16), 16_000))
    assert (transcript.text, transcript.audio_s) == ("", 0.0)


@pytest.mark.models
def test_unknown_model_name_is_not_downloaded() -> None:
    with pytest.raises(ModelNotFoundError, match="not in the local cache"):
        WhisperTranscriber("no-such-whisper-model-xyz", "en", 1, "int8", 1)


@pytest.mark.models
def test_folder_without_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a faster-whisper model folder"):
        WhisperTranscriber(str(tmp_path), "en", 1, "int8", 1)


@pytest.fixture(scope="module")
def windowed() -> WhisperTranscriber:
    return WhisperTranscriber("bundled", "en", 1, "int8", threads=2, min_window_s=10.0)


@pytest.mark.models
def test_a_short_window_covers_the_utterance_and_four_seconds(
    windowed: WhisperTranscriber, jfk: AudioChunk
) -> None:
    transcript = windowed.transcribe(jfk)
    assert windowed.last_window_s == pytest.approx(15.0, abs=0.01)  # 11 s and 4 s of margin
    assert word_error_rate(JFK_TEXT, transcript.text) <= 0.10, transcript.text
    part = windowed.transcribe(AudioChunk(jfk.samples[: 16_000 * 4], 16_000))
    assert windowed.last_window_s == 10.0  # never less than min_window_s
    assert "americans" in _words(part.text)


def test_short_windows_hear_as_well_as_the_whole_window(
    transcriber: WhisperTranscriber, windowed: WhisperTranscriber
) -> None:
    utterances = load_utterances(default_utterances_dir())
    whole = short = 0.0
    for utterance in utterances:
        audio = read_audio(utterance.path)
        whole += word_error_rate(utterance.text, transcriber.transcribe(audio).text)
        short += word_error_rate(utterance.text, windowed.transcribe(audio).text)
        assert windowed.last_window_s < FULL_WINDOW_S
    assert short / len(utterances) <= whole / len(utterances) + 0.03


@pytest.mark.models
def test_a_short_window_that_hears_nothing_listens_to_the_whole_window(
    windowed: WhisperTranscriber,
) -> None:
    hiss = np.random.default_rng(1).normal(0, 300, 32_000).astype(np.int16)
    assert windowed.transcribe(AudioChunk(hiss, 16_000)).text == ""  # not even dots
    assert windowed.last_window_s == FULL_WINDOW_S


def test_a_looping_transcript_is_recognised() -> None:
    assert _loops("Thank you so much. Thank you so much.")
    assert _loops("I went home and then, and then")
    assert not _loops("No, no.")  # one word said twice is speech, not a loop
    assert not _loops("Thank you so much for the tea, so much.")
    assert not _loops("")
