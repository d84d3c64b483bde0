"""Every turn answered or apologised for, in bounded time, whatever the model server does:
absurdly nested JSON, headers that never end, only keep-alives, a word at a time forever, or
megabytes past max_tokens. Real Session (real whisper, piper), real chat and run commands, and
the real scripted server process (tests/engines/openai_server.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engines import openai_server
from tests.faults.test_pipeline_faults import heard, openai_model, run_turns
from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines.decode import read_audio
from voice_companion.runtime.session import Engines


@pytest.fixture(scope="module")
def jfk(jfk_path: Path) -> AudioChunk:
    return read_audio(jfk_path)


MODES = ["nested", "dripheaders", "keepalive", "drip", "huge", "canned"]


def test_every_misbehaving_server_turn_is_answered_or_apologised_for(
    engines: Engines, jfk: AudioChunk, tmp_path: Path, server: Callable[[str], int]
) -> None:
    model = openai_model(server(",".join(MODES)), read_timeout_s=30.0)
    turns = run_turns(
        dataclasses.replace(engines, model=model),
        jfk,
        tmp_path,
        count=len(MODES),
        VOICE_COMPANION_LLM_REPLY_TIMEOUT_S="2.5",
    )
    apology = turns.config.llm.apology
    nested, headers, keepalive, drip, huge, canned = turns.replies()
    assert [nested, headers, keepalive] == [apology] * 3
    assert "sorry" in heard(engines, turns.audio[0]).lower()
    # Cut at the deadline, at its last sentence end: no half sentence spoken.
    assert drip.startswith("Number 0 is here.") and drip.endswith("is here.")
    # Cut at the length cap (48 tokens: 384 characters) of an 11 MB reply, at a sentence end.
    assert huge.startswith("Sentence 0 goes on.") and huge.endswith("goes on.")
    assert len(huge) <= 48 * 8
    assert canned == openai_server.CANNED  # and the next turn is answered as usual
    assert all(audio.peak() > 1000 for audio in turns.audio)


def _cli(
    tmp_path: Path, port: int, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[llm]\nbackend = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
        "reply_timeout_s = 2.0\nwarm_up_timeout_s = 2.0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    return subprocess.run(
        [
            *(sys.executable, "-m", "voice_companion", "--config", str(config)),
            *("--data-dir", str(tmp_path / "data"), *args),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.models
def test_chat_apologises_for_nested_json_and_a_server_that_never_answers(
    tmp_path: Path, server: Callable[[str], int]
) -> None:
    port = server("nested,nestedwhole,dripheaders,keepalive,canned")
    lines = "".join(f"Hello {n}?\n" for n in range(5))
    result = _cli(tmp_path, port, "chat", "--json", stdin=lines)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    replies = [json.loads(line)["reply"] for line in result.stdout.splitlines()]
    assert len(replies) == 5
    assert all("sorry" in reply.lower() for reply in replies[:4])
    assert replies[4] == openai_server.CANNED


@pytest.mark.models
@pytest.mark.parametrize("mode", ["nested", "dripheaders"])
def test_run_input_survives_the_warm_up_and_apologises(
    tmp_path: Path, server: Callable[[str], int], jfk_path: Path, mode: str
) -> None:
    # The warm-up meets the misbehaving server first; the spoken turn after it too.
    port = server(mode)
    out, trace = tmp_path / "out.wav", tmp_path / "trace.jsonl"
    result = _cli(
        tmp_path, port, "run", "--input", str(jfk_path), "--output", str(out), "--trace", str(trace)
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if mode == "dripheaders":
        assert "did not answer the warm-up within 2 s" in result.stderr
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    replies = [e["text"] for e in events if e["event"] == "reply"]
    assert replies and all("sorry" in r.lower() for r in replies)
    assert read_audio(out).peak() > 1000
