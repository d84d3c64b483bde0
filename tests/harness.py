"""The session harness: one function that builds a ``Session`` from parts and runs events
through it, for every test that drives a conversation.

It is the one place that knows how a session is built and run (the constructor, ``run``, the
end of input); when the session's API changes, adapt ``converse`` and ``Conversation`` here
and the tests stay as they are. A test either hands over the events to send all at once
(``events=``), or a script that sends them one at a time and waits in between
(``script=``): ``await talk.send(...)``, ``await talk.until(...)``. Every wait has a deadline:
the whole conversation is bounded by ``timeout_s``.

Below it, the same for a companion in its own process: ``chat_process`` (a real
``voice-companion chat --json`` answered by the crash benchmark's scripted model server),
``say`` and ``Lines`` to talk to it, ``HeldLock`` (memory.db locked by a real second process)
and ``stored_turns`` to read what landed.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.conftest import queued
from voice_companion import app
from voice_companion.audio.sinks import AudioSink, MemorySink
from voice_companion.bench.crash import scripted_llm
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


# -- a companion in its own process ----------------------------------------------------------

WAIT_S = 30.0
"""Upper bound on any one wait for another process (never a measurement)."""


class Lines:
    """Reads a subprocess's stdout line by line, never waiting past a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(proc.stdout, selectors.EVENT_READ)

    def next(self, what: str) -> str:
        if not self._selector.select(WAIT_S):
            raise AssertionError(f"no {what} within {WAIT_S:g} s")
        return self._stream.readline().strip()


def _end(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, reap it and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(WAIT_S)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def chat_process(
    folder: Path, data: Path, memory: str = ""
) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    """``voice-companion --data-dir DATA chat --json`` answered by the scripted model (its
    reply names the turn, e.g. "(run 1 turn 2)"), word search only; ``memory`` adds lines to
    the ``[memory]`` table. The configuration goes in ``folder``; killed at the end."""
    with scripted_llm() as url:
        config = folder / "companion.toml"
        config.write_text(
            f'[llm]\nbackend = "openai"\nbase_url = "{url}"\nmodel = "scripted"\n'
            f"[memory]\ndense = false\n{memory}",
            encoding="utf-8",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "voice_companion", "--config", str(config),
             "--data-dir", str(data), "chat", "--json"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            yield proc, Lines(proc)
        finally:
            _end(proc)


def say(proc: subprocess.Popen[str], lines: Lines, text: str) -> str:
    """Type one line into a ``chat --json`` process; its reply."""
    assert proc.stdin is not None
    proc.stdin.write(text + "\n")
    proc.stdin.flush()
    answer = json.loads(lines.next(f"reply to {text!r}"))
    assert answer["you"] == text
    return str(answer["reply"])


def stored_turns(db: Path) -> list[tuple[str, str]]:
    """(speaker, text) of every turn in memory.db, in order, read without writing to it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT speaker, text FROM turns ORDER BY id")]
    finally:
        conn.close()


_LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO conversations(id, started_at) VALUES ('locker', '2026-01-01')")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    print("released", flush=True)
    """
)


class HeldLock:
    """memory.db locked (``BEGIN EXCLUSIVE``, a write pending) by a real second process from
    construction until ``release()``; as a context manager, released or killed at the end."""

    def __init__(self, db: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._lines = Lines(self.process)
        self._released = False
        try:
            assert self._lines.next("the lock") == "locked"
        except BaseException:
            self.close()
            raise

    @property
    def held(self) -> bool:
        return not self._released and self.process.poll() is None

    def release(self) -> None:
        """Commit and wait until the other process says so (from any one thread, once)."""
        if self._released:
            return
        self._released = True
        assert self.process.stdin is not None
        self.process.stdin.write("release\n")
        self.process.stdin.flush()
        assert self._lines.next("the release") == "released"

    def close(self) -> None:
        _end(self.process)

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
