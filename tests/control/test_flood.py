"""A flood of idle clients against the real daemon-side control server, in its own process
with few descriptors (as under systemd's 1,024, only smaller): it keeps answering, the
descriptors stay free for turns, and the log stays small."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voice_companion.control.client import request
from voice_companion.control.server import MAX_CONNECTIONS

WAIT_S = 20.0
FD_LIMIT = 64
FLOOD = 250

SERVER = r"""
import asyncio, logging, os, resource, sys
from pathlib import Path
from voice_companion.control.server import ControlServer
from voice_companion.events import ReportStatus

limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
fillers = []

async def handle(command):
    if isinstance(command, ReportStatus):
        # What a turn does: it needs a descriptor of its own.
        fd = os.open(os.devnull, os.O_RDONLY)
        os.close(fd)
        return {"state": "idle"}
    return {}

async def main():
    loop = asyncio.get_running_loop()
    async with ControlServer(Path(sys.argv[1]), handle):
        print("ready", flush=True)
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            if line == "fill":  # take every descriptor left, as a leak elsewhere would
                try:
                    while True:
                        fillers.append(os.open(os.devnull, os.O_RDONLY))
                except OSError:
                    pass
            elif line == "free":
                while fillers:
                    os.close(fillers.pop())
            print("done", flush=True)

asyncio.run(main())
"""


@pytest.fixture
def socket_path() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="vc-fl-"))
    yield folder / "voice-companion" / "control.sock"
    shutil.rmtree(folder, ignore_errors=True)


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def _tell(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    assert _line(proc) == "done"


def _connect(path: Path) -> socket.socket:
    deadline = time.monotonic() + WAIT_S
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(WAIT_S)
        try:
            sock.connect(os.fspath(path))
            return sock
        except BlockingIOError:  # the backlog is full for a moment: the server is behind
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has hung up (perhaps after a one-line error)."""
    try:
        data = sock.recv(4096)
        while data and b"\n" in data and not data.endswith(b"\n"):
            data = sock.recv(4096)
        return data == b"" or sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_idle_clients_cannot_lock_out_status(socket_path: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(socket_path), str(FD_LIMIT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    idle: list[socket.socket] = []
    try:
        assert _line(proc) == "ready"
        # More idle clients than the server has descriptors, one of them half-way through a line.
        for n in range(FLOOD):
            sock = _connect(socket_path)
            if n == 0:
                sock.sendall(b'{"cmd": "sta')
            idle.append(sock)
        for _ in range(5):
            assert request(socket_path, {"cmd": "status"}, timeout_s=WAIT_S) == {
                "ok": True,
                "state": "idle",
            }
        # The newest idle clients hold the slots; each is closed once its time is up.
        newest = idle[-MAX_CONNECTIONS:]
        assert all(_closed_by_server(sock) for sock in newest)
        # The oldest were closed to make room, not left holding descriptors.
        assert all(_closed_by_server(sock) for sock in idle[:10])

        # No descriptor left at all: accepting fails until one is free, quietly.
        _tell(proc, "fill")
        waiting = [_connect(socket_path) for _ in range(20)]  # queued in the backlog
        time.sleep(2.0)  # many accept attempts' worth
        _tell(proc, "free")
        assert request(socket_path, {"cmd": "status"}, timeout_s=WAIT_S)["ok"] is True
        idle += waiting
    finally:
        for sock in idle:
            sock.close()
        proc.kill()
        proc.wait(WAIT_S)
    log = log_path.read_text()
    assert "Traceback" not in log
    assert len(log) < 4000, log[:4000]
    assert log.count("cannot accept control connections") <= 2
