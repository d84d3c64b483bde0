"""The session harness: one function that builds a ``Session`` from parts and runs events
through it, for every test that drives a conversation.

It is the one place that knows how a session is built and run (the constructor, ``run``, the
end of input); when the session's API changes, adapt ``converse`` and ``Conversation`` here
and the tests stay as they are. A test either hands over the events to send all at once
(``events=``), or a script that sends them one at a time and waits in between
(``script=``): ``await talk.send(...)``, ``await talk.until(...)``. Every wait has a deadline:
the whole conversation is bounded by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from tests.conftest import queued
from voice_companion import app
from voice_companion.audio.sinks import AudioSink, MemorySink
from voice_companion.config import Config
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.events import Event, InputEnded
from voice_companion.runtime.session import Engines, Session
from voice_companion.trace import Tracer, TraceRecorder

POLL_S = 0.02
"""How often ``until`` looks again (a test waits on what the session did, never on time)."""


@dataclass
class Conversation:
    """A session running on a queue that the test feeds; what it left behind is kept after."""

    session: Session
    config: Config
    dialogue: Dialogue
    sink: MemorySink
    tracer: Tracer
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    runner: asyncio.Task[None] | None = None

    async def send(self, *events: Event) -> None:
        for event in events:
            await self.queue.put(event)

    async def until(self, condition: Callable[[], object], poll_s: float = POLL_S) -> None:
        """Wait until ``condition()`` holds (``converse``'s timeout bounds the wait). If the
        session stops meanwhile, its own error is raised rather than a timeout."""
        while not condition():
            if self.runner is not None and self.runner.done():
                self.runner.result()
                raise AssertionError("the session ended before the condition held")
            await asyncio.sleep(poll_s)

    async def turns_ended(self, count: int) -> None:
        """Wait until ``count`` turns have ended."""
        await self.until(lambda: len(self.named("turn_end")) >= count)

    def named(self, name: str) -> list[dict[str, object]]:
        """The trace's events called ``name``, in order."""
        return [e for e in self.tracer.events if e["event"] == name]

    def replies(self) -> list[str]:
        return [str(e["text"]) for e in self.named("reply")]


def converse(
    config: Config,
    engines: Engines,
    *,
    events: Iterable[Event] = (),
    script: Callable[[Conversation], Awaitable[object]] | None = None,
    end_s: float,
    dialogue: Dialogue | None = None,
    sink: MemorySink | None = None,
    plays_into: Callable[[MemorySink], AudioSink] | None = None,
    tracer: Tracer | None = None,
    barge_in: bool = False,
    timeout_s: float = 120.0,
) -> Conversation:
    """Build a session from these parts, send ``events`` and then run ``script``, end the
    input at ``end_s`` (an ``InputEnded``) and wait for the session to finish what it was
    doing. Parts left out are the shipped ones: the dialogue ``config`` builds, a
    ``MemorySink`` (``plays_into`` wraps it, e.g. in a real ``PacedSink``), a fresh tracer."""
    dialogue = dialogue if dialogue is not None else app.build_dialogue(config)
    sink = sink if sink is not None else MemorySink()
    tracer = tracer if tracer is not None else Tracer(recorder=TraceRecorder())
    played = plays_into(sink) if plays_into is not None else sink
    session = Session(config, engines, dialogue, played, tracer, barge_in=barge_in)
    talk = Conversation(session, config, dialogue, sink, tracer)

    async def go() -> None:
        runner = talk.runner = asyncio.create_task(session.run(queued(talk.queue)), name="session")
        try:
            await talk.send(*events)
            if script is not None:
                await script(talk)
            await talk.send(InputEnded(end_s))
            await talk.queue.put(None)
            await runner
        finally:
            if not runner.done():
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(asyncio.wait_for(go(), timeout_s))
    return talk
