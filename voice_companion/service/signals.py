"""Shutdown signals on the asyncio loop.

``install_signal_handlers(callback)`` makes SIGTERM (systemd's stop), SIGINT (Ctrl-C) and
SIGHUP (the terminal went away) call ``callback(signal)`` on the loop, instead of killing the
process or raising ``KeyboardInterrupt`` wherever the main thread happens to be. The callback
typically sets an ``asyncio.Event`` the daemon waits on, then the daemon cancels and awaits its
tasks and returns exit code 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def install_signal_handlers(
    callback: Callable[[signal.Signals], object],
    signals: Iterable[signal.Signals] = SHUTDOWN_SIGNALS,
) -> Callable[[], None]:
    """Call ``callback(sig)`` on the running loop whenever one of ``signals`` arrives.

    Must be called from the main thread, inside the running loop. Returns a function that
    removes the handlers again (restoring the default behaviour).
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        try:
            callback(sig)
        except Exception:
            log.exception("the handler for %s failed", sig.name)

    try:
        for sig in signals:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    except BaseException:
        for sig in installed:
            loop.remove_signal_handler(sig)
        raise

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)
        installed.clear()

    return remove
