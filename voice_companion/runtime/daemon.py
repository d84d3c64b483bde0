"""The live companion: a supervisor of the tasks that feed the session's queue.

Microphone (through the listener), keyboard (push-to-talk) and the control socket feed
events and commands into the session; the watchdog pings systemd while audio flows. The
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
from voice_companion.events import Command, PttPress, PttRelease, PttToggle
from voice_companion.runtime.session import Session
from voice_companion.service.notify import Notifier
from voice_companion.service.signals import install_signal_handlers
from voice_companion.stages.listen import Listener

log = logging.getLogger(__name__)


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
        try:
            async with ControlServer(self._control_path, self.handle):
                tasks = self._start()
                self._notifier.ready("listening")
                log.info("ready; control socket at %s", self._control_path)
                self.session.introduce()
                stop = asyncio.create_task(self._stop.wait(), name="stop")
                done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not stop and not task.cancelled() and task.exception() is not None:
                        log.error("the %s task failed: %s", task.get_name(), task.exception())
                stop.cancel()
                self._notifier.stopping("shutting down")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._sink.close()
            await asyncio.to_thread(self.session.close)
            remove_handlers()
            self._notifier.close()

    def _start(self) -> list[asyncio.Task[None]]:
        """The supervised tasks: the session (ends on ``quit``), hearing, the watchdog and,
        with a push-to-talk key, the keyboard."""
        tasks = [
            asyncio.create_task(self.session.run(), name="session"),
            asyncio.create_task(self._hear(), name="hear"),
        ]
        if self._notifier.watchdog_interval_s is not None:
            tasks.append(asyncio.create_task(self._watchdog(), name="watchdog"))
        if self._config.push_to_talk.key:
            tasks.append(asyncio.create_task(self._keyboard(), name="ptt-keyboard"))
        return tasks

    async def handle(self, command: Command) -> dict[str, Any]:
        """One control command, carried out by the session; the reply's fields."""
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

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog only while audio flows: a daemon that hears nothing for
        long is restarted."""
        interval_s = self._notifier.watchdog_interval_s
        assert interval_s is not None
        while True:
            if time.monotonic() - self._microphone.last_frame_clock_s < interval_s:
                self._notifier.watchdog()
            await asyncio.sleep(interval_s / 2)

    def _status_extra(self) -> dict[str, Any]:
        return {
            "microphone": self._microphone.status,
            "uptime_s": round(time.monotonic() - self._started, 1),
            **self._description,
        }

    def status(self) -> dict[str, Any]:
        return self.session.status()
