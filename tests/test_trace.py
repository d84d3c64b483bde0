"""The tracer a daemon runs with for months keeps the last turns' timings and not one word;
the words go only to a --trace file the user asked for, and to a recorder passed in."""

from __future__ import annotations

import gc
import json
import types
from pathlib import Path

from voice_companion.trace import TURNS_KEPT, Tracer, TraceRecorder, TurnTimings

EVENTS_PER_TURN = 9


def one_turn(tracer: Tracer, n: int) -> None:
    """The events a session emits for one spoken turn, its words marked with ``n``."""
    tracer.emit("speech_start", audio_s=n * 3.0)
    tracer.emit("speech_end", audio_s=n * 3.0 + 1.0, utterance_s=1.2, endpoint_wait_s=0.15)
    tracer.emit("transcript", text=f"my secret number is {n}", stt_s=0.2)
    tracer.emit("hold", target_s=0.4, waited_s=0.2)
    tracer.emit("first_audio")
    tracer.emit("said", text=f"your secret {n} is safe", interrupted=False)
    tracer.emit("reply", text=f"your secret {n} is safe", interrupted=False)
    tracer.emit("turn_abandoned", reason="user resumed speaking")
    tracer.turn_ended(TurnTimings(stt_s=0.2, response_latency_s=0.6 + n % 7), interrupted=False)


def reachable(root: object) -> list[object]:
    """Every object ``root`` holds, through any depth (classes, modules and functions aside)."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    seen, stack, found = {id(root)}, [root], []
    while stack:
        obj = stack.pop()
        found.append(obj)
        for ref in gc.get_referents(obj):
            if not isinstance(ref, skip) and id(ref) not in seen:
                seen.add(id(ref))
                stack.append(ref)
    return found


def words_held(tracer: Tracer) -> list[str]:
    return [o for o in reachable(tracer) if isinstance(o, str) and "secret" in o]


def test_ten_thousand_turns_hold_the_last_timings_and_no_word(tmp_path: Path) -> None:
    tracer = Tracer(None)  # as app.build_daemon makes it without --trace
    tracer.start()
    for n in range(100):
        one_turn(tracer, n)
    held_after_100 = len(reachable(tracer))
    for n in range(100, 10_000):
        one_turn(tracer, n)
    assert len(reachable(tracer)) == held_after_100  # bounded: no more after 10,000 turns
    assert words_held(tracer) == []
    assert not hasattr(tracer, "events")  # none to read back: it was given no recorder
    assert len(tracer.recent_turns) == TURNS_KEPT
    latest = tracer.recent_turns[-1]
    assert latest.response_latency_s == 0.6 + 9_999 % 7


def test_a_trace_file_gets_every_line_and_memory_still_holds_no_word(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    tracer = Tracer(path)  # as app.build_daemon makes it with --trace FILE
    tracer.start()
    for n in range(10_000):
        one_turn(tracer, n)
    assert words_held(tracer) == []
    assert len(tracer.recent_turns) == TURNS_KEPT
    tracer.close()
    assert path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1 + 10_000 * EVENTS_PER_TURN  # "start", then every event
    transcripts = [e["text"] for e in lines if e["event"] == "transcript"]
    assert transcripts == [f"my secret number is {n}" for n in range(10_000)]
    ends = [e for e in lines if e["event"] == "turn_end"]
    assert ends[-1]["response_latency_s"] == round(0.6 + 9_999 % 7, 4)
    assert ends[-1]["interrupted"] is False


def test_a_recorder_passed_in_gets_every_event_and_can_drop_the_words() -> None:
    recorder = TraceRecorder()
    tracer = Tracer(recorder=recorder)
    for n in range(3):
        one_turn(tracer, n)
    assert tracer.events is recorder.events
    assert [e["event"] for e in recorder.events][:2] == ["start", "speech_start"]
    assert len(recorder.events) == 1 + 3 * EVENTS_PER_TURN
    assert [e["text"] for e in recorder.events if e["event"] == "transcript"] == [
        "my secret number is 0",
        "my secret number is 1",
        "my secret number is 2",
    ]
    tracer.forget_words()  # something was forgotten: no word stays in memory
    assert "secret" not in json.dumps(recorder.events)
    assert [e["event"] for e in recorder.events].count("turn_end") == 3
