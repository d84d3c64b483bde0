"""Shutdown signals: handlers on the loop; a daemon-shaped program exits 0 soon after SIGTERM."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from voice_companion.service.signals import install_signal_handlers

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 10.0

DAEMON = textwrap.dedent(
    """
    import asyncio, signal, sys
    from pathlib import Path

    from voice_companion.control.server import ControlServer, default_socket_path
    from voice_companion.service.notify import Notifier
    from voice_companion.service.signals import install_signal_handlers


    async def handle(command):
        return {}


    async def main() -> int:
        stop = asyncio.Event()
        got = []

        def on_signal(sig: signal.Signals) -> None:
            got.append(sig.name)
            stop.set()

        remove = install_signal_handlers(on_signal)
        notifier = Notifier.from_env()
        async with ControlServer(default_socket_path(), handle):
            watchdog = asyncio.create_task(notifier.run_watchdog(), name="watchdog")
            notifier.ready("serving")
            print("ready", flush=True)
            await stop.wait()
            notifier.stopping()
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        remove()
        print("stopped by", got[0], flush=True)
        return 0


    sys.exit(asyncio.run(main()))
    """
)


@pytest.fixture
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="vc-sig-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _readline(proc: subprocess.Popen[str], timeout_s: float = WAIT_S) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    assert ready, "no output in time"
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_daemon_exits_0_soon_after_the_signal(workdir: Path, sig: signal.Signals) -> None:
    runtime = workdir / "run"
    runtime.mkdir(mode=0o700)
    program = workdir / "daemon.py"
    program.write_text(DAEMON)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.fspath(workdir / "notify"))
    notify.settimeout(WAIT_S)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "XDG_RUNTIME_DIR": str(runtime),
        "NOTIFY_SOCKET": str(workdir / "notify"),
        "WATCHDOG_USEC": "60000000",
    }
    proc = subprocess.Popen(
        [sys.executable, str(program)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert _readline(proc, 60) == "ready"
        messages = {notify.recv(4096).decode() for _ in range(2)}
        assert messages == {"WATCHDOG=1", "READY=1\nSTATUS=serving"}
        sock_path = runtime / "voice-companion" / "control.sock"
        assert sock_path.exists()
        proc.send_signal(sig)
        assert proc.wait(timeout=5) == 0
        assert _readline(proc) == f"stopped by {sig.name}"
        assert notify.recv(4096).decode() == "STOPPING=1"
        assert not sock_path.exists()
    finally:
        notify.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT_S)
        assert proc.stdout is not None
        proc.stdout.close()


def test_handlers_call_back_on_the_loop_and_can_be_removed() -> None:
    async def go() -> list[signal.Signals]:
        got: list[signal.Signals] = []
        arrived = asyncio.Event()

        def on_signal(sig: signal.Signals) -> None:
            got.append(sig)
            arrived.set()
            if len(got) == 1:
                raise RuntimeError("a failing callback is logged, not fatal")

        remove = install_signal_handlers(on_signal, signals=[signal.SIGUSR1, signal.SIGUSR2])
        try:
            for sig in (signal.SIGUSR1, signal.SIGUSR2):
                arrived.clear()
                os.kill(os.getpid(), sig)
                await asyncio.wait_for(arrived.wait(), WAIT_S)
        finally:
            remove()
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
        return got

    assert asyncio.run(go()) == [signal.SIGUSR1, signal.SIGUSR2]


def test_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        install_signal_handlers(lambda sig: None)
