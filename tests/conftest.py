"""Shared fixtures: the shipped configuration and the real engines, loaded once per run;
the test run's own XDG folders; the ``models`` marker and the fast lane's guard."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from voice_companion.config import Config, load_config
from voice_companion.events import Event

if TYPE_CHECKING:
    from tests.live.pulse import PulseRig

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SHIPPED_CONFIG = REPO / "config" / "companion.toml"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


@pytest.fixture(scope="session")
def jfk_path() -> Path:
    """11 s of real speech (public domain), copied from ../shared/testdata into tests/data."""
    path = DATA / "jfk.flac"
    if not path.exists():
        shutil.copy(REPO.parent / "shared" / "testdata" / "jfk.flac", path)
    return path


XDG_DIRS = (
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
)
"""Every folder a user's home lends the companion; a test run gets its own of each."""

MODEL_FIXTURES = frozenset(
    {"engines", "transcriber", "synthesizer", "piper", "llama", "llama_model", "embedder"}
    | {"classifier", "phrases", "rig"}
)
"""Fixtures that load a real model (whisper, piper, llama, MiniLM, Silero) or start a daemon
that does: a test that uses one, directly or through another fixture, is marked ``models``."""

FAST_LANE_GUARD = Path(__file__).resolve().parent / "fast_lane"
"""The guard that refuses the model libraries in every process of the fast lane
(``-m "not models"``): a test that loads a model without being marked fails there instead of
quietly making the fast lane slow (tests/fast_lane/fast_lane_guard.py)."""


def pytest_configure(config: pytest.Config) -> None:
    if "not models" in (config.option.markexpr or ""):
        # This process, and through PYTHONPATH (its sitecustomize) every subprocess it starts.
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(FAST_LANE_GUARD), os.environ.get("PYTHONPATH", "")) if p
        )
        sys.path.insert(0, str(FAST_LANE_GUARD))
        import fast_lane_guard

        fast_lane_guard.install()
        # A model loaded by a background thread (the memory indexer) fails its test too.
        config.addinivalue_line(
            "filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning"
        )


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)


@pytest.fixture(scope="session", autouse=True)
def _own_xdg_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole run keeps its cache (the Q8_0 model copy, made once per run), config, data,
    state and runtime folders under one temporary folder, never in the user's home; the
    subprocesses the tests start inherit them (tests/test_home.py checks)."""
    base = tmp_path_factory.mktemp("xdg")
    saved = {name: os.environ.get(name) for name in XDG_DIRS}
    for name in XDG_DIRS:
        folder = base / name.removeprefix("XDG_").lower()
        folder.mkdir(mode=0o700)
        os.environ[name] = str(folder)
    yield base
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def shipped_config(tmp: Path, **env: str) -> Config:
    """The shipped config file, no user environment, state under ``tmp``."""
    return load_config(SHIPPED_CONFIG, env=env, data_dir=tmp)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return shipped_config(tmp_path)


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Real bundled STT, LLM and TTS, shared by the tests that need all three."""
    from voice_companion import app

    return app.build_engines(shipped_config(tmp_path_factory.mktemp("engines")))


@pytest.fixture(scope="session")
def piper():  # type: ignore[no-untyped-def]
    """The real bundled piper voice alone, for the tests that need a voice and no other model."""
    from voice_companion.engines import bundled
    from voice_companion.engines.tts import PiperSynthesizer

    return PiperSynthesizer(bundled.piper_voice_path())


def words(text: str) -> list[str]:
    cleaned = "".join(c.lower() if c.isalnum() or c == "'" else " " for c in text)
    return cleaned.split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def sox_audio(path: Path, seconds: float, tone_hz: float | None = None) -> Path:
    """A 16 kHz mono 16-bit file of ``seconds`` made by sox: a sine of ``tone_hz``, else
    silence. Long recordings for a test, without a long file in the repository."""
    length = str(seconds)
    effect = ["synth", length, "sine", str(tone_hz)] if tone_hz else ["trim", "0", length]
    command = ["sox", "-V1", "-n", "-r", "16000", "-c", "1", "-b", "16", str(path), *effect]
    subprocess.run(command, check=True, timeout=600)
    return path


async def queued(queue: asyncio.Queue[Event | None]) -> AsyncIterator[Event]:
    """The events put on ``queue``, until None: a conversation scripted step by step."""
    while (event := await queue.get()) is not None:
        yield event


@pytest.fixture(scope="module")
def rig() -> Iterator[PulseRig]:
    """A real PulseAudio server with a pipe-source microphone and a null-sink speaker
    (tests/live/pulse.py), one per test module: the live daemon tests and the watchdog's."""
    from tests.live.pulse import PulseRig

    rig = PulseRig()
    rig.start()
    try:
        yield rig
    finally:
        rig.stop()


@pytest.fixture
def server() -> Iterator[Callable[..., int]]:
    """Starts real scripted model servers (``server("hang,llama")``, see
    ``tests/engines/openai_server.py``) and kills them all when the test ends."""
    from tests.engines import openai_server

    started: list[subprocess.Popen[str]] = []

    def start(modes: str, port: int = 0) -> int:
        proc, bound = openai_server.launch(modes, port)
        started.append(proc)
        return bound

    yield start
    for proc in started:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture
def recording_server() -> Iterator[str]:
    """A real scripted server answering ``canned`` that keeps every request it gets
    (``openai_server.received_prompts``): the prompts the model was really sent."""
    from tests.engines import openai_server

    proc, port = openai_server.launch("canned")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.communicate(timeout=30)
