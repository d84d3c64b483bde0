"""The live daemon introduces itself (an AI, the first time) and switches persona when
`voice-companion persona use` asks it to, through the control socket."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG, words
from tests.live.conftest import REPO, start
from tests.live.pulse import PulseRig, read_raw
from voice_companion.audio.chunk import AudioChunk

pytestmark = pytest.mark.timeout(300)


def test_it_greets_says_it_is_an_ai_and_switches_persona_on_request(
    rig: PulseRig,
    tmp_path: Path,
    engines,  # type: ignore[no-untyped-def]
) -> None:
    xdg = tmp_path / "xdg"
    ghost = xdg / "voice-companion" / "personas" / "ghost.toml"
    ghost.parent.mkdir(parents=True)
    ghost.write_text('name = "Ghost"\n[voice]\nname = "/nowhere/ghost.onnx"\n')
    recording = tmp_path / "speaker.raw"
    recorder = rig.record(recording)
    daemon = start(rig, tmp_path, intro=True, XDG_CONFIG_HOME=str(xdg))
    data = daemon.trace.parent / "data"

    def said() -> list[str]:
        return [str(e["text"]) for e in daemon.events("said")]

    def persona(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG),
             "--data-dir", str(data), "persona", *args],
            env=daemon.env, cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    try:
        daemon.wait_for(said, 60, "the greeting")
        first = said()[0]
        assert first.startswith("Before we start: I'm Robin, an AI companion, not a person.")
        assert "Robin" in first and (data / "disclosed").read_text().split() == ["robin"]
        assert daemon.send("status")["persona"] == "Robin"

        switched = persona("use", "morgan")
        assert switched.returncode == 0, switched.stderr
        assert "now speaking as Morgan" in switched.stdout
        daemon.wait_for(lambda: len(said()) >= 2, 60, "Morgan's greeting")
        assert [e["name"] for e in daemon.events("persona")] == ["Morgan"]
        second = said()[1]
        assert second.startswith("I should say this first: I'm Morgan, an AI, not a person.")
        assert "It's Morgan" in second
        assert daemon.send("status")["persona"] == "Morgan"
        assert (data / "persona").read_text().strip() == "morgan"

        for name, message in (("nobody", "no persona called 'nobody'"), ("ghost", "ghost.onnx")):
            refused = persona("use", name)
            assert refused.returncode == 1 and message in refused.stderr
            assert "Traceback" not in refused.stderr
        assert daemon.send("status")["persona"] == "Morgan"
        assert (data / "persona").read_text().strip() == "morgan"
        time.sleep(1.0)
    finally:
        recorder.terminate()
        recorder.wait(10)
        daemon.stop()
    # Each voice heard on the speaker, transcribed on its own (tiny.en drops words in one
    # long recording): Robin's at the start, Morgan's in the last quarter minute.
    audio = read_raw(recording)
    rate, samples = audio.rate_hz, audio.samples
    head = AudioChunk(samples[: 15 * rate], rate)
    tail = AudioChunk(samples[-16 * rate :], rate)
    start_heard = words(engines.transcriber.transcribe(head).text)
    end_heard = words(engines.transcriber.transcribe(tail).text)
    assert "robin" in start_heard, start_heard
    assert "morgan" in end_heard, end_heard
