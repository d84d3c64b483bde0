"""The live companion: a supervisor of the tasks that feed the session's queue.

Microphone (through the listener), keyboard (push-to-talk) and the control socket feed
events and commands into the session; the watchdog pings systemd while the loop turns and
the session runs. The
daemon decides nothing about the conversation: it starts the tasks, and on ``quit``, SIGTERM
or SIGINT (or when a task fails) cancels every one of them and waits for them to end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from voice_companion.audio.microphone import Microphone
from voice_companion.audio.sinks import AudioSink
from voice_companion.config import Config
from voice_companion.control.server import ControlServer
from voice_companion.errors import ControlError
from voice_companion.events import Command, PttPress, PttRelease, PttToggle
from voice_companion.runtime.session import Session
from voice_companion.service.notify import Notifier
from voice_companion.service.signals import install_signal_handlers
from voice_companion.stages.listen import Listener

log = logging.getLogger(__name__)

MIC_STATUS_INTERVAL_S = 1.0
"""How often the microphone's state is compared with the last one sent to systemd."""


class Daemon:
    def __init__(
        self,
        config: Config,
        session: Session,
        microphone: Microphone,
        sink: AudioSink,
        control_path: Path,
        notifier: Notifier,
        description: dict[str, Any],
    ) -> None:
        if session.listener is None:
            raise ValueError("the daemon's session needs a listener")
        self._config = config
        self.session = session
        self.listener: Listener = session.listener
        self._microphone = microphone
        self._sink = sink
        self._control_path = control_path
        self._notifier = notifier
        self._description = description
        self._stop = asyncio.Event()
        self._started = time.monotonic()
        session.status_extra = self._status_extra

    async def run(self) -> None:
        """Serve until asked to stop; then stop every task, wait for them, and return."""
        remove_handlers = install_signal_handlers(lambda _sig: self._stop.set())
        tasks: list[asyncio.Task[None]] = []
        helpers: list[asyncio.Task[None]] = []
        try:
            async with ControlServer(self._control_path, self.handle):
                tasks, helpers = self._start()
                self._notifier.ready("listening")
                log.info("ready; control socket at %s", self._control_path)
                self.session.introduce()
                stop = asyncio.create_task(self._stop.wait(), name="stop")
                done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
                self._stop.set()  # quit (the session ended), a signal, or a task failed
                for task in done:
                    if task is not stop and not task.cancelled() and task.exception() is not None:
                        log.error("the %s task failed: %s", task.get_name(), task.exception())
                stop.cancel()
                self._notifier.stopping("shutting down")
        finally:
            for task in [*tasks, *helpers]:
                task.cancel()
            await asyncio.gather(*tasks, *helpers, return_exceptions=True)
            await self._sink.close()
            await asyncio.to_thread(self.session.close)
            remove_handlers()
            self._notifier.close()

    def _start(self) -> tuple[list[asyncio.Task[None]], list[asyncio.Task[None]]]:
        """The supervised tasks: the session (it ends on ``quit``), hearing and, with a
        push-to-talk key, the keyboard; and the helpers, which may end at once (no systemd)
        and are not waited on: the watchdog and the microphone's status line."""
        session = asyncio.create_task(self.session.run(), name="session")
        tasks = [session, asyncio.create_task(self._hear(), name="hear")]
        if self._config.push_to_talk.key:
            tasks.append(asyncio.create_task(self._keyboard(), name="ptt-keyboard"))
        # Alive while this loop turns and the session runs, whatever the microphone does:
        # an unplugged one is waited for (and shown in STATUS=), not restarted.
        helpers = [
            asyncio.create_task(
                self._notifier.run_watchdog(alive=lambda: not session.done()), name="watchdog"
            ),
            asyncio.create_task(self._report_microphone(), name="mic-status"),
        ]
        return tasks, helpers

    async def handle(self, command: Command) -> dict[str, Any]:
        """One control command, carried out by the session; the reply's fields."""
        if self._stop.is_set():
            # Quit was accepted: nothing more is carried out, so nothing more is promised.
            raise ControlError("the companion is shutting down")
        return await self.session.command(command)

    async def _hear(self) -> None:
        async for frame in self._microphone.frames():
            for event in self.listener.push(frame):
                self.session.post(event)

    async def _keyboard(self) -> None:
        from voice_companion.control.keyboard import KeyboardTrigger, key_code

        ptt = self._config.push_to_talk
        toggle = ptt.action == "toggle"
        post = self.session.post
        trigger = KeyboardTrigger(
            key_code(ptt.key),
            ptt.keyboard,
            on_press=lambda: post(PttToggle() if toggle else PttPress()),
            on_release=lambda: None if toggle else post(PttRelease()),
        )
        await trigger.run()

    async def _report_microphone(self) -> None:
        """Show the microphone's state in ``systemctl --user status`` as it changes."""
        if not self._notifier.enabled:
            return
        shown = ""
        while True:
            state = self._microphone.status
            if state != shown:
                self._notifier.status(state)
                shown = state
            await asyncio.sleep(MIC_STATUS_INTERVAL_S)

    def _status_extra(self) -> dict[str, Any]:
        return {
            "microphone": self._microphone.status,
            "uptime_s": round(time.monotonic() - self._started, 1),
            **self._description,
        }

    def status(self) -> dict[str, Any]:
        return self.session.status()
