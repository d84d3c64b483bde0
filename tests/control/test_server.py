"""The control server and client on real unix sockets: round trips, permissions, bad clients."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from voice_companion.control.client import request
from voice_companion.control.protocol import MAX_LINE_BYTES
from voice_companion.control.server import ControlServer, default_socket_path
from voice_companion.errors import ControlError
from voice_companion.events import (
    Command,
    Mute,
    PttPress,
    PttRelease,
    PttToggle,
    Quit,
    ReportStatus,
    Say,
    StopSpeaking,
    SwitchPersona,
    Unmute,
)

T = TypeVar("T")
WAIT_S = 10.0
NOBODY = 65534


def run(make: Callable[[], Awaitable[T]], timeout_s: float = 60.0) -> T:
    async def go() -> T:
        return await asyncio.wait_for(make(), timeout_s)

    return asyncio.run(go())


@pytest.fixture
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Short, so the socket path fits a sockaddr_un (pytest's tmp_path can be too long).
    folder = Path(tempfile.mkdtemp(prefix="vc-rt-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def socket_path(runtime_dir: Path) -> Path:
    return default_socket_path()


class Recorder:
    """A handler that records commands and answers like a small daemon would."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.server: ControlServer | None = None

    async def __call__(self, command: Command) -> dict[str, Any]:
        self.commands.append(command)
        match command:
            case ReportStatus():
                return {"state": "idle", "mode": "hands-free"}
            case Say(text=text):
                return {"chars": len(text)}
            case SwitchPersona(name="missing"):
                raise ControlError("there is no persona named missing")
            case SwitchPersona(name="boom"):
                raise RuntimeError("private words the user said")
            case SwitchPersona(name="slow"):
                await asyncio.sleep(3600)
                return {}
            case Quit():
                if self.server is not None:
                    await self.server.close()
                return {"bye": True}
            case _:
                return {}


class Conn:
    """A raw line-level client on the test's loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path: Path) -> Conn:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), WAIT_S)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), WAIT_S)

    async def reply(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), WAIT_S)
        assert line.endswith(b"\n"), line
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def ask(self, data: bytes) -> dict[str, Any]:
        await self.send(data)
        return await self.reply()

    async def at_eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), WAIT_S) == b""

    async def close(self) -> None:
        self.writer.close()
        await asyncio.wait_for(self.writer.wait_closed(), WAIT_S)


async def ask(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The real (blocking) client, in a thread so the server on this loop keeps running."""
    return await asyncio.wait_for(asyncio.to_thread(request, path, payload, 5.0), WAIT_S)


STATUS = b'{"cmd": "status"}\n'


async def until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout_s)


# --- round trips ---------------------------------------------------------------------------


def test_every_command_round_trips_through_the_client(socket_path: Path) -> None:
    handler = Recorder()
    payloads: list[dict[str, Any]] = [
        {"cmd": "status"},
        {"cmd": "ptt", "action": "press"},
        {"cmd": "ptt", "action": "release"},
        {"cmd": "ptt", "action": "toggle"},
        {"cmd": "mute"},
        {"cmd": "unmute"},
        {"cmd": "say", "text": "Hallo, wie geht's? 你好"},
        {"cmd": "stop"},
        {"cmd": "persona", "name": "Ada"},
        {"cmd": "quit"},
    ]

    async def go() -> list[dict[str, Any]]:
        async with ControlServer(socket_path, handler):
            return [await ask(socket_path, payload) for payload in payloads]

    replies = run(go)
    assert replies[0] == {"ok": True, "state": "idle", "mode": "hands-free"}
    assert replies[6] == {"ok": True, "chars": len("Hallo, wie geht's? 你好")}
    assert all(reply == {"ok": True} for reply in replies[1:6] + replies[7:9])
    assert replies[9] == {"ok": True, "bye": True}
    assert handler.commands == [
        ReportStatus(),
        PttPress(),
        PttRelease(),
        PttToggle(),
        Mute(),
        Unmute(),
        Say("Hallo, wie geht's? 你好"),
        StopSpeaking(),
        SwitchPersona("Ada"),
        Quit(),
    ]
    assert not socket_path.exists()


def test_many_requests_on_one_connection_and_a_last_line_without_newline(
    socket_path: Path,
) -> None:
    async def go() -> list[dict[str, Any]]:
        async with ControlServer(socket_path, Recorder()):
            conn = await Conn.open(socket_path)
            replies = [await conn.ask(STATUS) for _ in range(3)]
            await conn.send(b'{"cmd": "mute"}')  # no newline, then end of input
            conn.writer.write_eof()
            replies.append(await conn.reply())
            assert await conn.at_eof()
            await conn.close()
            return replies

    assert [reply["ok"] for reply in run(go)] == [True, True, True, True]


def test_socket_is_private(socket_path: Path, runtime_dir: Path) -> None:
    async def go() -> tuple[int, int, int]:
        async with ControlServer(socket_path, Recorder()):
            sock_st = os.stat(socket_path)
            assert stat.S_ISSOCK(sock_st.st_mode)
            return (
                stat.S_IMODE(sock_st.st_mode),
                stat.S_IMODE(os.stat(socket_path.parent).st_mode),
                sock_st.st_uid,
            )

    previous = os.umask(0o000)  # even a careless umask must not make it reachable
    try:
        sock_mode, dir_mode, uid = run(go)
    finally:
        os.umask(previous)
    assert sock_mode == 0o600
    assert dir_mode == 0o700
    assert uid == os.geteuid()
    assert socket_path.parent == runtime_dir / "voice-companion"


def test_default_socket_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_socket_path({"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path(
        "/run/user/1000/voice-companion/control.sock"
    )
    with pytest.raises(ControlError, match="XDG_RUNTIME_DIR is not set"):
        default_socket_path({})
    with pytest.raises(ControlError, match="XDG_RUNTIME_DIR must be an absolute path"):
        default_socket_path({"XDG_RUNTIME_DIR": "run/user"})
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    with pytest.raises(ControlError, match="XDG_RUNTIME_DIR is not set"):
        default_socket_path()


# --- other users ---------------------------------------------------------------------------

OTHER_USER_CLIENT = textwrap.dedent(
    """
    import socket, sys
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(sys.argv[1])
    try:
        sock.sendall(b'{"cmd": "quit"}\\n')
    except OSError:
        pass
    data = b""
    while not data.endswith(b"\\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sys.stdout.write(data.decode())
    """
)


def _needs_root_and_setpriv() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a client as another user")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux)")


def _system_python() -> str:
    # The venv's interpreter may live under /root, which another user cannot read.
    return shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable


def test_another_users_request_is_refused(
    socket_path: Path, runtime_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _needs_root_and_setpriv()
    script_dir = Path(tempfile.mkdtemp(prefix="vc-cl-"))
    script_dir.chmod(0o755)
    script = script_dir / "client.py"
    script.write_text(OTHER_USER_CLIENT)
    script.chmod(0o644)
    handler = Recorder()

    async def go() -> tuple[str, dict[str, Any]]:
        async with ControlServer(socket_path, handler):
            # Open every permission bit, so only the uid check stands in the way.
            runtime_dir.chmod(0o711)
            socket_path.parent.chmod(0o711)
            socket_path.chmod(0o666)
            proc = await asyncio.create_subprocess_exec(
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                _system_python(),
                str(script),
                str(socket_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 0, err.decode()
            # The owner is still served, on the same daemon.
            return out.decode(), await ask(socket_path, {"cmd": "status"})

    try:
        with caplog.at_level(logging.WARNING, logger="voice_companion.control.server"):
            refusal, owner = run(go)
    finally:
        shutil.rmtree(script_dir, ignore_errors=True)
    reply = json.loads(refusal)
    assert reply["ok"] is False
    assert f"uid {NOBODY}" in reply["error"]
    assert "permission denied" in reply["error"]
    assert owner == {"ok": True, "state": "idle", "mode": "hands-free"}
    assert handler.commands == [ReportStatus()]  # the stranger's quit never reached it
    assert any(f"uid {NOBODY}" in r.getMessage() for r in caplog.records)


def test_client_reports_permission_denied(socket_path: Path, runtime_dir: Path) -> None:
    _needs_root_and_setpriv()
    probe = [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        sys.executable,
        "-c",
        "import voice_companion.control.client",
    ]
    if subprocess.run(probe, capture_output=True, timeout=60, cwd=Path.cwd()).returncode != 0:
        pytest.skip("the venv and repository are not readable by another user")
    code = (
        "import sys; from pathlib import Path\n"
        "from voice_companion.control.client import request\n"
        "from voice_companion.errors import ControlError\n"
        "try:\n"
        "    request(Path(sys.argv[1]), {'cmd': 'status'})\n"
        "except ControlError as exc:\n"
        "    print(exc)\n"
    )

    async def go() -> str:
        async with ControlServer(socket_path, Recorder()):
            runtime_dir.chmod(0o711)
            socket_path.parent.chmod(0o711)  # the socket itself stays 0600
            proc = await asyncio.create_subprocess_exec(
                *probe[:5], "-c", code, str(socket_path), stdout=subprocess.PIPE
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            return out.decode().strip()

    assert run(go) == (
        f"permission denied on the control socket {socket_path}: it belongs to another user"
    )


# --- bad clients ---------------------------------------------------------------------------


def test_malformed_and_unknown_requests_keep_the_connection_usable(socket_path: Path) -> None:
    async def go() -> list[dict[str, Any]]:
        async with ControlServer(socket_path, Recorder()):
            conn = await Conn.open(socket_path)
            replies = [
                await conn.ask(b"this is not json\n"),
                await conn.ask(STATUS),
                await conn.ask(b'{"cmd": "dance"}\n'),
                await conn.ask(STATUS),
                await conn.ask(b'{"cmd": "ptt", "action": "hold"}\n'),
                await conn.ask(b"\xff\xfe\n"),
                await conn.ask(b"\n"),
                await conn.ask(STATUS),
            ]
            other = await Conn.open(socket_path)
            replies.append(await other.ask(STATUS))
            await other.close()
            await conn.close()
            return replies

    replies = run(go)
    assert [reply["ok"] for reply in replies] == [
        False,
        True,
        False,
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    assert "not JSON" in replies[0]["error"]
    assert 'unknown cmd "dance"' in replies[2]["error"]
    assert 'unknown ptt action "hold"' in replies[4]["error"]
    assert "UTF-8" in replies[5]["error"]
    assert "empty request" in replies[6]["error"]


def _send_huge_line_then_status(path: Path, total_bytes: int) -> list[bytes]:
    """Blocking: a 10 MB line sent in 64 KiB pieces (never held whole), then a status."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT_S)
        sock.connect(os.fspath(path))
        piece = b"x" * 65536
        for _ in range(total_bytes // len(piece)):
            sock.sendall(piece)
        sock.sendall(b"\n" + STATUS)
        data = b""
        while data.count(b"\n") < 2:
            chunk = sock.recv(65536)
            assert chunk, "server closed the connection"
            data += chunk
        return data.splitlines()


def test_a_10_mb_line_is_discarded_without_being_buffered(socket_path: Path) -> None:
    async def go() -> tuple[list[bytes], int]:
        async with ControlServer(socket_path, Recorder()):
            tracemalloc.start()
            try:
                lines = await asyncio.wait_for(
                    asyncio.to_thread(_send_huge_line_then_status, socket_path, 10 * 2**20), 60
                )
                _, peak_bytes = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert (await ask(socket_path, {"cmd": "status"}))["ok"] is True
            return lines, peak_bytes

    lines, peak_bytes = run(go)
    assert [json.loads(line)["ok"] for line in lines] == [False, True]
    assert "request too long: more than 65536 bytes" in json.loads(lines[0])["error"]
    # The server's side of the 10 MB never sat in memory at once (the limit is 64 KiB).
    assert peak_bytes < 2 * 2**20, peak_bytes


def test_a_10_mb_line_without_newline_gets_its_error_at_once(socket_path: Path) -> None:
    async def go() -> list[dict[str, Any]]:
        async with ControlServer(socket_path, Recorder()):
            conn = await Conn.open(socket_path)
            sending = asyncio.create_task(conn.send(b"y" * (10 * 2**20)))
            # The error arrives while the line is still coming: no newline needed first.
            first = await conn.reply()
            # Meanwhile, a second client is served.
            second = await ask(socket_path, {"cmd": "status"})
            await asyncio.wait_for(sending, 60)
            # The newline ends the long line; the connection is usable again.
            third = await conn.ask(b"\n" + STATUS)
            await conn.close()
            return [first, second, third]

    first, second, third = run(go)
    assert first["ok"] is False and "request too long" in first["error"]
    assert second["ok"] is True
    assert third["ok"] is True


def test_a_long_line_then_end_of_input_closes_cleanly(socket_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], bool, dict[str, Any]]:
        async with ControlServer(socket_path, Recorder()) as server:
            conn = await Conn.open(socket_path)
            await conn.send(b"z" * (MAX_LINE_BYTES * 3))
            conn.writer.write_eof()
            reply = await conn.reply()
            eof = await conn.at_eof()
            await conn.close()
            await until(lambda: server.connections == 0)
            return reply, eof, await ask(socket_path, {"cmd": "status"})

    reply, eof, status = run(go)
    assert reply["ok"] is False
    assert eof
    assert status["ok"] is True


def test_longest_allowed_line_is_served(socket_path: Path) -> None:
    longest = STATUS[:-1] + b" " * (MAX_LINE_BYTES - len(STATUS) + 1)
    assert len(longest) == MAX_LINE_BYTES

    async def go() -> list[dict[str, Any]]:
        async with ControlServer(socket_path, Recorder()):
            conn = await Conn.open(socket_path)
            replies = [await conn.ask(longest + b"\n"), await conn.ask(longest + b" \n")]
            replies.append(await conn.ask(STATUS))
            await conn.close()
            return replies

    assert [reply["ok"] for reply in run(go)] == [True, False, True]


def test_handler_failures_become_error_replies(
    socket_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> list[dict[str, Any]]:
        async with ControlServer(socket_path, Recorder()):
            conn = await Conn.open(socket_path)
            replies = [
                await conn.ask(b'{"cmd": "persona", "name": "missing"}\n'),
                await conn.ask(b'{"cmd": "persona", "name": "boom"}\n'),
                await conn.ask(STATUS),
            ]
            await conn.close()
            return replies

    with caplog.at_level(logging.INFO, logger="voice_companion.control.server"):
        missing, boom, status = run(go)
    assert missing == {"ok": False, "error": "there is no persona named missing"}
    assert boom["ok"] is False
    assert "failed to carry out SwitchPersona: RuntimeError" in boom["error"]
    assert status["ok"] is True
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "RuntimeError" in errors[0].getMessage()
    # Nothing the user said (or their persona's name) is logged above DEBUG.
    for record in caplog.records:
        if record.levelno > logging.DEBUG:
            assert "private words" not in record.getMessage()
            assert "missing" not in record.getMessage()


def test_a_bad_reply_from_the_handler_is_an_error_reply(socket_path: Path) -> None:
    async def bad(command: Command) -> dict[str, Any]:
        return {"ok": False} if isinstance(command, Mute) else {"thing": object()}

    async def go() -> list[dict[str, Any]]:
        async with ControlServer(socket_path, bad):
            return [await ask(socket_path, {"cmd": "mute"}), await ask(socket_path, STATUS_OBJ)]

    for reply in run(go):
        assert reply["ok"] is False and "failed to carry out" in reply["error"]


STATUS_OBJ: dict[str, Any] = {"cmd": "status"}


# --- lifecycle -----------------------------------------------------------------------------


def _leave_stale_socket(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.fspath(path))
    path.chmod(0o777)
    sock.close()  # the file stays: what a crashed daemon leaves behind


def test_a_stale_socket_file_is_replaced(socket_path: Path) -> None:
    _leave_stale_socket(socket_path)
    assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o777

    async def go() -> tuple[dict[str, Any], int]:
        async with ControlServer(socket_path, Recorder()):
            return await ask(socket_path, STATUS_OBJ), os.stat(socket_path).st_mode

    reply, mode = run(go)
    assert reply["ok"] is True
    assert stat.S_IMODE(mode) == 0o600  # a new socket, not the stale one


def test_a_live_daemon_is_not_replaced(socket_path: Path) -> None:
    async def go() -> dict[str, Any]:
        async with ControlServer(socket_path, Recorder()):
            with pytest.raises(ControlError, match="another companion is already running"):
                await ControlServer(socket_path, Recorder()).start()
            return await ask(socket_path, STATUS_OBJ)

    assert run(go)["ok"] is True


def test_a_live_socket_of_another_program_is_not_replaced(socket_path: Path) -> None:
    # No lock file here: only the connection attempt can tell that it is live.
    socket_path.parent.mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(socket_path))
    listener.listen(1)
    try:

        async def go() -> None:
            await ControlServer(socket_path, Recorder()).start()

        with pytest.raises(ControlError, match="another companion is already running"):
            run(go)
        assert stat.S_ISSOCK(os.stat(socket_path).st_mode)
    finally:
        listener.close()


def test_a_file_that_is_not_a_socket_is_left_alone(socket_path: Path) -> None:
    socket_path.parent.mkdir(mode=0o700)
    socket_path.write_text("precious")

    async def go() -> None:
        await ControlServer(socket_path, Recorder()).start()

    with pytest.raises(ControlError, match="exists and is not a socket"):
        run(go)
    assert socket_path.read_text() == "precious"


def test_a_folder_other_users_can_write_is_refused(runtime_dir: Path) -> None:
    shared = runtime_dir / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    async def go() -> None:
        await ControlServer(shared / "control.sock", Recorder()).start()

    with pytest.raises(ControlError, match="writable by other users"):
        run(go)


def test_a_path_too_long_for_a_unix_socket_is_refused(runtime_dir: Path) -> None:
    async def go() -> None:
        await ControlServer(runtime_dir / ("d" * 120) / "control.sock", Recorder()).start()

    with pytest.raises(ControlError, match="too long for a unix socket"):
        run(go)


def test_close_cancels_connections_and_removes_the_socket(socket_path: Path) -> None:
    async def go() -> tuple[bool, bool, int]:
        server = ControlServer(socket_path, Recorder())
        await server.start()
        idle = await Conn.open(socket_path)
        busy = await Conn.open(socket_path)
        await busy.send(b'{"cmd": "persona", "name": "slow"}\n')  # a handler that never ends
        assert (await idle.ask(STATUS))["ok"] is True
        await until(lambda: server.connections == 2)
        assert server.connections == 2
        await server.close()
        await server.close()  # twice is fine
        closed = await idle.at_eof() and await busy.at_eof()
        await idle.close()
        await busy.close()
        return closed, socket_path.exists(), server.connections

    closed, exists, connections = run(go)
    assert closed
    assert not exists
    assert connections == 0
    with pytest.raises(ControlError) as caught:
        request(socket_path, STATUS_OBJ)
    assert str(caught.value) == (
        f"the companion is not running (no control socket at {socket_path}); "
        "start it with `voice-companion run`"
    )


def test_quit_may_close_the_server_from_its_own_handler(socket_path: Path) -> None:
    handler = Recorder()

    async def go() -> dict[str, Any]:
        server = ControlServer(socket_path, handler)
        handler.server = server
        await server.start()
        reply = await ask(socket_path, {"cmd": "quit"})
        await server.close()
        return reply

    assert run(go) == {"ok": True, "bye": True}
    assert not socket_path.exists()


def test_a_restarted_daemon_gets_the_socket_back(socket_path: Path) -> None:
    async def go() -> list[dict[str, Any]]:
        replies = []
        for _ in range(2):
            async with ControlServer(socket_path, Recorder()):
                replies.append(await ask(socket_path, STATUS_OBJ))
        return replies

    assert [reply["ok"] for reply in run(go)] == [True, True]


# --- client errors -------------------------------------------------------------------------


def test_client_stale_socket(socket_path: Path) -> None:
    _leave_stale_socket(socket_path)
    with pytest.raises(ControlError, match=r"the companion is not running .*refused"):
        request(socket_path, STATUS_OBJ)


def test_client_timeout(socket_path: Path) -> None:
    socket_path.parent.mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(socket_path))
    listener.listen(1)  # accepted by the kernel, never answered
    try:
        with pytest.raises(ControlError, match=r"did not answer within 0.3 s"):
            request(socket_path, STATUS_OBJ, timeout_s=0.3)
    finally:
        listener.close()


def _one_shot_server(path: Path, reply: bytes) -> threading.Thread:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(path))
    listener.listen(1)
    listener.settimeout(WAIT_S)

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(WAIT_S)
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"hello\n", "the companion sent a reply that is not JSON"),
        (b"", "the companion closed the connection without answering"),
        (b'{"state": "idle"}\n', "without a boolean 'ok'"),
    ],
)
def test_client_bad_replies(socket_path: Path, reply: bytes, message: str) -> None:
    thread = _one_shot_server(socket_path, reply)
    with pytest.raises(ControlError, match=message):
        request(socket_path, STATUS_OBJ)
    thread.join(WAIT_S)


def test_client_refuses_an_oversized_request(socket_path: Path) -> None:
    with pytest.raises(ControlError, match="request too long"):
        request(socket_path, {"cmd": "say", "text": "a" * MAX_LINE_BYTES})


def test_client_returns_refusals_as_replies(socket_path: Path) -> None:
    async def go() -> dict[str, Any]:
        async with ControlServer(socket_path, Recorder()):
            return await ask(socket_path, {"cmd": "ptt", "action": "hold"})

    reply = run(go)
    assert reply["ok"] is False and "unknown ptt action" in reply["error"]


# --- bounds ---------------------------------------------------------------------------------


def test_idle_and_half_line_clients_are_closed_after_the_request_timeout(
    socket_path: Path,
) -> None:
    async def go() -> tuple[dict[str, Any], bool, dict[str, Any], bool, int]:
        async with ControlServer(socket_path, Recorder(), request_timeout_s=0.3) as server:
            silent, half = await Conn.open(socket_path), await Conn.open(socket_path)
            await half.send(b'{"cmd": "sta')
            first, second = await silent.reply(), await half.reply()
            gone = await silent.at_eof() and await half.at_eof()
            # A client that keeps asking within the timeout is served as long as it likes.
            busy = await Conn.open(socket_path)
            for _ in range(3):
                await asyncio.sleep(0.1)
                answer = await busy.ask(STATUS)
            await busy.close()
            await until(lambda: server.connections == 0)
            return first, gone, answer, second == first, server.connections

    first, gone, answer, same, left = run(go)
    assert first == {"ok": False, "error": "no complete request within 0.3 s; closing"}
    assert same and gone and left == 0
    assert answer["ok"] is True


def test_when_every_slot_is_busy_a_newcomer_is_told_so(socket_path: Path) -> None:
    handler = Recorder()

    async def go() -> dict[str, Any]:
        async with ControlServer(socket_path, handler, max_connections=2):
            slow = [await Conn.open(socket_path) for _ in range(2)]
            for conn in slow:
                await conn.send(b'{"cmd": "persona", "name": "slow"}\n')
            await until(lambda: len(handler.commands) == 2)
            newcomer = await Conn.open(socket_path)
            reply = await newcomer.reply()
            assert await newcomer.at_eof()
            return reply

    reply = run(go)
    assert reply["ok"] is False and reply["error"].startswith("busy: 2 control connections")
