"""sd_notify on real datagram sockets, as systemd would receive it."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from voice_companion.service.notify import Notifier

WAIT_S = 10.0


@pytest.fixture
def path_socket() -> Iterator[tuple[str, socket.socket]]:
    folder = Path(tempfile.mkdtemp(prefix="vc-nt-"))
    path = folder / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.fspath(path))
    sock.settimeout(WAIT_S)
    yield str(path), sock
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def abstract_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"vc-test-notify-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(WAIT_S)
    yield "@" + name, sock
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode("utf-8")


@pytest.mark.parametrize("which", ["path_socket", "abstract_socket"])
def test_messages_arrive(which: str, request: pytest.FixtureRequest) -> None:
    address, sock = request.getfixturevalue(which)
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    notifier.ready()
    assert received(sock) == "READY=1"
    notifier.ready("listening\non  the default mic")
    assert received(sock) == "READY=1\nSTATUS=listening on the default mic"
    notifier.status("thinking")
    assert received(sock) == "STATUS=thinking"
    notifier.watchdog()
    assert received(sock) == "WATCHDOG=1"
    notifier.stopping()
    assert received(sock) == "STOPPING=1"
    notifier.stopping("saving memories")
    assert received(sock) == "STOPPING=1\nSTATUS=saving memories"
    notifier.close()
    notifier.status("after close, a new socket")
    assert received(sock) == "STATUS=after close, a new socket"
    notifier.close()


def test_no_notify_socket_is_a_no_op(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier.from_env({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None
    with caplog.at_level(logging.DEBUG, logger="voice_companion.service.notify"):
        notifier.ready("x")
        notifier.status("x")
        notifier.watchdog()
        notifier.stopping()
        asyncio.run(asyncio.wait_for(notifier.run_watchdog(), WAIT_S))  # returns at once
    assert caplog.records == []
    assert not Notifier.from_env({"NOTIFY_SOCKET": ""}).enabled


def test_from_os_environ(
    monkeypatch: pytest.MonkeyPatch, path_socket: tuple[str, socket.socket]
) -> None:
    address, sock = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier.from_env()
    assert notifier.watchdog_interval_s == 1.5
    notifier.ready()
    assert received(sock) == "READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not Notifier.from_env().enabled


@pytest.mark.parametrize(
    ("env", "interval_s"),
    [
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], interval_s: float | None) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "/run/nothing-here", **env})
    assert notifier.watchdog_interval_s == interval_s


def test_run_watchdog_pings_until_cancelled(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "40000"})
    assert notifier.watchdog_interval_s == 0.02

    async def go() -> list[str]:
        task = asyncio.create_task(notifier.run_watchdog(), name="watchdog")
        pings = [
            await asyncio.wait_for(asyncio.to_thread(received, sock), WAIT_S) for _ in range(3)
        ]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT_S)
        return pings

    assert asyncio.run(go()) == ["WATCHDOG=1"] * 3


def test_run_watchdog_pings_only_while_alive(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "40000"})
    checks: list[bool] = []

    def alive() -> bool:  # a vital task ends after two pings
        checks.append(len(checks) < 2)
        return checks[-1]

    async def go() -> None:
        task = asyncio.create_task(notifier.run_watchdog(alive), name="watchdog")
        while len(checks) < 6:  # three more checks, each withholding its ping
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT_S)

    asyncio.run(asyncio.wait_for(go(), WAIT_S))
    assert [received(sock), received(sock)] == ["WATCHDOG=1"] * 2
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        received(sock)


def test_send_failures_never_raise_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": f"/tmp/vc-no-such-{uuid.uuid4().hex}"})
    assert notifier.enabled
    with caplog.at_level(logging.DEBUG, logger="voice_companion.service.notify"):
        notifier.ready("a")
        notifier.status("b")
        notifier.watchdog()
        notifier.stopping()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "could not notify systemd" in warnings[0].getMessage()
    assert len(caplog.records) == 4


def test_unsupported_address_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="voice_companion.service.notify"):
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    notifier.ready()
    assert len(caplog.records) == 1 and "NOTIFY_SOCKET" in caplog.records[0].getMessage()
