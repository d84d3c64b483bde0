"""The live daemon forgets at once what `memory forget` erased from another process: its
next prompt to the model no longer holds it. Its model is the scripted OpenAI-compatible
server process, which records every prompt it is sent (what the model really got)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG
from tests.engines.openai_server import received_prompts as prompts
from tests.live.conftest import clean_env, start
from tests.live.pulse import PulseRig
from voice_companion.audio.chunk import AudioChunk

pytestmark = pytest.mark.timeout(300)


def test_memory_forget_reaches_the_running_daemon_at_once(
    rig: PulseRig, tmp_path: Path, phrases: dict[str, AudioChunk], recording_server: str
) -> None:
    daemon = start(
        rig,
        tmp_path,
        VOICE_COMPANION_LLM_BACKEND="openai",
        VOICE_COMPANION_LLM_BASE_URL=f"{recording_server}/v1",
        VOICE_COMPANION_LLM_MODEL="scripted",
    )
    try:
        rig.say(phrases["weather"])
        daemon.wait_for(lambda: daemon.events("turn_end"), 90, "the first reply")
        transcript = daemon.events("transcript")[-1]["text"]
        assert "weather" in transcript.lower(), transcript
        forgot = subprocess.run(
            [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG),
             "--data-dir", str(daemon.trace.parent / "data"),
             "memory", "forget", "--match", "weather", "--yes"],
            capture_output=True, text=True, timeout=120,
            env={**clean_env(), "XDG_RUNTIME_DIR": str(daemon.runtime)},
        )  # fmt: skip
        assert forgot.returncode == 0, forgot.stderr
        assert "forgot 1 turn(s)" in forgot.stdout
        # The CLI told the daemon, which dropped it then: nothing is left to drop now.
        assert daemon.send("forgotten") == {"ok": True, "dropped": False}
        before = len(prompts(recording_server))
        rig.say(phrases["hello"])
        daemon.wait_for(lambda: len(daemon.events("turn_end")) >= 2, 90, "the second reply")
    finally:
        daemon.stop()
    sent = [json.dumps(p).lower() for p in prompts(recording_server)]
    assert any("weather" in p for p in sent[:before])  # the test can fail: it was in a prompt
    assert len(sent) > before
    assert all("weather" not in p for p in sent[before:]), (
        "the daemon still sent the forgotten turn"
    )
