"""kill -9 at random moments during a stream of turns, 100 times: every turn whose reply was
printed is in memory.db afterwards, and ``PRAGMA integrity_check`` says ok.

Each run is a real ``voice-companion chat --json`` process on one data folder (the machinery
of ``bench crash``, which does the same 1,000 times). Its language model is the scripted
OpenAI-compatible server process of the client tests (tests/engines/openai_server.py, mode
``whole``): the store is what is under test, real-llama chat is tested elsewhere, and loading
llama.cpp in each of 100 processes would make this test minutes long. Dense embeddings are off
for the same reason. The kill moments come from a seeded generator; the seed is in every
failure message (set VC_CRASH_SEED to replay one).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from voice_companion.bench import crash

SERVER = Path(__file__).parents[1] / "engines" / "openai_server.py"
RUNS = 100
SEED = int(os.environ.get("VC_CRASH_SEED", "20261126"))


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "whole"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=30), "the test LLM server printed no port"
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"the test LLM server said {port!r}"
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_kill_9_loses_no_confirmed_turn(tmp_path: Path, llm_url: str) -> None:
    report = crash.run(RUNS, tmp_path, seed=SEED, base_url=llm_url)
    results = report.as_dict()
    seed = f"(seed {SEED}; replay with VC_CRASH_SEED={SEED})"
    assert results["runs"] == RUNS
    assert results["lost"] == [], f"confirmed turns missing after kill -9 {seed}"
    assert results["turns_lost"] == 0, seed
    assert results["integrity_failures"] == [], seed
    assert results["integrity_ok"] == RUNS, seed
    # The kills really landed among the turns, not only while the process started.
    assert results["turns_confirmed"] > RUNS, seed
    assert results["killed_mid_turn"] > 10, seed
    assert results["store_turns"] >= 2 * results["turns_confirmed"], seed
