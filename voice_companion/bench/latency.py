"""`bench latency`: response latency of the real pipeline, beside a sequential baseline.

Response latency is measured from the end of the user's speech (the last voiced sample fed to
the microphone, known from the utterance manifest, not from our own voice-activity detection)
to the first audible sample of the reply reaching the sink. Utterances are fed at real-time
pace, as a microphone delivers them, through the same listener, endpointer, session and
engines as `run --realtime`; the companion's trace gives the per-stage times.

The same run then answers the same utterances the sequential way, with the same models and
the same turn (``Pace.WHOLE``): the whole transcript, then the whole reply, then the whole
synthesis, then play. Each phase has a
conversation of its own (history and memory in a temporary data folder), so that llama.cpp's
prompt cache serves each as it would serve one conversation.

Numbers only: nothing here judges them. The machine's load average is reported beside them,
since these machines are shared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voice_companion.allocator import in_use
from voice_companion.audio.chunk import STT_RATE_HZ, AudioChunk
from voice_companion.audio.sinks import MemorySink
from voice_companion.config import Config
from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.errors import BenchError
from voice_companion.private import private_dir
from voice_companion.runtime.session import Engines, Session
from voice_companion.runtime.turn import Pace
from voice_companion.runtime.warmup import warm_up
from voice_companion.stages.listen import Listener, listen
from voice_companion.trace import Tracer, TraceRecorder

log = logging.getLogger(__name__)

FRAME_MS = 30
TURN_TIMEOUT_S = 60.0
"""Longest wait for one utterance's reply before the benchmark moves on (counted missing)."""
GAP_S = 0.6
"""Silence fed between one reply's end and the next utterance."""

STREAMING_STAGES = (
    ("endpoint_wait_s", "endpointing wait"),
    ("hold_s", "hold (adaptive end silence)"),
    ("stt_s", "speech-to-text"),
    ("llm_first_token_s", "LLM first token"),
    ("first_sentence_s", "first sentence"),
    ("tts_first_s", "TTS of first sentence"),
    ("response_latency_s", "response latency"),
    ("trace_latency_s", "response latency (trace)"),
)
SEQUENTIAL_STAGES = (
    ("endpoint_wait_s", "endpointing wait"),
    ("stt_s", "speech-to-text"),
    ("llm_reply_s", "LLM whole reply"),
    ("tts_reply_s", "TTS whole reply"),
    ("response_latency_s", "response latency"),
)


@dataclass(frozen=True)
class Utterance:
    """One recorded utterance of the fixed set, with the end of its speech."""

    path: Path
    text: str
    speech_end_s: float
    kind: str = "statement"
    hesitation: bool = False


def default_utterances_dir() -> Path:
    """The utterances committed with the project (``tests/data/utterances``)."""
    return Path(__file__).resolve().parents[2] / "tests" / "data" / "utterances"


def load_utterances(folder: Path, limit: int | None = None) -> list[Utterance]:
    """The utterances listed in ``folder/manifest.json`` (the first ``limit`` of them)."""
    manifest = folder / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        items = data["utterances"]
        utterances = [
            Utterance(
                path=folder / str(item["file"]),
                text=str(item["text"]),
                speech_end_s=float(item["speech_end_s"]),
                kind=str(item.get("kind", "statement")),
                hesitation=bool(item.get("hesitation", False)),
            )
            for item in items
        ]
    except FileNotFoundError:
        raise BenchError(f"no {manifest.name} in {folder}: give --utterances DIR") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"{manifest} is not a valid utterance manifest: {exc}") from exc
    if not utterances:
        raise BenchError(f"{manifest} lists no utterances")
    return utterances[:limit] if limit else utterances


# -- feeding at real-time pace ---------------------------------------------------------------


class Feeder:
    """Feeds the utterances as one microphone stream, in real time: silence until the
    utterance may start (``may_start``), the utterance, silence until its reply is over
    (``turn_done``), then a short gap of silence before reporting it done (``on_done``).

    Records, per utterance, the monotonic clock at which the frame holding its last voiced
    sample was fed, and where its events start in the trace.
    """

    def __init__(
        self,
        recordings: Sequence[AudioChunk],
        utterances: Sequence[Utterance],
        turn_done: Callable[[int], bool],
        tracer: Tracer,
        may_start: Callable[[int], bool] = lambda _i: True,
        on_done: Callable[[int], None] = lambda _i: None,
        gap_s: float = GAP_S,
        timeout_s: float = TURN_TIMEOUT_S,
    ) -> None:
        self._recordings = recordings
        self._utterances = utterances
        self._turn_done = turn_done
        self._tracer = tracer
        self._may_start = may_start
        self._on_done = on_done
        self._gap_s = gap_s
        self._timeout_s = timeout_s
        self.speech_end_clock: list[float | None] = [None] * len(utterances)
        self.event_start: list[int] = [0] * len(utterances)
        self.event_stop: list[int] = [0] * len(utterances)
        self.timed_out: list[bool] = [False] * len(utterances)

    async def frames(self) -> AsyncIterator[AudioChunk]:
        rate = STT_RATE_HZ
        size = rate * FRAME_MS // 1000
        frame_s = FRAME_MS / 1000
        silence = AudioChunk.silence(frame_s, rate)
        start = time.monotonic()
        n = 0

        async def pace() -> None:
            nonlocal n
            delay = start + n * frame_s - time.monotonic()
            n += 1
            if delay > 0:
                await asyncio.sleep(delay)

        for i, (recording, utterance) in enumerate(
            zip(self._recordings, self._utterances, strict=True)
        ):
            while not self._may_start(i):
                await pace()
                yield silence
            self.event_start[i] = len(self._tracer.events)
            last_voiced = max(0, round(utterance.speech_end_s * rate) - 1)
            samples = recording.samples
            for offset in range(0, len(samples), size):
                await pace()
                piece = samples[offset : offset + size]
                if len(piece) < size:
                    padded = silence.samples.copy()
                    padded[: len(piece)] = piece
                    piece = padded
                if offset <= last_voiced < offset + size:
                    self.speech_end_clock[i] = time.monotonic()
                yield AudioChunk(piece, rate)
            deadline = time.monotonic() + self._timeout_s
            while not self._turn_done(i):
                if time.monotonic() > deadline:
                    self.timed_out[i] = True
                    log.warning("no reply to utterance %d within %g s", i + 1, self._timeout_s)
                    break
                await pace()
                yield silence
            for _ in range(round(self._gap_s / frame_s)):
                await pace()
                yield silence
            self.event_stop[i] = len(self._tracer.events)
            self._on_done(i)


# -- results -----------------------------------------------------------------------------------


@dataclass
class Phase:
    """One pass over the utterances: per-utterance figures and where the run stood."""

    name: str
    turns: list[dict[str, Any]] = field(default_factory=list)
    loadavg_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loadavg_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seconds: float = 0.0

    def values(self, key: str) -> list[float]:
        return [float(t[key]) for t in self.turns if t.get(key) is not None]

    def summary(self, keys: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
        return {key: percentiles(self.values(key)) for key in keys}


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    """p50 and p95 (linear interpolation between closest ranks), with the count."""
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        pos = q * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    return {"p50": round(at(0.5), 4), "p95": round(at(0.95), 4), "n": len(ordered)}


@dataclass
class LatencyReport:
    utterances: int
    streaming: Phase
    sequential: Phase | None
    ready: dict[str, float | None]
    settings: dict[str, Any]
    machine: dict[str, Any]

    def ratio(self, q: str = "p50") -> float | None:
        """Sequential response latency over streaming, at percentile ``q``."""
        if self.sequential is None:
            return None
        fast = percentiles(self.streaming.values("response_latency_s"))[q]
        slow = percentiles(self.sequential.values("response_latency_s"))[q]
        if not fast or slow is None:
            return None
        return round(float(slow) / float(fast), 3)

    def first_turn(self) -> dict[str, float | None]:
        """The first turn's response latency against the median of the later ones."""
        latencies = [t.get("response_latency_s") for t in self.streaming.turns]
        first = latencies[0] if latencies else None
        later = [float(x) for x in latencies[1:] if x is not None]
        later_p50 = statistics.median(later) if later else None
        return {
            "first_s": first,
            "later_p50_s": None if later_p50 is None else round(later_p50, 4),
            "ratio": round(first / later_p50, 3) if first is not None and later_p50 else None,
        }

    def trace_agreement(self) -> float | None:
        """Largest difference between the benchmark's latency (from the manifest's speech
        end) and the trace's (from the voice-activity detector's), seconds."""
        diffs = [
            abs(float(t["response_latency_s"]) - float(t["trace_latency_s"]))
            for t in self.streaming.turns
            if t.get("response_latency_s") is not None and t.get("trace_latency_s") is not None
        ]
        return round(max(diffs), 4) if diffs else None

    def as_dict(self) -> dict[str, Any]:
        keys = [k for k, _ in STREAMING_STAGES]
        out: dict[str, Any] = {
            "utterances": self.utterances,
            "ready": self.ready,
            "settings": self.settings,
            "machine": self.machine,
            "streaming": {
                "summary": self.streaming.summary(keys),
                "turns": self.streaming.turns,
                "loadavg_before": self.streaming.loadavg_before,
                "loadavg_after": self.streaming.loadavg_after,
                "seconds": round(self.streaming.seconds, 2),
            },
            "first_turn": self.first_turn(),
            "trace_agreement_max_s": self.trace_agreement(),
        }
        if self.sequential is not None:
            out["sequential"] = {
                "summary": self.sequential.summary([k for k, _ in SEQUENTIAL_STAGES]),
                "turns": self.sequential.turns,
                "loadavg_before": self.sequential.loadavg_before,
                "loadavg_after": self.sequential.loadavg_after,
                "seconds": round(self.sequential.seconds, 2),
            }
            out["ratio"] = {"p50": self.ratio("p50"), "p95": self.ratio("p95")}
        return out


# -- running -----------------------------------------------------------------------------------


def process_start_clock() -> float:
    """When this process started, on the ``time.monotonic`` clock (Linux: from /proc)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of the whole line: starttime
        age_s = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.monotonic() - age_s
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT


_IMPORTED_AT = time.monotonic()


def loadavg() -> tuple[float, float, float]:
    """The machine's load average (1, 5, 15 minutes); zeros where the OS cannot tell."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def _turn_figures(
    events: list[dict[str, Any]], tracer: Tracer, end_clock: float | None, timed_out: bool
) -> dict[str, Any]:
    """One utterance's figures from its slice of the trace."""
    ends = [e for e in events if e["event"] == "turn_end"]
    figures: dict[str, Any] = {"timed_out": timed_out, "turns": len(ends)}
    figures["abandoned"] = sum(1 for e in events if e["event"] == "turn_abandoned")
    transcripts = [e for e in events if e["event"] == "transcript"]
    if transcripts:
        figures["transcript"] = transcripts[-1].get("text")
    holds = [e for e in events if e["event"] == "hold"]
    if not ends:
        return figures
    end = ends[-1]
    for key, value in end.items():
        if key.endswith("_s") and key != "t":
            figures[key] = value
    figures["trace_latency_s"] = figures.pop("response_latency_s", None)
    if holds:
        figures["hold_s"] = holds[-1].get("waited_s")
        figures["hold_target_s"] = holds[-1].get("target_s")
    first_audio = [e for e in events if e["event"] == "first_audio"]
    if first_audio and end_clock is not None:
        figures["response_latency_s"] = round(float(first_audio[-1]["t"]) - tracer.at(end_clock), 4)
    else:
        figures["response_latency_s"] = None
    return figures


@dataclass
class Lane:
    """One way of answering (streaming or sequential) with its own conversation."""

    phase: Phase
    runner: Session
    listener: Listener
    tracer: Tracer
    dialogue: Dialogue
    feeder: Feeder | None = None


def _lane(name: str, config: Config, engines: Engines, sequential: bool, data_dir: Path) -> Lane:
    from voice_companion import app

    # A conversation and a memory of its own: the lanes do not hear each other.
    private_dir(data_dir)
    config = dataclasses.replace(config, data_dir=data_dir)
    dialogue = app.build_dialogue(config)
    tracer = Tracer(recorder=TraceRecorder())
    sink = MemorySink()
    listen_config = config
    if sequential:
        # The baseline waits for the whole end-of-speech silence: no early start, no
        # adaptation (it has no transcript before the silence is over).
        vad = dataclasses.replace(config.vad, speculate_ms=0, adaptive_end_silence=False)
        listen_config = dataclasses.replace(config, vad=vad)
    # The baseline is the same turn, whole: transcript, reply and synthesis each complete
    # before the next begins.
    pace = Pace.WHOLE if sequential else Pace.STREAMING
    runner = Session(config, engines, dialogue, sink, tracer, pace=pace)
    listener = app.build_listener(listen_config, speculative=True)
    return Lane(Phase(name), runner, listener, tracer, dialogue)


async def run_lanes(
    lanes: Sequence[Lane],
    recordings: Sequence[AudioChunk],
    utterances: Sequence[Utterance],
    progress: Callable[[str], None],
) -> None:
    """Answer each utterance in every lane, one lane after the other, alternating which goes
    first, so that whatever else the machine does weighs on every lane alike."""
    schedule = [
        (k if i % 2 == 0 else len(lanes) - 1 - k, i)
        for i in range(len(utterances))
        for k in range(len(lanes))
    ]
    position = [0]

    def gate(k: int) -> Callable[[int], bool]:
        return lambda i: position[0] < len(schedule) and schedule[position[0]] == (k, i)

    def counter(lane: Lane) -> Callable[[int], bool]:
        counted = [0]

        def done(_i: int) -> bool:
            if lane.runner.turns_done > counted[0]:
                counted[0] = lane.runner.turns_done
                return True
            return False

        return done

    def finished(lane: Lane) -> Callable[[int], None]:
        def on_done(i: int) -> None:
            position[0] += 1
            feeder = lane.feeder
            assert feeder is not None
            events = lane.tracer.events[feeder.event_start[i] :]
            audio = [e for e in events if e["event"] == "first_audio"]
            end = feeder.speech_end_clock[i]
            latency = (
                f"{float(audio[-1]['t']) - lane.tracer.at(end):.3f} s"
                if audio and end is not None
                else "no reply"
            )
            progress(
                f"{lane.phase.name} {i + 1}/{len(utterances)} {utterances[i].path.name}: {latency}"
            )

        return on_done

    for k, lane in enumerate(lanes):
        lane.feeder = Feeder(
            recordings, utterances, counter(lane), lane.tracer, gate(k), finished(lane)
        )
        lane.phase.loadavg_before = loadavg()
    started = time.monotonic()
    tasks = []
    for lane in lanes:
        assert lane.feeder is not None
        lane.tracer.start()
        tasks.append(
            asyncio.create_task(
                lane.runner.run(listen(lane.feeder.frames(), lane.listener)),
                name=f"bench-{lane.phase.name}",
            )
        )
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lane in lanes:
            lane.tracer.close()
    for lane in lanes:
        feeder = lane.feeder
        assert feeder is not None
        lane.phase.seconds = time.monotonic() - started
        lane.phase.loadavg_after = loadavg()
        for i, utterance in enumerate(utterances):
            figures = _turn_figures(
                lane.tracer.events[feeder.event_start[i] : feeder.event_stop[i]],
                lane.tracer,
                feeder.speech_end_clock[i],
                feeder.timed_out[i],
            )
            figures["file"] = utterance.path.name
            figures["speech_end_s"] = utterance.speech_end_s
            lane.phase.turns.append(figures)


def run(
    config: Config,
    utterances: Sequence[Utterance],
    baseline: bool = True,
    warm: bool = True,
    engines: Engines | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> LatencyReport:
    """Load the models (unless given) and warm up; then answer every utterance streaming
    and, side by side, the sequential way; the figures of both.

    The baseline gets a language model instance of its own (the same file), so that each
    way keeps its own prompt cache; speech-to-text and the voice are shared (stateless)."""
    from voice_companion import app
    from voice_companion.engines.decode import read_audio

    process_start = process_start_clock()
    recordings = [read_audio(u.path) for u in utterances]
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
        data = Path(tmp)
        config = dataclasses.replace(config, data_dir=data / "streaming")
        loaded_at = time.monotonic()
        if engines is None:
            engines = app.build_engines(config)
        load_s = time.monotonic() - loaded_at
        lanes = [_lane("streaming", config, engines, False, data / "streaming")]
        warm_s = 0.0
        if warm:
            warm_s = warm_up(engines, lanes[0].dialogue)
        ready_s = time.monotonic() - process_start
        progress(f"ready {ready_s:.2f} s after the process started")
        if baseline:
            second = dataclasses.replace(engines, model=app.build_model(config))
            lanes.append(_lane("sequential", config, second, True, data / "sequential"))
            if warm:
                warm_up(second, lanes[1].dialogue)
        asyncio.run(run_lanes(lanes, recordings, utterances, progress))
    return LatencyReport(
        utterances=len(utterances),
        streaming=lanes[0].phase,
        sequential=lanes[1].phase if baseline else None,
        ready={
            "process_start_to_ready_s": round(ready_s, 3),
            "model_load_s": round(load_s, 3),
            "warm_up_s": round(warm_s, 3),
        },
        settings=_settings(config),
        machine={"cores": os.cpu_count(), "loadavg_at_end": loadavg(), "malloc": in_use()},
    )


def _settings(config: Config) -> dict[str, Any]:
    """The configuration that shapes latency, reported with the figures."""
    return {
        "vad": dataclasses.asdict(config.vad),
        "stt": dataclasses.asdict(config.stt),
        "llm": {
            k: v
            for k, v in dataclasses.asdict(config.llm).items()
            if k in ("backend", "model_path", "model", "threads", "max_reply_tokens")
        },
        "tts": dataclasses.asdict(config.tts),
        "dialogue": {
            k: v for k, v in dataclasses.asdict(config.dialogue).items() if k != "not_heard"
        },
    }
