"""The conversation's clock, per-turn timings, and the JSON-lines trace of `--trace FILE`.

Every event carries ``t``: seconds since the first input sample was fed. The trace holds the
user's words (``transcript``) and the companion's (``reply``) because the user asked for the
file; logs never do at the default level. So the file is private (0600), and a symbolic link
at its path is refused rather than followed (it could make us truncate another file).

The tracer keeps no event in memory: the daemon runs for months, and what was said stays only
where the user asked for it (the file). It keeps the timings of the last ``TURNS_KEPT``
turns, numbers only, for `status`. Whoever reads the events back (a benchmark, a test)
passes in a ``TraceRecorder``, for a run of bounded length.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from voice_companion.errors import UsageError
from voice_companion.private import open_private

TURNS_KEPT = 20
"""Turns whose timings the tracer keeps for `status`."""

Record = dict[str, Any]
"""One event: its name (``event``), when (``t``), and its fields."""


def open_trace(path: Path) -> IO[str]:
    """``path`` emptied and opened to write the trace, 0600, or a one-line ``UsageError``."""
    try:
        return os.fdopen(open_private(path), "w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--trace {path}: {_why(path, exc)}") from None


def check_trace_path(path: Path) -> None:
    """Fail now, before the models load, if the trace cannot be written at ``path``."""
    open_trace(path).close()


def _why(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return f"the folder {path.parent} does not exist"
    if exc.errno == errno.EISDIR:
        return "that is a folder; give a file name"
    if exc.errno == errno.ENOTDIR:
        return f"{path.parent} is not a folder"
    return str(exc) if exc.errno == errno.ELOOP else (exc.strerror or str(exc))


@dataclass(frozen=True)
class TurnTimings:
    """Per-stage durations of one turn, seconds (None where the stage did not run)."""

    endpoint_wait_s: float | None = None
    stt_s: float | None = None
    llm_first_token_s: float | None = None
    first_sentence_s: float | None = None
    tts_first_s: float | None = None
    response_latency_s: float | None = None
    turn_s: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {k: (None if v is None else round(v, 4)) for k, v in asdict(self).items()}


class TraceRecorder:
    """Keeps every event of a tracer it is given to, for a benchmark or a test that reads
    them back. Not for the daemon: it grows with the run."""

    def __init__(self) -> None:
        self.events: list[Record] = []

    def record(self, record: Record) -> None:
        self.events.append(record)

    def forget_words(self) -> None:
        """Drop the words (``text``) from the events kept; their timings stay."""
        for record in self.events:
            record.pop("text", None)


class Tracer:
    """The conversation's clock; hands each event to ``recorder`` and, given a path, writes
    it as a line to that file. Keeps only ``recent_turns``: the last ``turns_kept`` turns'
    timings (``events`` reads the recorder's)."""

    def __init__(
        self,
        path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        recorder: TraceRecorder | None = None,
        turns_kept: int = TURNS_KEPT,
    ) -> None:
        self._clock = clock
        self._origin: float | None = None
        self._file: IO[str] | None = open_trace(path) if path else None
        self._recorder = recorder
        self.recent_turns: deque[TurnTimings] = deque(maxlen=turns_kept)

    @property
    def events(self) -> list[Record]:
        """The events kept by the recorder this tracer was given (a benchmark's, a test's)."""
        if self._recorder is None:
            raise AttributeError("this tracer keeps no events: give it a TraceRecorder")
        return self._recorder.events

    def start(self) -> None:
        """Mark the moment the first input sample is fed (t = 0)."""
        if self._origin is None:
            self._origin = self._clock()
            # The origin on the system's monotonic clock lets another process line its own
            # readings up with this trace (the tests do, to time barge-in).
            self.emit("start", clock_s=round(self._origin, 4))

    def now(self) -> float:
        """Seconds since ``start``."""
        if self._origin is None:
            self.start()
        assert self._origin is not None
        return self._clock() - self._origin

    def at(self, clock_s: float) -> float:
        """A reading of the clock as seconds since ``start``."""
        if self._origin is None:
            self.start()
        assert self._origin is not None
        return clock_s - self._origin

    def emit(self, event: str, t: float | None = None, **fields: Any) -> Record:
        record: Record = {"event": event, "t": round(self.now() if t is None else t, 4)}
        record.update(fields)
        if self._recorder is not None:
            self._recorder.record(record)
        if self._file is not None:
            # Flushed line by line: nothing waits in memory, and a reader sees it at once.
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
        return record

    def turn_ended(self, timings: TurnTimings, **fields: Any) -> Record:
        """A turn is over: keep its timings among the recent ones and emit ``turn_end``."""
        self.recent_turns.append(timings)
        return self.emit("turn_end", **fields, **timings.as_dict())

    def forget_words(self) -> None:
        """Something was forgotten: no word stays in memory (the tracer keeps none; a
        recorder drops its own). A ``--trace`` file is the user's own."""
        if self._recorder is not None:
            self._recorder.forget_words()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
