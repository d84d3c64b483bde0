"""The watchdog is fed by the daemon's own liveness, not by the microphone; after `quit` is
accepted nothing more is promised.

A real daemon (``voice-companion run``) on a real PulseAudio server (tests/live/pulse.py)
whose microphone stops delivering anything, and a real AF_UNIX datagram socket as
``NOTIFY_SOCKET``, read as systemd would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.live.conftest import RunningDaemon, start
from tests.live.pulse import PulseRig
from voice_companion.audio.chunk import PCM
from voice_companion.audio.microphone import Microphone

pytestmark = pytest.mark.timeout(300)

WATCHDOG_USEC = 2_000_000  # WatchdogSec=2: a ping every second
WAIT_S = 60.0


class Systemd:
    """The receiving end of ``NOTIFY_SOCKET``."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="vc-wd-"))
        self.path = self.folder / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, condition: Callable[[list[str]], bool], what: str) -> None:
        """Read messages until ``condition(messages)`` holds."""
        deadline = time.monotonic() + WAIT_S
        while not condition(self.messages):
            assert time.monotonic() < deadline, f"no {what}: {self.messages[-5:]}"
            with contextlib.suppress(TimeoutError):
                self.messages.append(self.sock.recv(4096).decode())

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def systemd() -> Iterator[Systemd]:
    receiver = Systemd()
    yield receiver
    receiver.close()


def test_an_unplugged_microphone_does_not_starve_the_watchdog(
    rig: PulseRig, tmp_path: Path, systemd: Systemd
) -> None:
    daemon = start(rig, tmp_path, NOTIFY_SOCKET=str(systemd.path), WATCHDOG_USEC=str(WATCHDOG_USEC))
    try:
        systemd.wait_for(lambda ms: any("READY=1" in m for m in ms), "READY=1")
        # Nothing more from the microphone, as when it is unplugged. (Unloading the rig's
        # source would not do: PulseAudio moves the stream to the speaker's monitor.)
        rig.pause_feed()
        try:
            daemon.wait_for(
                lambda: "waiting for the microphone" in daemon.send("status")["microphone"],
                WAIT_S,
                "the microphone to be missed",
            )
            # Pings go on while it is missing: more of them than fit in WatchdogSec, so
            # systemd would not kill the daemon.
            missed = len(systemd.messages)
            systemd.wait_for(
                lambda ms: ms[missed:].count("WATCHDOG=1") >= 4, "WATCHDOG=1 without audio"
            )
            assert "waiting for the microphone" in daemon.send("status")["microphone"]
            # The microphone's state is reported to systemd too.
            systemd.wait_for(
                lambda ms: any("STATUS=waiting for the microphone" in m for m in ms),
                "STATUS= saying the microphone is awaited",
            )
        finally:
            rig.resume_feed()
        daemon.wait_for(
            lambda: "listening" in daemon.send("status")["microphone"], 60, "the microphone"
        )
        systemd.wait_for(
            lambda ms: any("STATUS=listening on the microphone" in m for m in ms[-10:]),
            "STATUS= saying it listens again",
        )
    finally:
        assert daemon.stop() == 0


def test_after_quit_commands_are_refused(rig: PulseRig, tmp_path: Path) -> None:
    daemon: RunningDaemon = start(rig, tmp_path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(WAIT_S)
            client.connect(str(daemon.socket))
            # Both in one write: `say` is read while the daemon is shutting down.
            client.sendall(b'{"cmd": "quit"}\n{"cmd": "say", "text": "Hello there."}\n')
            client.shutdown(socket.SHUT_WR)  # no more requests: the server may hang up
            replies = client.makefile("rb").read().splitlines()  # until the daemon hangs up
        assert json.loads(replies[0])["ok"] is True
        # The daemon may hang up before reading `say`; if it answers, it must not say ok.
        for line in replies[1:]:
            reply = json.loads(line)
            assert reply == {"ok": False, "error": "the companion is shutting down"}
        try:
            code = daemon.process.wait(30)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, Path(daemon.stderr.name).read_text()
        assert not daemon.events("said")  # it did not speak after quitting
    finally:
        daemon.stop()


class BusyCapture:
    """Delivers a block every half millisecond from its own thread, as PortAudio would with
    small blocks: cancellations then often arrive together with a block."""

    rate_hz = 16_000

    def __init__(self, deliver: Callable[[PCM], None]) -> None:
        self._stop = threading.Event()
        block = np.zeros(160, dtype=np.int16)

        def run() -> None:
            while not self._stop.wait(0.0005):
                deliver(block)

        self._thread = threading.Thread(target=run, name="busy-capture", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_the_microphone_stream_always_stops_when_cancelled() -> None:
    # The daemon's shutdown cancels the task reading the microphone and waits for it; on
    # Python 3.11 asyncio.wait_for kept a cancellation that came with a block from ever
    # landing (`quit` then hung about one time in ten, tests above).
    rng = random.Random(5)

    async def go() -> None:
        microphone = Microphone(BusyCapture, frame_ms=10)
        for _ in range(200):

            async def listen() -> None:
                async for _frame in microphone.frames():
                    pass

            task = asyncio.create_task(listen(), name="hear")
            await asyncio.sleep(rng.uniform(0.001, 0.01))
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=5)
            assert done, "the microphone's task went on after it was cancelled"

    asyncio.run(asyncio.wait_for(go(), 120))
