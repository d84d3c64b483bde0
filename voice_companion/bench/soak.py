"""`bench soak`: the real pipeline answering recorded conversations for minutes or hours.

Conversation after conversation, the recorded utterances (``tests/data/utterances``) are fed at
real-time pace through the same listener, session and engines as the latency benchmark (its
``Feeder`` and lanes), with the bundled models, one dialogue and one memory.db for the whole
run, as in the daemon. Meanwhile a sampler reads this process's resident memory (VmRSS in
/proc/self/status), open file descriptors (/proc/self/fd) and threads (``threading`` and
/proc/self/task).

Reported: resident memory growth in MB per hour, as the slope of a least-squares line through
the samples after the warm-up (the first conversation, or the first fifth of the run when that
is longer, but at most half of it: caches fill, allocators settle), not the difference of two
ends; file descriptors
and threads at the start and the end of that period, and the most seen; the median response
latency of the first quarter of the turns against the last quarter. Numbers only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voice_companion.allocator import in_use
from voice_companion.audio.chunk import AudioChunk
from voice_companion.config import Config
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.engines import FrameClassifier
from voice_companion.errors import SoakError
from voice_companion.runtime.session import Engines, Session
from voice_companion.runtime.warmup import warm_up
from voice_companion.trace import Tracer, TraceRecorder

SAMPLE_S = 1.0
"""Seconds between samples of memory, descriptors and threads."""
CONVERSATION_TURNS = 8
"""Utterances per conversation (the recorded set is cycled through)."""


@dataclass(frozen=True)
class Sample:
    t_s: float
    rss_mb: float
    fds: int
    threads: int
    tasks: int


def sample(t_s: float) -> Sample:
    """This process, now (Linux /proc)."""
    rss_kb = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
                break
        fds = len(os.listdir("/proc/self/fd"))
        tasks = len(os.listdir("/proc/self/task"))
    except OSError as exc:
        raise SoakError(f"cannot read /proc/self (the soak benchmark needs Linux): {exc}") from exc
    return Sample(round(t_s, 3), round(rss_kb / 1024, 2), fds, threading.active_count(), tasks)


class Sampler:
    """Samples every ``interval_s`` on a thread of its own (counted in the threads, always)."""

    def __init__(self, interval_s: float = SAMPLE_S) -> None:
        self.samples: list[Sample] = []
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._origin = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> None:
        self._origin = time.monotonic()
        self._thread.start()

    def now(self) -> float:
        return time.monotonic() - self._origin

    def take(self) -> Sample:
        taken = sample(self.now())
        self.samples.append(taken)
        return taken

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.take()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per hour; None for fewer than 3."""
    if len(points) < 3:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return slope * 3600


@dataclass
class SoakReport:
    minutes: float
    conversations: int
    turns: list[dict[str, Any]]
    samples: list[Sample]
    warm_up_s: float
    seconds: float
    machine: dict[str, Any] = field(default_factory=dict)
    fixed_warm_up_s: float | None = None
    """A warm-up asked for (``--warm-up``), instead of the default rule."""

    @property
    def fit_from_s(self) -> float:
        """Where the fitted period starts: the end of the first conversation, or the first
        fifth of the run when that is longer, but never past half of the run; or the warm-up
        asked for (at most nine tenths of the run)."""
        if self.fixed_warm_up_s is not None:
            return min(self.fixed_warm_up_s, self.seconds * 0.9)
        return min(max(self.warm_up_s, self.seconds / 5), self.seconds / 2)

    def _after_warm_up(self) -> list[Sample]:
        after = [s for s in self.samples if s.t_s >= self.fit_from_s]
        return after or self.samples[-1:]

    def as_dict(self) -> dict[str, Any]:
        after = self._after_warm_up()
        first, last = after[0], after[-1]
        latencies = [t.get("response_latency_s") for t in self.turns]
        quarter = max(1, len(latencies) // 4)

        def p50(values: Sequence[Any]) -> float | None:
            present = [float(v) for v in values if v is not None]
            return round(statistics.median(present), 4) if present else None

        slope = slope_per_hour([(s.t_s, s.rss_mb) for s in after])
        return {
            "minutes": self.minutes,
            "seconds": round(self.seconds, 1),
            "conversations": self.conversations,
            "turns": len(self.turns),
            "replies": sum(1 for v in latencies if v is not None),
            "warm_up_s": round(self.fit_from_s, 1),
            "rss_mb": {
                "start": first.rss_mb,
                "end": last.rss_mb,
                "max": max(s.rss_mb for s in self.samples),
                "growth_mb_per_h": None if slope is None else round(slope, 2),
                "samples_fitted": len(after),
            },
            "fds": {"start": first.fds, "end": last.fds, "max": max(s.fds for s in after)},
            "threads": {
                "start": first.threads,
                "end": last.threads,
                "max": max(s.threads for s in after),
                "os_start": first.tasks,
                "os_end": last.tasks,
                "os_max": max(s.tasks for s in after),
            },
            "latency_p50_s": {
                "first_quarter": p50(latencies[:quarter]),
                "last_quarter": p50(latencies[-quarter:]),
            },
            "machine": self.machine,
            "samples": [dataclasses.asdict(s) for s in self.samples],
            "per_turn": self.turns,
        }


def run(
    config: Config,
    utterances: Sequence[Any],
    minutes: float,
    max_turns: int | None = None,
    conversation_turns: int = CONVERSATION_TURNS,
    engines: Engines | None = None,
    progress: Callable[[str], None] = lambda _line: None,
    warm_up_minutes: float | None = None,
) -> SoakReport:
    """Load the models (unless given), warm up, then answer conversations until ``minutes``
    have passed (checked between turns) or ``max_turns`` turns were answered."""
    from voice_companion import app
    from voice_companion.bench.latency import loadavg
    from voice_companion.engines.decode import read_audio

    if minutes <= 0:
        raise SoakError("--minutes must be more than 0")
    recordings = [read_audio(u.path) for u in utterances]
    sampler = Sampler()
    with tempfile.TemporaryDirectory(prefix="vc-soak-") as tmp:
        config = dataclasses.replace(config, data_dir=Path(tmp))
        if engines is None:
            engines = app.build_engines(config)
        dialogue = app.build_dialogue(config)
        warm_up(engines, dialogue)
        loadavg_before = loadavg()
        sampler.start()
        sampler.take()
        try:
            turns, conversations, warm_up_s = asyncio.run(
                _soak(
                    config,
                    engines,
                    dialogue,
                    recordings,
                    utterances,
                    minutes,
                    max_turns,
                    conversation_turns,
                    sampler,
                    progress,
                )
            )
        finally:
            sampler.stop()
            close = getattr(dialogue.memory, "close", None)
            if close is not None:
                close()
    return SoakReport(
        minutes=minutes,
        conversations=conversations,
        turns=turns,
        samples=sampler.samples,
        warm_up_s=warm_up_s,
        seconds=sampler.now(),
        machine={
            "cores": os.cpu_count(),
            "malloc": in_use(),
            "loadavg_before": loadavg_before,
            "loadavg_after": loadavg(),
        },
        fixed_warm_up_s=None if warm_up_minutes is None else warm_up_minutes * 60,
    )


async def _soak(
    config: Config,
    engines: Engines,
    dialogue: Dialogue,
    recordings: Sequence[AudioChunk],
    utterances: Sequence[Any],
    minutes: float,
    max_turns: int | None,
    conversation_turns: int,
    sampler: Sampler,
    progress: Callable[[str], None],
) -> tuple[list[dict[str, Any]], int, float]:
    """One event loop and one dialogue for the whole run, as in the daemon (its history
    slides on across conversations), one voice-activity classifier; a session and a listener
    per conversation."""
    from voice_companion import app
    from voice_companion.bench.latency import run_lanes

    classifier = app.build_classifier(config)  # one for the whole run, as in the daemon
    deadline_s = sampler.now() + minutes * 60
    turns: list[dict[str, Any]] = []
    conversations = 0
    warm_up_s = 0.0
    cursor = 0
    while sampler.now() < deadline_s and (max_turns is None or len(turns) < max_turns):
        count = conversation_turns
        if max_turns is not None:
            count = min(count, max_turns - len(turns))
        picked = [(cursor + k) % len(utterances) for k in range(count)]
        cursor += count
        lane = _soak_lane(config, engines, dialogue, classifier)
        await run_lanes(
            [lane],
            [recordings[i] for i in picked],
            [utterances[i] for i in picked],
            lambda line: None,
        )
        conversations += 1
        for figures in lane.phase.turns:
            figures["conversation"] = conversations
            turns.append(figures)
        now = sampler.take()
        if conversations == 1:
            warm_up_s = now.t_s
        answered = [t for t in lane.phase.turns if t.get("response_latency_s") is not None]
        progress(
            f"conversation {conversations}: {len(answered)}/{len(picked)} answered; "
            f"RSS {now.rss_mb:.1f} MB, {now.fds} fds, {now.threads} threads "
            f"({sampler.now() / 60:.1f} of {minutes:g} min)"
        )
    return turns, conversations, warm_up_s


def _soak_lane(
    config: Config, engines: Engines, dialogue: Dialogue, classifier: FrameClassifier
) -> Any:
    """A streaming lane like the latency benchmark's, on the shared dialogue and voice-activity
    classifier, with a sink that keeps nothing (a sink that kept every reply would itself
    grow)."""
    from voice_companion import app
    from voice_companion.bench.latency import Lane, Phase

    tracer = Tracer(recorder=TraceRecorder())
    session = Session(config, engines, dialogue, DiscardSink(), tracer)
    listener = app.build_listener(config, speculative=True, classifier=classifier)
    return Lane(Phase("soak"), session, listener, tracer, dialogue)


class DiscardSink:
    """Counts the seconds of voice written and keeps none of it."""

    def __init__(self) -> None:
        self.seconds = 0.0

    async def write(self, chunk: AudioChunk) -> None:
        self.seconds += chunk.duration_s

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None
