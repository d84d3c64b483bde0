"""Real parts for the memory tests: SQLite on disk in tmp dirs and the real MiniLM, loaded once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from voice_companion.config import MemoryConfig
from voice_companion.engines.embedder import Embedder, MiniLmEmbedder
from voice_companion.memory.longterm import LongTermMemory
from voice_companion.memory.store import MemoryDb

REPO = Path(__file__).resolve().parents[2]
LOCOMO_MINI = REPO / "tests" / "data" / "locomo_mini.json"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return MiniLmEmbedder(threads=2)


class Clock:
    """A clock the test moves: turns said on chosen days."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 5, 3, 10, 0).astimezone())


@pytest.fixture
def memory(tmp_path: Path, embedder: Embedder, clock: Clock) -> Iterator[LongTermMemory]:
    m = LongTermMemory(
        MemoryDb(tmp_path / "memory.db"), MemoryConfig(), embedder=embedder, clock=clock
    )
    yield m
    m.close()


@pytest.fixture(scope="session")
def llama_model():  # type: ignore[no-untyped-def]
    """The real bundled SmolLM2, as the shipped config builds it."""
    from tests.conftest import shipped_config
    from voice_companion import app

    return app.build_model(shipped_config(REPO / "tests" / "data"))
