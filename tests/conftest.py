"""Shared fixtures: the shipped configuration and the real engines, loaded once per run."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voice_companion.config import Config, load_config
from voice_companion.events import Event

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


async def queued(queue: asyncio.Queue[Event | None]) -> AsyncIterator[Event]:
    """The events put on ``queue``, until None: a conversation scripted step by step."""
    while (event := await queue.get()) is not None:
        yield event
