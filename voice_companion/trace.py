"""Per-turn timing and the JSON-lines trace of `run --trace FILE`.

Every event carries ``t``: seconds since the first input sample was fed. The trace holds the
user's words (``transcript``) and the companion's (``reply``) because the user asked for the
file; logs never do at the default level.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


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


class Tracer:
    """Collects events in memory and, when given a file, appends them as JSON lines."""

    def __init__(
        self, path: Path | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._origin: float | None = None
        self._file: IO[str] | None = path.open("w", encoding="utf-8") if path else None
        self.events: list[dict[str, Any]] = []

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

    def emit(self, event: str, t: float | None = None, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"event": event, "t": round(self.now() if t is None else t, 4)}
        record.update(fields)
        self.events.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
        return record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
