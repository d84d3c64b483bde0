"""A running daemon on a real (null) PulseAudio server, driven like a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHIPPED_CONFIG
from tests.live.pulse import PulseRig
from voice_companion.audio.chunk import AudioChunk
from voice_companion.control.client import request

REPO = Path(__file__).resolve().parents[2]


class RunningDaemon:
    def __init__(self, rig: PulseRig, folder: Path, env: dict[str, str]) -> None:
        self.rig = rig
        self.trace = folder / "trace.jsonl"
        # Each daemon has its own runtime dir (its control socket) on the shared sound server.
        # (short: a unix socket path has at most 107 bytes)
        runtime = Path(tempfile.mkdtemp(prefix="vcd-"))
        self.runtime = runtime
        self.env = {
            **rig.env,
            **env,
            "XDG_RUNTIME_DIR": str(runtime),
            "PULSE_SERVER": f"unix:{rig.runtime / 'pulse' / 'native'}",
        }
        self.socket = runtime / "voice-companion" / "control.sock"
        self.stderr = (folder / "stderr.txt").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voice_companion",
                "--config",
                str(SHIPPED_CONFIG),
                "--data-dir",
                str(folder / "data"),
                "run",
                "--trace",
                str(self.trace),
            ],
            env=self.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        self.started = time.monotonic()
        self.wait_for(lambda: self.socket.exists(), 90, "the control socket")
        self.ready_s = time.monotonic() - self.started

    def send(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return request(self.socket, {"cmd": cmd, **fields}, timeout_s=10)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.trace.exists():
            return []
        rows = [json.loads(x) for x in self.trace.read_text().splitlines() if x.strip()]
        return [r for r in rows if name is None or r["event"] == name]

    def clock_of(self, event: dict[str, Any]) -> float:
        """An event's time on this machine's monotonic clock."""
        origin = self.events("start")[0]["clock_s"]
        return float(origin) + float(event["t"])

    def wait_for(self, condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            assert self.process.poll() is None, f"the daemon died waiting for {what}"
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.stderr.close()
        shutil.rmtree(self.runtime, ignore_errors=True)
        return self.process.returncode


@pytest.fixture(scope="session")
def phrases() -> dict[str, AudioChunk]:
    """Short utterances in a real (synthetic) voice, at the microphone's 16 kHz."""
    from voice_companion.engines import bundled
    from voice_companion.engines.resample import resample
    from voice_companion.engines.tts import PiperSynthesizer

    voice = PiperSynthesizer(bundled.piper_voice_path())
    texts = {
        "hello": "Hello there, how are you doing today?",
        "stop": "Wait, please stop talking for a moment.",
        "weather": "What do you think about rainy weather?",
    }
    return {k: resample(voice.synthesize(t), 16_000) for k, t in texts.items()}


def start(rig: PulseRig, tmp: Path, intro: bool = False, **env: str) -> RunningDaemon:
    """A daemon; without ``intro`` it has told this user it is an AI already and it is quiet
    hours all day, so it says nothing before it is spoken to (tests/live/test_persona.py
    covers the greeting and the disclosure)."""
    folder = tmp / f"daemon-{time.monotonic_ns()}"
    (folder / "data").mkdir(parents=True)
    if not intro:
        (folder / "data" / "disclosed").write_text("robin\n")
        env = {"VOICE_COMPANION_CARE_QUIET_HOURS": "00:00-00:00", **env}
    return RunningDaemon(rig, folder, {k: v for k, v in env.items()})


@pytest.fixture(scope="module")
def hands_free(rig: PulseRig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """A daemon with the shipped turn-taking that has spoken once already (as it does each
    day with its greeting): its echo guard has measured this speaker. Before its first words
    the guard cannot tell a user talking over the start of a reply from its echo
    (tests/stages/test_listen.py)."""
    daemon = start(rig, tmp_path_factory.mktemp("hands-free"))
    try:
        daemon.send("say", text="Hi, I'm here.")
        daemon.wait_for(lambda: daemon.events("said"), 60, "its first words")
        yield daemon
    finally:
        daemon.stop()


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
