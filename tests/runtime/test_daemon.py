"""The daemon as a supervisor: its tasks feed the session's queue (microphone frames through
the listener, commands from the real control socket); ``quit`` ends the session, and every
task is cancelled and awaited before ``run`` returns. Real listener, session and control
socket; a scripted microphone and scripted words."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shipped_config
from tests.fakes import NullSynth, ScriptedModel, ScriptedTranscriber
from voice_companion import app
from voice_companion.audio.chunk import STT_RATE_HZ, AudioChunk
from voice_companion.audio.sinks import MemorySink
from voice_companion.control.client import request
from voice_companion.runtime.daemon import Daemon
from voice_companion.runtime.session import Engines, Session
from voice_companion.service.notify import Notifier
from voice_companion.trace import Tracer

# The daemon listens through the real voice detectors (webrtcvad and Silero).
pytestmark = pytest.mark.models

WAIT_S = 30.0
SUPERVISED = {"session", "hear", "watchdog", "mic-status", "ptt-keyboard"}


class ScriptedMicrophone:
    """Silence in 30 ms frames, in real time, until cancelled (or a failure, if asked)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.status = "listening"
        self.last_frame_clock_s = 0.0
        self.frames_given = 0
        self.closed = False
        self._fail_after = fail_after

    async def frames(self) -> AsyncIterator[AudioChunk]:
        try:
            while True:
                if self._fail_after is not None and self.frames_given >= self._fail_after:
                    raise RuntimeError("the sound card went away")
                await asyncio.sleep(0.03)
                self.frames_given += 1
                yield AudioChunk.silence(0.03, STT_RATE_HZ)
        finally:
            self.closed = True


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vc-") as folder:  # short: a socket path's limit
        yield Path(folder)


def _daemon(
    tmp_path: Path, socket: Path, microphone: ScriptedMicrophone
) -> tuple[Daemon, MemorySink]:
    config = shipped_config(tmp_path, VOICE_COMPANION_MEMORY_ENABLED="false")
    engines = Engines(ScriptedTranscriber("Hello."), ScriptedModel("Hello there."), NullSynth())
    listener = app.build_listener(config, speculative=True)
    sink = MemorySink()
    session = Session(
        config,
        engines,
        app.build_dialogue(config),
        sink,
        Tracer(),
        listener=listener,
    )
    daemon = Daemon(
        config, session, microphone, sink, socket, Notifier(None), {"input_device": "x"}
    )  # type: ignore[arg-type]
    return daemon, sink


def _pending_supervised() -> list[str]:
    return [
        t.get_name() for t in asyncio.all_tasks() if t.get_name() in SUPERVISED and not t.done()
    ]


def test_the_daemon_feeds_the_session_and_quit_stops_every_task(
    tmp_path: Path, socket_dir: Path
) -> None:
    socket = socket_dir / "control.sock"
    microphone = ScriptedMicrophone()
    daemon, _sink = _daemon(tmp_path, socket, microphone)

    async def send(cmd: str, **fields: Any) -> dict[str, Any]:
        return await asyncio.to_thread(request, socket, {"cmd": cmd, **fields})

    async def go() -> dict[str, Any]:
        running = asyncio.create_task(daemon.run())
        while not socket.exists():
            await asyncio.sleep(0.02)
        while (status := await send("status"))["frames_heard"] < 5:
            await asyncio.sleep(0.05)
        pressed = await send("ptt", action="press")
        released = await send("ptt", action="toggle")
        await send("quit")
        await asyncio.wait_for(running, WAIT_S)
        return {
            "status": status,
            "pressed": pressed,
            "released": released,
            "left": _pending_supervised(),
        }

    seen = asyncio.run(asyncio.wait_for(go(), 2 * WAIT_S))
    # Frames reached the listener through the daemon's hearing task, commands the session.
    assert seen["status"]["state"] in ("idle", "listening")
    assert seen["status"]["microphone"] == "listening"
    assert seen["status"]["input_device"] == "x"
    assert seen["pressed"]["pressed"] is True
    assert seen["released"]["pressed"] is False
    # Quit: every task was cancelled and awaited; the microphone's stream was closed.
    assert seen["left"] == []
    assert microphone.closed


def test_a_failed_task_stops_the_daemon_and_the_others_with_it(
    tmp_path: Path, socket_dir: Path
) -> None:
    microphone = ScriptedMicrophone(fail_after=3)
    daemon, _sink = _daemon(tmp_path, socket_dir / "control.sock", microphone)

    async def go() -> list[str]:
        await asyncio.wait_for(daemon.run(), WAIT_S)
        return _pending_supervised()

    assert asyncio.run(asyncio.wait_for(go(), 2 * WAIT_S)) == []
    assert microphone.closed
