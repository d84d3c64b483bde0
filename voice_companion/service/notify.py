"""systemd notifications (``sd_notify``) without libsystemd.

Under a ``Type=notify`` unit systemd passes ``NOTIFY_SOCKET`` (a path, or an abstract socket
name starting with ``@``); the daemon sends it ``READY=1`` once it is serving, ``STATUS=...``
lines, ``WATCHDOG=1`` pings (``WatchdogSec=`` sets ``WATCHDOG_USEC``) and ``STOPPING=1``.
Outside systemd every method is a no-op. Sending never raises: a failure is logged at WARNING
once (then at DEBUG), because a daemon must not die for want of a status line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

_SEND_TIMEOUT_S = 0.25
"""Longest a send may block (only when systemd's queue is full): it runs on the event loop."""


class Notifier:
    """Sends state changes to systemd's notification socket, if there is one."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        """``address`` as in ``NOTIFY_SOCKET`` (``/path`` or ``@abstract``), or None for none;
        ``watchdog_usec`` is the watchdog timeout in microseconds, or None for no watchdog."""
        self._display = address
        self._address = _socket_address(address) if address else None
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Built from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (``os.environ``
        by default). The watchdog is off if ``WATCHDOG_PID`` names another process."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        watchdog_usec: int | None = None
        raw_usec = env.get("WATCHDOG_USEC", "")
        if raw_usec:
            try:
                watchdog_usec = int(raw_usec)
            except ValueError:
                log.warning("ignoring WATCHDOG_USEC=%r: not a whole number", raw_usec)
        raw_pid = env.get("WATCHDOG_PID", "")
        if watchdog_usec is not None and raw_pid and raw_pid != str(os.getpid()):
            watchdog_usec = None  # the watchdog is meant for another process
        return cls(address, watchdog_usec)

    @property
    def enabled(self) -> bool:
        """Whether there is a notification socket to talk to."""
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to call ``watchdog()``: half the watchdog timeout; None without one."""
        if self._watchdog_usec is None or not self.enabled:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def ready(self, status: str = "") -> None:
        """The daemon is up and serving (``READY=1``), with an optional status line."""
        self._send("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> None:
        """A one-line status shown by ``systemctl --user status`` (no private text here)."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        """Tell the watchdog the daemon is alive (``WATCHDOG=1``)."""
        self._send("WATCHDOG=1")

    def stopping(self, status: str = "") -> None:
        """The daemon is shutting down (``STOPPING=1``)."""
        self._send("STOPPING=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    async def run_watchdog(self, alive: Callable[[], bool] | None = None) -> None:
        """Ping the watchdog every ``watchdog_interval_s`` until cancelled; returns at once
        when there is no watchdog. Run it as a named task on the daemon's loop: a stuck loop
        then stops the pings and systemd restarts the daemon. ``alive`` (checked before each
        ping) withholds the ping while it returns False, e.g. once a vital task has ended.

        Liveness is the process's own, never its input's: a microphone that hears nothing
        (unplugged, muted) is waited for, and a restart would not bring it back."""
        interval_s = self.watchdog_interval_s
        if interval_s is None:
            return
        while True:
            if alive is None or alive():
                self.watchdog()
            await asyncio.sleep(interval_s)

    def close(self) -> None:
        """Release the socket (sending again opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.settimeout(_SEND_TIMEOUT_S)
                self._sock = sock
            self._sock.sendto(message.encode("utf-8"), self._address)
        except OSError as exc:
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "could not notify systemd at %s: %s", self._display, exc)


def _socket_address(address: str) -> str | None:
    if address.startswith("@"):
        return "\0" + address[1:]  # abstract namespace
    if address.startswith("/"):
        return address
    log.warning("ignoring NOTIFY_SOCKET=%r: only a path or an @abstract name is supported", address)
    return None


def _one_line(text: str) -> str:
    """Notification fields are newline-separated: fold the text onto one line."""
    return " ".join(text.split())
