"""What makes replies fast without making them rude: the adaptive end-of-speech silence, the
speculative turn held until that silence is over (and dropped if the user goes on), and the
prompt cache that survives the history window sliding.

Behaviour only: the waits asserted here are lower bounds the session sleeps for, never how
fast this machine is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import queued, shipped_config
from voice_companion import app
from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sinks import MemorySink, PacedSink
from voice_companion.config import VadConfig
from voice_companion.engines import ChatMessage, Transcript
from voice_companion.events import Event, InputEnded, SpeechStarted, UtteranceEnded
from voice_companion.session import Engines, Session
from voice_companion.stages.endpointer import (
    end_silence_ms,
    first_end_silence_ms,
    longest_end_silence_ms,
)
from voice_companion.trace import Tracer, TraceRecorder

VAD = VadConfig(
    end_silence_ms=600, end_silence_min_ms=400, end_silence_max_ms=1200, adaptive_end_silence=True
)


@pytest.mark.parametrize(
    ("transcript", "expected"),
    [
        ("How are you today?", 400),
        ("I had a long day at work.", 400),
        ("Tell me a joke!", 400),
        ("I went to the market and", 1200),
        ("I went to the market, and...", 1200),
        ("So, um", 1200),
        ("I was thinking...", 1200),
        ("So yesterday,", 1200),
        ("My sister is getting married next month because", 1200),
        ("Tell me something funny", 600),  # whisper left it open: cannot tell
        ("", 600),
    ],
)
def test_the_end_silence_adapts_to_what_was_said(transcript: str, expected: int) -> None:
    assert end_silence_ms(transcript, VAD) == expected


def test_without_adaptation_or_outside_the_bounds_the_end_silence_rules() -> None:
    fixed = dataclasses.replace(VAD, adaptive_end_silence=False)
    assert end_silence_ms("How are you?", fixed) == 600
    assert end_silence_ms("and", fixed) == 600
    long = dataclasses.replace(VAD, end_silence_ms=1500)  # bounds widen to include it
    assert end_silence_ms("and", long) == 1500
    assert end_silence_ms("Yes.", long) == 400


def test_the_speculative_listener_closes_early_and_the_plain_one_does_not(
    tmp_path: Path,
) -> None:
    fast = {"VOICE_COMPANION_VAD_SPECULATE_MS": "240",
            "VOICE_COMPANION_VAD_ADAPTIVE_END_SILENCE": "true"}  # fmt: skip
    config = shipped_config(tmp_path, **fast)
    assert first_end_silence_ms(config.vad) == config.vad.speculate_ms == 240
    off = shipped_config(tmp_path, **{**fast, "VOICE_COMPANION_VAD_SPECULATE_MS": "0"})
    assert first_end_silence_ms(off.vad) == off.vad.end_silence_min_ms
    fixed = shipped_config(
        tmp_path,
        VOICE_COMPANION_VAD_SPECULATE_MS="0",
        VOICE_COMPANION_VAD_ADAPTIVE_END_SILENCE="false",
    )
    assert first_end_silence_ms(fixed.vad) == fixed.vad.end_silence_ms
    # Short bursts are dropped only after the longest silence the session may wait for.
    assert longest_end_silence_ms(config.vad) == config.vad.end_silence_max_ms
    assert longest_end_silence_ms(fixed.vad) == fixed.vad.end_silence_ms

    # A real utterance, then silence: where does each listener close it?
    from voice_companion.bench.latency import default_utterances_dir
    from voice_companion.engines.decode import read_audio

    speech = read_audio(default_utterances_dir() / "u01.flac")
    samples = np.concatenate([speech.samples, np.zeros(16_000 * 2, np.int16)])

    def closed_after_s(speculative: bool) -> float:
        listener = app.build_listener(config, speculative=speculative)
        for start in range(0, len(samples) - 480 + 1, 480):
            for event in listener.push(AudioChunk(samples[start : start + 480], 16_000)):
                if isinstance(event, UtteranceEnded):
                    return event.detected_s - event.speech_end_s
        raise AssertionError("the utterance never ended")

    assert closed_after_s(True) == pytest.approx(config.vad.speculate_ms / 1000, abs=0.031)
    assert closed_after_s(False) == pytest.approx(config.vad.end_silence_ms / 1000, abs=0.031)


class ByLength:
    """A transcriber whose words depend on how long the utterance is (fast, deterministic)."""

    def __init__(self, short: str, long: str) -> None:
        self.short, self.long = short, long
        self.calls = 0

    def transcribe(self, audio: AudioChunk) -> Transcript:
        self.calls += 1
        text = self.short if audio.duration_s < 1.5 else self.long
        return Transcript(text, audio.duration_s)


class Quick:
    def __init__(self, reply: str) -> None:
        self.reply = reply

    def stream(self, messages: Sequence[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        for word in self.reply.split(" "):
            if cancel.is_set():
                return
            yield word + " "


def by_name(events: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in events if e["event"] == name]


def test_a_speculative_turn_waits_for_the_silence_and_is_dropped_if_the_user_goes_on(
    engines: Engines, tmp_path: Path
) -> None:
    config = shipped_config(
        tmp_path,
        VOICE_COMPANION_VAD_SPECULATE_MS="240",
        VOICE_COMPANION_VAD_ADAPTIVE_END_SILENCE="true",
    )
    transcriber = ByLength("I was thinking and", "I was thinking and we could talk about my day.")
    parts = dataclasses.replace(
        engines, transcriber=transcriber, model=Quick("Sure, let's talk about it.")
    )
    dialogue = app.build_dialogue(config)
    sink, tracer = MemorySink(), Tracer(recorder=TraceRecorder())
    session = Session(config, parts, dialogue, sink, tracer)
    one_s = AudioChunk.silence(1.0, 16_000)
    hold_max_s = config.vad.end_silence_max_ms / 1000

    async def go() -> None:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        runner = asyncio.create_task(session.run(queued(queue)))
        # Closed after 240 ms of silence: the turn starts, speculatively.
        await queue.put(UtteranceEnded(one_s, 0.0, 1.0, 1.24))
        await asyncio.sleep(0.3)
        assert not by_name(tracer.events, "first_audio")  # "... and": held for longer
        await queue.put(SpeechStarted(1.5))  # the user goes on
        await queue.put(UtteranceEnded(one_s, 1.5, 2.5, 2.74))
        while not by_name(tracer.events, "turn_end"):
            await asyncio.sleep(0.02)
        await queue.put(InputEnded(3.0))
        await queue.put(None)
        await asyncio.wait_for(runner, 30)

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(go(), 60))
    assert time.monotonic() - started >= 0.3
    assert len(by_name(tracer.events, "turn_abandoned")) == 1
    assert len(by_name(tracer.events, "turn_end")) == 1
    transcripts = by_name(tracer.events, "transcript")
    assert transcripts[-1]["text"] == "I was thinking and we could talk about my day."
    # The answered turn was complete-sounding: held only for the short silence, and its
    # first audio came no earlier than that after the end of speech.
    hold = by_name(tracer.events, "hold")[-1]
    assert hold["target_s"] == config.vad.end_silence_min_ms / 1000 < hold_max_s
    speech_end = by_name(tracer.events, "speech_end")[-1]
    first_audio = by_name(tracer.events, "first_audio")[-1]
    assert float(str(first_audio["t"])) - float(str(speech_end["t"])) >= hold["target_s"]
    # The history holds the user's words once: the partial turn was taken back.
    users = [t.text for t in dialogue.history.recent() if t.role == "user"]
    assert users == ["I was thinking and we could talk about my day."]


@pytest.mark.parametrize(
    ("onset_after_s", "confirmed_after_s", "backoff_ms", "backs_off"),
    [(0.6, 0.9, None, True), (1.0, 1.1, None, True), (0.6, 0.9, 800, True), (1.0, 1.1, 800, False)],
)
def test_it_backs_off_when_the_user_went_on_just_as_the_reply_began(
    engines: Engines, tmp_path: Path, onset_after_s: float, confirmed_after_s: float,
    backoff_ms: int | None, backs_off: bool,
) -> None:  # fmt: skip
    # Back off if the user's speech began within backoff_ms of the reply's first audio (the
    # shipped 2 s: whenever they go on within resume_ms). What counts is when they began,
    # not when the listener was sure of it.
    config = shipped_config(tmp_path)
    assert config.dialogue.backoff_ms == config.dialogue.resume_ms == 2000
    if backoff_ms is not None:
        config = dataclasses.replace(
            config, dialogue=dataclasses.replace(config.dialogue, backoff_ms=backoff_ms)
        )
    parts = dataclasses.replace(
        engines,
        transcriber=ByLength("How are you today?", "How are you today?"),
        model=Quick("I am well, thank you. I spent the whole day reading by the window."),
    )
    sink, tracer = MemorySink(), Tracer(recorder=TraceRecorder())
    session = Session(config, parts, app.build_dialogue(config), PacedSink(sink), tracer)
    one_s = AudioChunk.silence(1.0, 16_000)

    async def go() -> None:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        runner = asyncio.create_task(session.run(queued(queue)))
        ended_clock = time.monotonic()
        await queue.put(UtteranceEnded(one_s, 0.0, 1.0, 1.15, speech_end_clock_s=ended_clock))
        while not by_name(tracer.events, "first_audio"):
            await asyncio.sleep(0.01)
        heard_clock = time.monotonic()
        await asyncio.sleep(confirmed_after_s)
        onset_clock = heard_clock + onset_after_s
        await queue.put(SpeechStarted(1.0 + onset_clock - ended_clock, onset_clock))
        await asyncio.sleep(0.2)
        await queue.put(InputEnded(5.0))
        await queue.put(None)
        await asyncio.wait_for(runner, 60)

    asyncio.run(asyncio.wait_for(go(), 90))
    assert bool(by_name(tracer.events, "turn_abandoned")) is backs_off
