"""The live companion: microphone → listener → session → speaker, steered by the control socket.

Owns the long-lived tasks (hearing, turn-taking, watchdog) and shuts them down in order on
`quit`, SIGTERM or SIGINT. Push-to-talk, mute and `say` arrive as commands; the session
still owns interruption.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from voice_companion.audio.microphone import Microphone
from voice_companion.audio.sinks import AudioSink
from voice_companion.config import Config, ListeningMode
from voice_companion.control.server import ControlServer
from voice_companion.dialogue.persona import Persona
from voice_companion.engines import Synthesizer
from voice_companion.errors import CompanionError, ControlError
from voice_companion.events import (
    Command,
    Event,
    MemoryForgotten,
    Mute,
    PttPress,
    PttRelease,
    PttToggle,
    Quit,
    ReportStatus,
    Say,
    SpeechStarted,
    StopSpeaking,
    SwitchPersona,
    Unmute,
)
from voice_companion.service.notify import Notifier
from voice_companion.service.signals import install_signal_handlers
from voice_companion.session import Session
from voice_companion.stages.listen import Listener

log = logging.getLogger(__name__)

MIC_STATUS_INTERVAL_S = 1.0
"""How often the microphone's state is compared with the last one sent to systemd."""

PersonaLoader = Callable[[str], tuple[Persona, Synthesizer]]
"""Reads a persona by name and loads its voice (blocking; run in a thread)."""


class Daemon:
    def __init__(
        self,
        config: Config,
        session: Session,
        listener: Listener,
        microphone: Microphone,
        sink: AudioSink,
        control_path: Path,
        notifier: Notifier,
        description: dict[str, Any],
        load_persona: PersonaLoader | None = None,
    ) -> None:
        self._config = config
        self.session = session
        self.listener = listener
        self._microphone = microphone
        self._sink = sink
        self._control_path = control_path
        self._notifier = notifier
        self._description = description
        self._load_persona = load_persona
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._started = time.monotonic()
        self._unmuted_mode = (
            listener.mode if listener.mode is not ListeningMode.MUTED else ListeningMode.HANDS_FREE
        )

    async def run(self) -> None:
        """Serve until asked to stop; then stop every task and return."""
        remove_handlers = install_signal_handlers(lambda _sig: self._stop.set())
        tasks: list[asyncio.Task[None]] = []
        helpers: list[asyncio.Task[None]] = []
        try:
            async with ControlServer(self._control_path, self.handle):
                session = asyncio.create_task(self.session.run(self._queued()), name="session")
                tasks = [session, asyncio.create_task(self._hear(), name="hear")]
                # Alive while this loop turns and the session runs, whatever the microphone
                # does: an unplugged one is waited for (and shown in STATUS=), not restarted.
                helpers = [  # they may end at once (no systemd): not waited on
                    asyncio.create_task(
                        self._notifier.run_watchdog(alive=lambda: not session.done()),
                        name="watchdog",
                    ),
                    asyncio.create_task(self._report_microphone(), name="mic-status"),
                ]
                if self._config.push_to_talk.key:
                    tasks.append(asyncio.create_task(self._keyboard(), name="ptt-keyboard"))
                self._notifier.ready("listening")
                log.info("ready; control socket at %s", self._control_path)
                self.session.introduce()
                stop = asyncio.create_task(self._stop.wait(), name="stop")
                done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not stop and task.exception() is not None:
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

    async def _queued(self) -> AsyncIterator[Event]:
        while True:
            yield await self._events.get()

    async def _hear(self) -> None:
        async for frame in self._microphone.frames():
            for event in self.listener.push(frame):
                self._events.put_nowait(event)

    async def _keyboard(self) -> None:
        from voice_companion.control.keyboard import KeyboardTrigger, key_code

        ptt = self._config.push_to_talk
        commands: set[asyncio.Task[dict[str, Any]]] = set()

        def run(command: Command) -> None:
            task = asyncio.create_task(self.handle(command), name="ptt-key-command")
            commands.add(task)
            task.add_done_callback(commands.discard)

        toggle = ptt.action == "toggle"
        trigger = KeyboardTrigger(
            key_code(ptt.key),
            ptt.keyboard,
            on_press=lambda: run(PttToggle() if toggle else PttPress()),
            on_release=lambda: None if toggle else run(PttRelease()),
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

    async def handle(self, command: Command) -> dict[str, Any]:
        """Carry out one control command; the reply's fields (errors are raised)."""
        if self._stop.is_set():
            # Quit was accepted: nothing more is carried out, so nothing more is promised.
            raise ControlError("the companion is shutting down")
        listener = self.listener
        match command:
            case PttPress():
                await self._press(listener.press())
            case PttRelease():
                self._post(listener.release())
            case PttToggle():
                if listener.pressed:
                    self._post(listener.release())
                else:
                    await self._press(listener.press())
            case Mute():
                if listener.mode is not ListeningMode.MUTED:
                    self._unmuted_mode = listener.mode
                self._post(listener.set_mode(ListeningMode.MUTED))
            case Unmute():
                self._post(listener.set_mode(self._unmuted_mode))
            case Say(text=text):
                self.session.say(text)
            case StopSpeaking():
                await self.session.interrupt()
            case Quit():
                self._stop.set()
            case ReportStatus():
                return self.status()
            case MemoryForgotten():
                return {"dropped": self.session.forgotten_elsewhere()}
            case SwitchPersona(name=name):
                if self._load_persona is None:
                    raise ControlError("this companion cannot switch personas")
                try:
                    persona, synthesizer = await asyncio.to_thread(self._load_persona, name)
                except CompanionError as exc:
                    raise ControlError(str(exc)) from None
                await self.session.switch_persona(persona, synthesizer)
                log.info("now speaking as %s", persona.name)
                return {"persona": persona.name}
        return {"mode": listener.mode.value, "pressed": listener.pressed}

    async def _press(self, events: list[Event]) -> None:
        # A press always interrupts, whatever the barge-in setting: the user asked to talk.
        if any(isinstance(e, SpeechStarted) for e in events):
            await self.session.interrupt()
        self._post(events)

    def _post(self, events: list[Event]) -> None:
        for event in events:
            self._events.put_nowait(event)

    def status(self) -> dict[str, Any]:
        timings = self.session.last_timings.as_dict()
        return {
            "state": self.session.state.value,
            "mode": self.listener.mode.value,
            "pressed": self.listener.pressed,
            "frames_heard": self.listener.frames_heard,
            "microphone": self._microphone.status,
            "uptime_s": round(time.monotonic() - self._started, 1),
            "persona": self.session.persona.name,
            "turns": self.session.turns_done,
            "last_turn": timings if self.session.turns_done else None,
            "recent_turns": [t.as_dict() for t in self.session.recent_timings],
            "memory": self.session.memory_saving(),
            **self._description,
        }
