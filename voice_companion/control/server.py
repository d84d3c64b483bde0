"""The daemon's side of the control socket (asyncio).

Safety: the socket's folder is created 0700, the socket is 0600 from birth (bound under a
restrictive umask) and every peer's uid is checked with ``SO_PEERCRED``: only the daemon's own
user may send commands. One daemon per socket: a lock file next to the socket and a connection
attempt tell a live daemon from a stale socket file left by a crash.

Robustness: a malformed or oversized request gets an error reply and the connection stays
usable; a failing handler gets an error reply and a log line; one bad client never stops the
server from serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from voice_companion.control.protocol import (
    MAX_LINE_BYTES,
    encode_line,
    error_reply,
    ok_reply,
    parse_request,
)
from voice_companion.errors import CompanionError, ControlError
from voice_companion.events import Command

log = logging.getLogger(__name__)

Handler = Callable[[Command], Awaitable[dict[str, Any]]]
"""Carries out one command; returns the reply's fields (``ok`` is added). A ``CompanionError``
it raises becomes ``{"ok": false, "error": str(exc)}``."""

SOCKET_DIR_NAME = "voice-companion"
SOCKET_FILE_NAME = "control.sock"
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_MAX_UNIX_PATH_BYTES = 107  # sun_path holds 108 bytes, the terminating NUL included
_CLOSE_WAIT_S = 1.0


def default_socket_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/voice-companion/control.sock``; ``ControlError`` if it is unset."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if not runtime:
        raise ControlError(
            "XDG_RUNTIME_DIR is not set, so there is no private place for the control socket; "
            "run inside a login session or `systemd --user`, or set XDG_RUNTIME_DIR"
        )
    if not os.path.isabs(runtime):
        raise ControlError(f"XDG_RUNTIME_DIR must be an absolute path, not {runtime!r}")
    return Path(runtime) / SOCKET_DIR_NAME / SOCKET_FILE_NAME


def peer_credentials(sock: Any) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a connected unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


class ControlServer:
    """Serves control requests on a unix socket at ``path``, one reply per request line."""

    def __init__(self, path: Path, handle: Handler) -> None:
        self._path = path
        self._handle = handle
        self._uid = os.geteuid()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._lock_fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._closing = False
        self._count = 0

    @property
    def path(self) -> Path:
        return self._path

    @property
    def connections(self) -> int:
        """How many client connections are being served right now."""
        return len(self._connections)

    async def start(self) -> None:
        """Create the socket and start accepting; ``ControlError`` if that is not possible."""
        if self._server is not None or self._closing:
            raise RuntimeError("ControlServer.start() may be called once")
        path = self._path
        if len(os.fsencode(path)) > _MAX_UNIX_PATH_BYTES:
            raise ControlError(
                f"control socket path is too long for a unix socket "
                f"(at most {_MAX_UNIX_PATH_BYTES} bytes): {path}"
            )
        _prepare_dir(path.parent, self._uid)
        lock_fd = _take_lock(path)
        try:
            _remove_stale_socket(path)
            sock = _bind(path)
            st = os.stat(path)
            self._identity = (st.st_dev, st.st_ino)
            try:
                self._server = await asyncio.start_unix_server(
                    self._on_connect, sock=sock, limit=MAX_LINE_BYTES
                )
            except BaseException:
                sock.close()
                self._unlink_socket()
                raise
        except BaseException:
            os.close(lock_fd)
            raise
        self._lock_fd = lock_fd
        log.info("control socket listening at %s", path)

    async def close(self) -> None:
        """Stop accepting, cancel and await every connection, remove the socket file.

        Safe to call more than once, and from inside a handler (a ``quit`` command): the
        calling connection is left to finish its reply.
        """
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        current = asyncio.current_task()
        others = [task for task in self._connections if task is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        if server is not None and current not in self._connections:
            # On 3.12+ this waits for open connections, so never from inside one.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), _CLOSE_WAIT_S)
        self._unlink_socket()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
            log.info("control socket closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _unlink_socket(self) -> None:
        """Remove the socket file, unless another daemon has replaced it since."""
        if self._identity is None:
            return
        try:
            st = os.lstat(self._path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self._path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove the control socket %s: %s", self._path, exc.strerror)
        self._identity = None

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.transport.abort()
            return
        self._count += 1
        task = asyncio.create_task(
            self._serve(reader, writer), name=f"control-connection-{self._count}"
        )
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await self._peer_allowed(writer):
                await self._serve_lines(reader, writer)
        except (ConnectionError, TimeoutError) as exc:
            log.debug("control client went away: %s", exc)
        except Exception:
            log.exception("control connection failed")
        finally:
            await _close_writer(writer)

    async def _peer_allowed(self, writer: asyncio.StreamWriter) -> bool:
        try:
            pid, uid, _gid = peer_credentials(writer.get_extra_info("socket"))
        except OSError as exc:
            log.warning("refused a control connection: cannot read its credentials (%s)", exc)
            await _send(writer, error_reply("refused: cannot check who is connecting"))
            return False
        if uid == self._uid:
            return True
        log.warning(
            "refused a control connection from uid %d (pid %d): only uid %d may control it",
            uid,
            pid,
            self._uid,
        )
        await _send(
            writer,
            error_reply(
                f"permission denied: uid {uid} may not control this companion "
                f"(it belongs to uid {self._uid})"
            ),
        )
        return False

    async def _serve_lines(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                # End of input; a last request without its newline still gets its answer.
                if exc.partial.strip():
                    await _send(writer, await self._answer(exc.partial))
                return
            except asyncio.LimitOverrunError:
                log.debug("control request longer than %d bytes discarded", MAX_LINE_BYTES)
                await _send(
                    writer,
                    encode_line(
                        error_reply(
                            f"request too long: more than {MAX_LINE_BYTES} bytes "
                            "(the line is discarded)"
                        )
                    ),
                )
                if not await _discard_rest_of_line(reader):
                    return
                continue
            await _send(writer, await self._answer(line))

    async def _answer(self, line: bytes) -> bytes:
        """The reply line for one request line."""
        try:
            command = parse_request(line)
        except ControlError as exc:
            log.debug("malformed control request: %s", exc)
            return encode_line(error_reply(str(exc)))
        name = type(command).__name__
        log.debug("control command %s", name)
        try:
            return encode_line(ok_reply(await self._handle(command)))
        except CompanionError as exc:
            # The message may quote what the user asked for: not above DEBUG.
            log.info("control command %s failed", name)
            log.debug("control command %s failed: %s", name, exc)
            return encode_line(error_reply(str(exc)))
        except Exception as exc:
            log.error(
                "control command %s failed with %s (a bug; -vv shows the traceback)",
                name,
                type(exc).__name__,
            )
            log.debug("control command %s failed", name, exc_info=True)
            return encode_line(
                error_reply(f"the companion failed to carry out {name}: {type(exc).__name__}")
            )


async def _send(writer: asyncio.StreamWriter, line: bytes | dict[str, Any]) -> None:
    writer.write(line if isinstance(line, bytes) else encode_line(line))
    await writer.drain()


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), _CLOSE_WAIT_S)
    except (OSError, TimeoutError):
        writer.transport.abort()  # a client that never reads its replies: drop them


async def _discard_rest_of_line(reader: asyncio.StreamReader) -> bool:
    """Drop input through the next newline, a bounded piece at a time. False at end of input.

    ``readuntil`` leaves an overlong line in the reader's buffer (which holds at most about
    twice the limit before reading pauses); ``consumed`` says how much of it has no newline.
    """
    while True:
        try:
            await reader.readuntil(b"\n")
            return True
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
        except asyncio.IncompleteReadError:
            return False


def _prepare_dir(folder: Path, uid: int) -> None:
    """Create the socket's folder 0700, or check that an existing one is ours and private."""
    try:
        folder.mkdir(mode=0o700, parents=True)
        os.chmod(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ControlError(
            f"cannot create the control socket folder {folder}: {exc.strerror}"
        ) from exc
    try:
        st = os.stat(folder)
    except OSError as exc:
        raise ControlError(
            f"cannot use the control socket folder {folder}: {exc.strerror}"
        ) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise ControlError(f"{folder} is not a folder; cannot put the control socket there")
    if st.st_uid != uid:
        raise ControlError(
            f"the control socket folder {folder} belongs to uid {st.st_uid}, not to you "
            f"(uid {uid}); refusing to use it"
        )
    if st.st_mode & 0o022:
        raise ControlError(
            f"the control socket folder {folder} is writable by other users "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it"
        )


def _take_lock(path: Path) -> int:
    """Hold an exclusive lock on ``<socket>.lock`` for the daemon's lifetime."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ControlError(f"cannot open the lock file {lock_path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ControlError(_already_running(path)) from None
    except OSError as exc:
        os.close(fd)
        raise ControlError(f"cannot lock {lock_path}: {exc.strerror}") from exc
    return fd


def _already_running(path: Path) -> str:
    return (
        f"another companion is already running on the control socket {path}; "
        "stop it first (`voice-companion quit`)"
    )


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file nobody listens on; refuse if a daemon answers on it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"{path} exists and is not a socket; remove it or choose another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)  # a unix connect is decided at once: accepted, refused or EAGAIN
    try:
        probe.connect(os.fspath(path))
    except FileNotFoundError:
        return
    except ConnectionRefusedError:
        pass  # stale: nobody listens
    except BlockingIOError:
        raise ControlError(_already_running(path)) from None  # live, backlog full
    except OSError as exc:
        raise ControlError(f"cannot check the existing control socket {path}: {exc}") from exc
    else:
        raise ControlError(_already_running(path))
    finally:
        probe.close()
    log.info("removing a stale control socket at %s", path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ControlError(f"cannot remove the stale control socket {path}: {exc}") from exc


def _bind(path: Path) -> socket.socket:
    """A listening socket at ``path``, mode 0600 from the moment it exists."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = False
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(os.fspath(path))
            bound = True
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if bound:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise ControlError(
            f"cannot create the control socket {path}: {exc.strerror or exc}"
        ) from exc
    return sock
