"""Real engines for the engine tests, each loaded once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines import bundled
from voice_companion.engines.decode import read_audio
from voice_companion.engines.llm_llama import LlamaChatModel
from voice_companion.engines.stt import WhisperTranscriber
from voice_companion.engines.tts import PiperSynthesizer
from voice_companion.engines.vad import SpeechFrameClassifier

REPO = Path(__file__).resolve().parents[2]
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def _jfk_path() -> Path:
    # The copy in tests/data keeps the tests self-contained; ../shared is where it came from.
    for candidate in (
        REPO / "tests" / "data" / "jfk.flac",
        REPO / ".." / "shared" / "testdata" / "jfk.flac",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("jfk.flac is neither in tests/data nor in ../shared/testdata")


@pytest.fixture(scope="session")
def jfk_path() -> Path:
    return _jfk_path()


@pytest.fixture(scope="session")
def jfk(jfk_path: Path) -> AudioChunk:
    return read_audio(jfk_path, 16_000)


@pytest.fixture(scope="session")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber("bundled", "en", beam_size=1, compute_type="int8", threads=2)


@pytest.fixture(scope="session")
def synthesizer() -> PiperSynthesizer:
    return PiperSynthesizer(bundled.piper_voice_path())


@pytest.fixture(scope="session")
def llama() -> LlamaChatModel:
    return LlamaChatModel(
        bundled.smollm2_gguf_path(),
        context_tokens=1024,
        threads=2,
        max_reply_tokens=48,
        temperature=0.0,
    )


@pytest.fixture()
def classifier() -> Iterator[SpeechFrameClassifier]:
    # Cheap to build (about 30 ms), and a fresh one cannot leak state between tests.
    yield SpeechFrameClassifier(aggressiveness=2, silero_threshold=0.5)
