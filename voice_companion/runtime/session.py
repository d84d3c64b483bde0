"""The conversation: one queue of events and commands, one ``match``, one turn at a time.

Speech events arrive from the listening side (speech started, utterance ended, input ended),
commands from the control socket and the keyboard (push-to-talk, mute, stop, say, persona,
quit, status): all go through one queue and are decided here, in order. Each utterance
becomes one ``Turn`` (``runtime.turn``). Interruption lives here and nowhere else: a
push-to-talk press, ``stop``, or (when enabled) speech during a turn cancels the turn task,
flushes the sink, and the history keeps only what the user heard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sinks import AudioSink
from voice_companion.config import Config, ListeningMode
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.engines import Synthesizer
from voice_companion.errors import CompanionError, ControlError
from voice_companion.events import (
    Command,
    Event,
    InputEnded,
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
    UtteranceDiscarded,
    UtteranceEnded,
)
from voice_companion.persona.values import Persona
from voice_companion.runtime.turn import Conversation, Engines, Pace, Turn
from voice_companion.stages.listen import Listener
from voice_companion.trace import Tracer, TurnTimings

__all__ = ["Engines", "PersonaLoader", "Session", "State"]

log = logging.getLogger(__name__)

PersonaLoader = Callable[[str], tuple[Persona, Synthesizer]]
"""Reads a persona by name and loads its voice (blocking; run in a thread)."""


class State(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


@dataclass(frozen=True)
class _Switch:
    """A persona read and its voice loaded (off the queue), ready to take over."""

    persona: Persona
    synthesizer: Synthesizer


class _SourceEnded:
    """The events given to ``run`` ended (without ``InputEnded``)."""


_SOURCE_ENDED = _SourceEnded()

_Item = Event | Command | _Switch | _SourceEnded


class Session:
    """Turn-taking for one conversation.

    A turn starts as soon as the listener closes the utterance, which (``vad.speculate_ms``)
    can be well before the end-of-speech silence is over: speech-to-text, the model and the
    voice get going, but nothing is played until the silence has lasted as long as the
    transcript calls for (``runtime.turn_taking``). The turn stays speculative until then:
    if the user resumes within ``dialogue.resume_ms`` before any of the reply was played, the
    turn is abandoned, nothing of it is kept, and both utterances are answered together.
    """

    def __init__(
        self,
        config: Config,
        engines: Engines,
        dialogue: Dialogue,
        sink: AudioSink,
        tracer: Tracer,
        barge_in: bool = False,
        listener: Listener | None = None,
        pace: Pace = Pace.STREAMING,
        load_persona: PersonaLoader | None = None,
    ) -> None:
        self._conversation = Conversation(config, dialogue, tracer, engines)
        self._config = config
        self._dialogue = dialogue
        self._sink = sink
        self._tracer = tracer
        self._barge_in = barge_in
        self._pace = pace
        self.listener = listener
        self._load_persona = load_persona
        self._unmuted_mode = (
            listener.mode
            if listener is not None and listener.mode is not ListeningMode.MUTED
            else ListeningMode.HANDS_FREE
        )
        self._inbox: asyncio.Queue[tuple[_Item, asyncio.Future[dict[str, Any]] | None]] = (
            asyncio.Queue()
        )
        self._waiting: deque[UtteranceEnded | Say] = deque()
        self._wake = asyncio.Event()
        self._user_speaking = False
        self._input_over = False
        self._quit = False
        self._turn: Turn | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self.state = State.IDLE
        self.last_timings = TurnTimings()
        self.turns_done = 0
        self._disclosure: str | None = None
        self._greetings = 0
        self.status_extra: Callable[[], dict[str, Any]] = dict
        """More fields for ``status`` (the daemon's: microphone, uptime, devices)."""
        self._loading: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Close what the conversation holds open (its memory thread, then the long-term
        memory). Blocking."""
        self._conversation.close()

    def forgotten_elsewhere(self) -> bool:
        """Drop what was forgotten elsewhere now (blocking; outside a run). In a run, the
        ``forgotten`` command does it, and every turn does before it starts."""
        return self._conversation.forgotten_elsewhere_now()

    @property
    def recent_timings(self) -> list[TurnTimings]:
        """The last turns' timings, oldest first (``trace.TURNS_KEPT`` of them at most)."""
        return list(self._tracer.recent_turns)

    @property
    def persona(self) -> Persona:
        return self._dialogue.persona

    def memory_saving(self) -> dict[str, Any] | None:
        """Whether what is said is being saved in memory.db; None without long-term memory."""
        from voice_companion.memory.store import ReportsSaving

        memory = self._dialogue.memory
        return memory.saving.as_dict() if isinstance(memory, ReportsSaving) else None

    # -- the queue --------------------------------------------------------------------------

    def post(self, item: Event | Command) -> None:
        """Queue an event or a command whose reply nobody waits for (microphone, keyboard)."""
        self._inbox.put_nowait((item, None))

    async def command(self, command: Command) -> dict[str, Any]:
        """Queue ``command`` and wait for its reply's fields (errors are raised)."""
        if self._quit:
            raise ControlError("the companion is shutting down")
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((command, reply))
        return await reply

    async def run(self, events: AsyncIterator[Event] | None = None) -> None:
        """Handle what is queued (and ``events``, fed into the queue) until the input ends,
        then finish the turns still waiting; or until ``quit``, which stops at once."""
        feeder = asyncio.create_task(self._feed(events), name="session-feed") if events else None
        worker = asyncio.create_task(self._turn_worker(), name="turn-worker")
        try:
            while not self._quit:
                item, reply = await self._inbox.get()
                try:
                    if isinstance(item, SwitchPersona):
                        self._load(item.name, reply)
                        continue  # replied once loaded and switched
                    result = await self.handle(item)
                except Exception as exc:
                    # One failed command gets an error reply (and a log line); the
                    # conversation goes on.
                    if not isinstance(exc, CompanionError):
                        log.exception("handling %s failed", type(item).__name__)
                    elif reply is None:
                        log.warning("%s", exc)
                    if reply is not None and not reply.done():
                        reply.set_exception(exc)
                    continue
                if reply is not None and not reply.done():
                    reply.set_result(result)
                if isinstance(item, InputEnded) or item is _SOURCE_ENDED:
                    self._input_over = True
                    self._wake.set()
                    await worker
                    return
            await self.interrupt()
        finally:
            self._quit = True  # nothing more is handled: commands are refused from now on
            for task in (feeder, worker):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            # Quit was accepted: what came after it is not carried out, nor promised.
            while not self._inbox.empty():
                _item, waiting = self._inbox.get_nowait()
                if waiting is not None and not waiting.done():
                    waiting.set_exception(ControlError("the companion is shutting down"))
            # What the turns left to record lands before the run is over.
            await asyncio.to_thread(self._conversation.release)

    async def _feed(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            self.post(event)
            if isinstance(event, InputEnded):
                return
        self._inbox.put_nowait((_SOURCE_ENDED, None))  # ended without saying so

    async def handle(self, item: _Item) -> dict[str, Any]:
        """Decide on one event or command; a command's reply fields."""
        match item:
            case SpeechStarted(start_s=start_s):
                self._tracer.emit("speech_start", audio_s=round(start_s, 3))
                self._user_speaking = True
                if self._resumes_unheard_turn(item):
                    await self._abandon_turn()
                elif self._barge_in and self.state in (State.THINKING, State.SPEAKING):
                    await self.interrupt()
                if self.state is State.IDLE:
                    self.state = State.LISTENING
            case UtteranceEnded():
                detected_t = self._tracer.now()
                end_t = self._speech_end_t(item)
                self._tracer.emit(
                    "speech_end",
                    t=end_t,
                    audio_s=round(item.speech_end_s, 3),
                    utterance_s=round(item.audio.duration_s, 3),
                    endpoint_wait_s=round(detected_t - end_t, 4),
                )
                last = self._waiting[-1] if self._waiting else None
                if isinstance(last, UtteranceEnded) and self._conversation.turn_taking.joins(
                    last, item
                ):
                    self._waiting[-1] = _joined(last, item)
                else:
                    self._waiting.append(item)
                self._user_speaking = False
                self._wake.set()
            case UtteranceDiscarded(voiced_s=voiced_s):
                self._tracer.emit("speech_discarded", voiced_s=round(voiced_s, 3))
                self._heard_nothing()
            case InputEnded(at_s=at_s):
                self._tracer.emit("input_end", audio_s=round(at_s, 3))
                self._heard_nothing()
            case PttPress():
                await self._pressed(self._listening().press())
            case PttRelease():
                await self._handle_all(self._listening().release())
            case PttToggle():
                await self._pressed(self._listening().toggle())
            case Mute():
                listener = self._listening()
                if listener.mode is not ListeningMode.MUTED:
                    self._unmuted_mode = listener.mode
                await self._handle_all(listener.set_mode(ListeningMode.MUTED))
            case Unmute():
                await self._handle_all(self._listening().set_mode(self._unmuted_mode))
            case Say(text=text):
                self.say(text)
            case StopSpeaking():
                await self.interrupt()
            case Quit():
                self._quit = True
            case ReportStatus():
                return self.status()
            case MemoryForgotten():
                return {"dropped": await self._conversation.forgotten_elsewhere()}
            case SwitchPersona(name=name):
                self._load(name, None)
            case _Switch(persona=persona, synthesizer=synthesizer):
                await self.switch_persona(persona, synthesizer)
                log.info("now speaking as %s", persona.name)
                return {"persona": persona.name}
        if self.listener is None:
            return {}
        return {"mode": self.listener.mode.value, "pressed": self.listener.pressed}

    def _heard_nothing(self) -> None:
        self._user_speaking = False
        self._wake.set()
        if self.state is State.LISTENING:
            self.state = State.IDLE

    def _listening(self) -> Listener:
        if self.listener is None:
            raise ControlError("this companion is not listening to a microphone")
        return self.listener

    async def _pressed(self, events: list[Event]) -> None:
        # A press always interrupts, whatever the barge-in setting: the user asked to talk.
        if any(isinstance(e, SpeechStarted) for e in events):
            await self.interrupt()
        await self._handle_all(events)

    async def _handle_all(self, events: list[Event]) -> None:
        for event in events:
            await self.handle(event)

    def _load(self, name: str, reply: asyncio.Future[dict[str, Any]] | None) -> None:
        """Read the persona and load its voice in a thread (seconds): the queue goes on
        meanwhile; the switch itself comes back through the queue."""
        if self._load_persona is None:
            raise ControlError("this companion cannot switch personas")
        load = self._load_persona

        async def loaded() -> None:
            try:
                persona, synthesizer = await asyncio.to_thread(load, name)
            except CompanionError as exc:
                if reply is not None and not reply.done():
                    reply.set_exception(ControlError(str(exc)))
                else:
                    log.warning("%s", exc)
                return
            self._inbox.put_nowait((_Switch(persona, synthesizer), reply))

        task = asyncio.create_task(loaded(), name="persona-load")
        self._loading.add(task)
        task.add_done_callback(self._loading.discard)

    def status(self) -> dict[str, Any]:
        listener = self.listener
        return {
            "state": self.state.value,
            **(
                {
                    "mode": listener.mode.value,
                    "pressed": listener.pressed,
                    "frames_heard": listener.frames_heard,
                }
                if listener is not None
                else {}
            ),
            "persona": self.persona.name,
            "turns": self.turns_done,
            "last_turn": self.last_timings.as_dict() if self.turns_done else None,
            "recent_turns": [t.as_dict() for t in self.recent_timings],
            "memory": self.memory_saving(),
            **self.status_extra(),
        }

    # -- turns ------------------------------------------------------------------------------

    def introduce(self) -> None:
        """Greet the user, unless it is their quiet hours, and say that the companion is an
        AI the first time this persona speaks with them: before the greeting, or before the
        first reply when there is no greeting (EU AI Act, art. 50)."""
        persona, care = self._dialogue.persona, self._dialogue.care
        if care is not None and care.needs_disclosure(persona.key):
            self._disclosure = persona.ai_disclosure
        if care is None or not care.quiet_now():
            self.say(persona.greeting_for(index=self._greetings))
            self._greetings += 1

    async def switch_persona(self, persona: Persona, synthesizer: Synthesizer) -> None:
        """Become ``persona``, with its voice: the current turn stops, the recent
        conversation starts afresh (long-term memory stays), and the new persona greets."""
        await self.interrupt()
        self._waiting = deque(w for w in self._waiting if isinstance(w, UtteranceEnded))
        conversation = self._conversation
        conversation.engines = dataclasses.replace(conversation.voice(), synthesizer=synthesizer)
        self._dialogue.persona = persona
        self._dialogue.history.clear()
        self._disclosure = None
        self._tracer.emit("persona", name=persona.name)
        self.introduce()

    def say(self, text: str) -> None:
        """Speak ``text`` as soon as the current turn is over (``say`` on the control socket)."""
        self._waiting.append(Say(text))
        self._wake.set()

    def _resumes_unheard_turn(self, started: SpeechStarted) -> bool:
        turn = self._turn
        if turn is None or turn.utterance is None:
            return False
        return self._conversation.turn_taking.resumes(
            started, turn.utterance, turn.progress.first_audio_t, self._tracer
        )

    async def _abandon_turn(self) -> None:
        """The user went on talking before hearing the reply (or as it began): answer it all
        together later."""
        task, turn = self._turn_task, self._turn
        if task is None or turn is None or turn.utterance is None or task.done():
            return
        turn.abandon()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if turn.progress.first_audio_t is not None:
            await self._sink.flush()  # it had just begun: stop it mid-word
        self._waiting.appendleft(turn.utterance)
        self._tracer.emit("turn_abandoned", reason="user resumed speaking")

    def _speech_end_t(self, utterance: UtteranceEnded) -> float:
        """When the user stopped speaking, on the trace's clock."""
        if utterance.speech_end_clock_s is not None:
            return self._tracer.at(utterance.speech_end_clock_s)
        # Not stamped (events built by hand): assume audio arrived in real time.
        return self._tracer.now() - (utterance.detected_s - utterance.speech_end_s)

    async def interrupt(self) -> None:
        """Stop the current turn now: cancel its task and drop queued audio."""
        task = self._turn_task
        if task is None or task.done():
            return
        task.cancel()
        await self._sink.flush()
        self._tracer.emit("interrupted")
        await asyncio.gather(task, return_exceptions=True)

    def _speaking(self) -> None:
        self.state = State.SPEAKING

    async def _turn_worker(self) -> None:
        while True:
            # A turn starts once the user has stopped speaking and something waits.
            while self._user_speaking or not self._waiting:
                if self._input_over and not self._waiting:
                    return
                self._wake.clear()
                await self._wake.wait()
            item = self._waiting.popleft()
            conversation = self._conversation
            end_t: float | None = None
            if isinstance(item, Say):
                turn = Turn(
                    conversation,
                    announcement=item.text,
                    disclosure=self._disclosure,
                    on_speaking=self._speaking,
                )
                self.state = State.SPEAKING
            else:
                end_t = self._speech_end_t(item)
                turn = Turn(
                    conversation,
                    utterance=item,
                    disclosure=self._disclosure,
                    pace=self._pace,
                    on_speaking=self._speaking,
                )
                self.state = State.THINKING
            self._turn = turn
            self._turn_task = asyncio.create_task(turn.spoken(self._sink, end_t), name="turn")
            try:
                await self._turn_task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are shutting down, not just interrupted
            except Exception:
                # A failed turn is logged; the companion goes back to listening.
                log.exception("a turn failed")
            finally:
                self._turn_task = None
                self._turn = None
                self.state = State.LISTENING if self._user_speaking else State.IDLE
                self._turn_over(turn)

    def _turn_over(self, turn: Turn) -> None:
        if turn.disclosure_heard:
            self._disclosure = None
        if turn.utterance is None or turn.abandoned:
            return
        self.last_timings = turn.timings
        self.turns_done += 1
        if turn.reminder:
            self.say(turn.reminder)


def _joined(first: UtteranceEnded, second: UtteranceEnded) -> UtteranceEnded:
    """Two utterances the user meant as one (they resumed within the resume window)."""
    return UtteranceEnded(
        audio=AudioChunk.concat([first.audio, second.audio], first.audio.rate_hz),
        start_s=first.start_s,
        speech_end_s=second.speech_end_s,
        detected_s=second.detected_s,
        speech_end_clock_s=second.speech_end_clock_s,
    )
