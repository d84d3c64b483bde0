"""The CLI's side of the control socket: one blocking request, one reply.

Every failure is a ``ControlError`` with one line a user can act on.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from voice_companion.control.protocol import MAX_LINE_BYTES, encode_line, parse_reply
from voice_companion.control.server import default_socket_path
from voice_companion.errors import ControlError, DaemonNotRunningError

__all__ = ["MAX_REPLY_BYTES", "default_socket_path", "request"]

MAX_REPLY_BYTES = 1024 * 1024
"""Longest reply line the client reads, in bytes."""
_RECV_BYTES = 65536


def request(path: Path, payload: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """Send ``payload`` as one request line to the daemon at ``path``; return its reply.

    The reply is returned as sent, ``{"ok": false, "error": ...}`` included: the caller
    decides what a refusal means. ``timeout_s`` bounds the whole exchange.
    """
    line = encode_line(payload)
    if len(line) - 1 > MAX_LINE_BYTES:
        raise ControlError(f"request too long: more than {MAX_LINE_BYTES} bytes")
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        _connect(sock, path, timeout_s)
        try:
            _settimeout(sock, deadline, timeout_s, path)
            sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon hung up (a refused peer); its reply may still be waiting
        except TimeoutError:
            raise ControlError(_no_answer(path, timeout_s)) from None
        except OSError as exc:
            raise ControlError(f"cannot talk to the companion at {path}: {_reason(exc)}") from exc
        reply = _read_line(sock, deadline, timeout_s, path)
    return parse_reply(reply)


def _connect(sock: socket.socket, path: Path, timeout_s: float) -> None:
    try:
        sock.settimeout(timeout_s)
        sock.connect(os.fspath(path))
    except FileNotFoundError:
        raise DaemonNotRunningError(
            f"the companion is not running (no control socket at {path}); "
            "start it with `voice-companion run`"
        ) from None
    except ConnectionRefusedError:
        raise DaemonNotRunningError(
            f"the companion is not running (the control socket {path} refused the "
            "connection; it is left over from an earlier run); start it with "
            "`voice-companion run`"
        ) from None
    except PermissionError:
        raise ControlError(
            f"permission denied on the control socket {path}: it belongs to another user"
        ) from None
    except TimeoutError:
        raise ControlError(
            f"the companion did not accept the connection within {timeout_s:g} s ({path})"
        ) from None
    except OSError as exc:
        raise ControlError(f"cannot connect to the companion at {path}: {_reason(exc)}") from exc


def _read_line(sock: socket.socket, deadline: float, timeout_s: float, path: Path) -> bytes:
    buffer = bytearray()
    while True:
        try:
            _settimeout(sock, deadline, timeout_s, path)
            chunk = sock.recv(_RECV_BYTES)
        except TimeoutError:
            raise ControlError(_no_answer(path, timeout_s)) from None
        except ConnectionResetError:
            chunk = b""
        except OSError as exc:
            raise ControlError(f"cannot talk to the companion at {path}: {_reason(exc)}") from exc
        if not chunk:
            if buffer:
                return bytes(buffer)
            raise ControlError("the companion closed the connection without answering")
        end = chunk.find(b"\n")
        if end >= 0:
            buffer += chunk[:end]
            return bytes(buffer)
        buffer += chunk
        if len(buffer) > MAX_REPLY_BYTES:
            raise ControlError(
                f"the companion's reply is too long (more than {MAX_REPLY_BYTES} bytes)"
            )


def _settimeout(sock: socket.socket, deadline: float, timeout_s: float, path: Path) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ControlError(_no_answer(path, timeout_s))
    sock.settimeout(remaining)


def _no_answer(path: Path, timeout_s: float) -> str:
    return f"the companion did not answer within {timeout_s:g} s (control socket {path})"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
