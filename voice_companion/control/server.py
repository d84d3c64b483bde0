"""The daemon's side of the control socket (asyncio).

Safety: the socket's folder is created 0700, the socket is 0600 from birth (bound under a
restrictive umask) and every peer's uid is checked with ``SO_PEERCRED``: only the daemon's own
user may send commands. One daemon per socket: a lock file next to the socket and a connection
attempt tell a live daemon from a stale socket file left by a crash.

Robustness: a malformed or oversized request gets an error reply and the connection stays
usable; a failing handler gets an error reply and a log line; one bad client never stops the
server from serving the others.

Bounded: at most ``MAX_CONNECTIONS`` clients are served at once. A new client past that
takes the place of the one that has waited longest without sending a whole request (so idle
clients can never lock out ``status``); when every slot is busy carrying out a command, the
newcomer is told so in one line and closed. A client that sends nothing, or only part of a
line, for ``REQUEST_TIMEOUT_S`` is closed. When accepting fails (no descriptors left: EMFILE)
the server backs off and logs it at most once per ``ACCEPT_LOG_INTERVAL_S``. Idle clients can
neither take the descriptors the daemon needs for its turns nor fill the log.
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
import time
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

MAX_CONNECTIONS = 16
"""Clients served at once; the CLI opens one per command, so 16 is plenty."""
REQUEST_TIMEOUT_S = 5.0
"""How long a client may take to send a whole request line (idle or half a line)."""
ACCEPT_LOG_INTERVAL_S = 30.0
"""At most one log line per this interval for refused connections and accept failures."""
_ACCEPT_BACKOFF_S = (0.05, 1.0)
"""First and longest pause after a failed accept (doubling in between)."""


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

    def __init__(
        self,
        path: Path,
        handle: Handler,
        max_connections: int = MAX_CONNECTIONS,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self._path = path
        self._handle = handle
        self._uid = os.geteuid()
        self._max_connections = max_connections
        self._request_timeout_s = request_timeout_s
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._waiting: dict[asyncio.Task[None], float] = {}  # waiting for a request, since
        self._evicted = _RateLimitedLog(
            "control socket full (%d time(s)): %d connections open; closed the longest idle"
        )
        self._refused = _RateLimitedLog(
            "control socket full (%d time(s)): %d connections busy; turned a newcomer away"
        )
        self._accept_failed = _RateLimitedLog(
            "cannot accept control connections (%d time(s)): %s; backing off"
        )
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
        if self._listener is not None or self._closing:
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
            self._listener = sock
            # Our own accept loop rather than asyncio.start_unix_server: asyncio logs a
            # traceback for every failed accept, and has no connection cap.
            self._accepting = asyncio.create_task(self._accept_loop(sock), name="control-accept")
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
        accepting, self._accepting = self._accepting, None
        if accepting is not None:
            accepting.cancel()
            await asyncio.gather(accepting, return_exceptions=True)
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        current = asyncio.current_task()
        others = [task for task in self._connections if task is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)
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

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        backoff = _ACCEPT_BACKOFF_S[0]
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                # EMFILE, ENFILE, ENOBUFS, ...: the same error comes back at once, so wait.
                self._accept_failed.note(exc.strerror or str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _ACCEPT_BACKOFF_S[1])
                continue
            backoff = _ACCEPT_BACKOFF_S[0]
            if not self._make_room():
                self._refuse(conn)
                continue
            try:
                reader, writer = await asyncio.open_unix_connection(sock=conn, limit=MAX_LINE_BYTES)
            except OSError as exc:
                conn.close()
                self._accept_failed.note(exc.strerror or str(exc))
                continue
            self._on_connect(reader, writer)

    def _make_room(self) -> bool:
        """Whether one more client may be served, closing the longest-waiting idle one if
        that is what it takes."""
        live = [task for task in self._connections if not task.cancelling()]
        if len(live) < self._max_connections:
            return True
        idle = [(since, task) for task, since in self._waiting.items() if not task.cancelling()]
        if not idle:
            return False
        _since, oldest = min(idle, key=lambda pair: pair[0])
        self._waiting.pop(oldest, None)
        self._evicted.note(len(live))
        oldest.cancel()  # its clean-up closes the socket at once
        return True

    def _refuse(self, conn: socket.socket) -> None:
        """Tell one client too many why it is turned away, without waiting for it."""
        self._refused.note(len(self._connections))
        line = encode_line(
            error_reply(
                f"busy: {self._max_connections} control connections are already open; "
                "try again in a moment"
            )
        )
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(line)  # a fresh socket's buffer takes one short line
        conn.close()

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
        task.add_done_callback(lambda done: self._waiting.pop(done, None))

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
        task = asyncio.current_task()
        assert task is not None
        while True:
            self._waiting[task] = time.monotonic()
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), self._request_timeout_s)
            except TimeoutError:
                # Idle, or stuck half-way through a line: the slot goes to someone else.
                log.debug("control client sent no whole request for %g s", self._request_timeout_s)
                await _send(
                    writer,
                    error_reply(
                        f"no complete request within {self._request_timeout_s:g} s; closing"
                    ),
                )
                return
            except asyncio.IncompleteReadError as exc:
                # End of input; a last request without its newline still gets its answer.
                if exc.partial.strip():
                    self._waiting.pop(task, None)
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
                if not await asyncio.wait_for(
                    _discard_rest_of_line(reader), self._request_timeout_s
                ):
                    return
                continue
            self._waiting.pop(task, None)  # carrying out a command: not to be replaced
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


class _RateLimitedLog:
    """A warning logged at most once per ``ACCEPT_LOG_INTERVAL_S``, counting what it skipped."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._last = -float("inf")
        self._count = 0

    def note(self, detail: object) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= ACCEPT_LOG_INTERVAL_S:
            log.warning(self._message, self._count, detail)
            self._last, self._count = now, 0


async def _send(writer: asyncio.StreamWriter, line: bytes | dict[str, Any]) -> None:
    writer.write(line if isinstance(line, bytes) else encode_line(line))
    # A client that never reads its replies is dropped (TimeoutError), not waited for.
    await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)


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
