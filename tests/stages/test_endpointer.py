"""Endpointing: the state machine on scripted decisions, then on real speech, silence and noise."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shipped_config
from voice_companion.audio.chunk import AudioChunk
from voice_companion.audio.sources import recording_frames
from voice_companion.config import VadConfig
from voice_companion.events import (
    InputEnded,
    SpeechStarted,
    UtteranceDiscarded,
    UtteranceEnded,
)
from voice_companion.stages.endpointer import Endpointer
from voice_companion.stages.listen import listen

FRAME_MS = 30
RATE = 16_000


def frame(value: int = 0) -> AudioChunk:
    return AudioChunk(np.full(RATE * FRAME_MS // 1000, value, dtype=np.int16), RATE)


def run_script(config: VadConfig, script: str, discard_after_ms: int | None = None) -> list[object]:
    """'#' is a voiced frame, '.' a silent one; returns every decision."""
    endpointer = Endpointer(config, FRAME_MS, RATE, discard_after_ms)
    decisions: list[object] = []
    for n, mark in enumerate(script):
        decisions += endpointer.push(frame(n % 100), mark == "#")
    return decisions + endpointer.finish()


def test_one_utterance_with_preroll_and_end_silence() -> None:
    config = VadConfig(speech_start_ms=120, end_silence_ms=300, preroll_ms=300)
    script = "." * 30 + "#" * 40 + "." * 20
    decisions = run_script(config, script)
    assert [type(d) for d in decisions] == [SpeechStarted, UtteranceEnded]
    started, ended = decisions
    assert isinstance(started, SpeechStarted) and isinstance(ended, UtteranceEnded)
    assert started.start_s == pytest.approx(30 * 0.03)
    assert ended.speech_end_s == pytest.approx(70 * 0.03)
    # decided after 10 silent frames (300 ms)
    assert ended.detected_s == pytest.approx(80 * 0.03)
    # at least the pre-roll (10 frames) is kept in front of the speech, which starts at frame 30
    assert 18 <= ended.audio.samples[0] <= 20
    assert ended.audio.duration_s >= 0.3 + 40 * 0.03


def test_hysteresis_ignores_isolated_voiced_frames_and_short_gaps() -> None:
    config = VadConfig(speech_start_ms=120, end_silence_ms=300, min_utterance_ms=0)
    # single voiced frames never start speech; a 6-frame gap inside speech does not end it
    script = "#..#..#.." + "." * 10 + "#" * 20 + "." * 6 + "#" * 20 + "." * 12
    decisions = run_script(config, script)
    assert [type(d) for d in decisions] == [SpeechStarted, UtteranceEnded]


def test_too_short_is_discarded_and_too_long_is_cut() -> None:
    short = run_script(VadConfig(min_utterance_ms=300, end_silence_ms=300), "#" * 5 + "." * 12)
    assert [type(d) for d in short] == [SpeechStarted, UtteranceDiscarded]
    long = run_script(VadConfig(max_utterance_s=1.5, preroll_ms=0), "#" * 120)
    ends = [d for d in long if isinstance(d, UtteranceEnded)]
    # 3.6 s of speech: cut at 1.5 s, cut again at 1.5 s, the rest closed by the end of input
    assert len(ends) == 3
    assert [e.audio.duration_s for e in ends[:2]] == pytest.approx([1.5, 1.5], abs=0.031)


def test_a_short_word_the_user_goes_on_from_is_kept_when_the_end_silence_is_short() -> None:
    # "Ask" (150 ms), 300 ms of silence, "not what your country..." (1.2 s): with a 150 ms
    # (speculative) end silence the word alone would be too short and dropped.
    config = VadConfig(min_utterance_ms=300, end_silence_ms=150, preroll_ms=0)
    script = "#####" + "." * 10 + "#" * 40 + "." * 30
    kept = run_script(config, script, discard_after_ms=600)
    assert [type(d) for d in kept] == [SpeechStarted, UtteranceEnded]
    ended = kept[-1]
    assert isinstance(ended, UtteranceEnded) and ended.start_s == 0.0
    assert ended.audio.duration_s >= 55 * 0.03
    # Without the longer wait the word is dropped: the test above depends on it.
    dropped = run_script(config, script)
    assert [type(d) for d in dropped] == [
        SpeechStarted, UtteranceDiscarded, SpeechStarted, UtteranceEnded
    ]  # fmt: skip
    # A cough alone is still dropped, once the longer silence has passed.
    cough = run_script(config, "#####" + "." * 30, discard_after_ms=600)
    assert [type(d) for d in cough] == [SpeechStarted, UtteranceDiscarded]


def test_input_ending_mid_speech_closes_the_utterance() -> None:
    decisions = run_script(VadConfig(), "." * 5 + "#" * 30)
    assert isinstance(decisions[-1], UtteranceEnded)


def collect(recording: AudioChunk, tmp_path: Path, **env: str) -> list[object]:
    from voice_companion.app import FRAME_MS, build_listener

    config = shipped_config(tmp_path, **env)

    async def go() -> list[object]:
        frames = recording_frames(recording, FRAME_MS, realtime=False, tail_silence_s=1.0)
        events = listen(frames, build_listener(config))
        return [event async for event in events]

    return asyncio.run(asyncio.wait_for(go(), 60))


def test_real_speech_is_one_utterance(jfk_path: Path, tmp_path: Path) -> None:
    from voice_companion.engines.decode import read_audio

    # jfk.flac: speech from about 0.3 s to 10.5 s, with pauses of up to 1.1 s between phrases
    events = collect(read_audio(jfk_path), tmp_path, VOICE_COMPANION_VAD_END_SILENCE_MS="1300")
    ended = [e for e in events if isinstance(e, UtteranceEnded)]
    assert len(ended) == 1
    assert isinstance(events[-1], InputEnded)
    assert ended[0].start_s < 1.0
    assert 9.5 < ended[0].speech_end_s < 11.0
    # With the default 600 ms end silence the pauses end utterances: one per phrase. (The
    # session answers them as one because the speaker resumed within dialogue.resume_ms.)
    phrases = [e for e in collect(read_audio(jfk_path), tmp_path) if isinstance(e, UtteranceEnded)]
    assert len(phrases) == 4
    assert all(b.start_s - a.speech_end_s < 1.5 for a, b in itertools.pairwise(phrases))


def test_silence_and_noise_are_no_utterance(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    silence = AudioChunk.silence(5.0, RATE)
    noise = AudioChunk((rng.normal(0, 6000, RATE * 5)).clip(-32768, 32767).astype(np.int16), RATE)
    for recording in (silence, noise):
        events = collect(recording, tmp_path)
        assert not [e for e in events if isinstance(e, UtteranceEnded)]


def test_push_to_talk_is_one_utterance_with_the_preroll_and_the_same_minimum() -> None:
    # The endpointer owns the frames, the pre-roll and the minimum length for a press as
    # for speech it detects: the listener only routes frames to it.
    config = VadConfig(preroll_ms=300, min_utterance_ms=300)
    endpointer = Endpointer(config, FRAME_MS, RATE)
    for n in range(20):
        endpointer.hear(frame(n))  # push-to-talk mode: heard, not judged
    (started,) = endpointer.press()
    assert isinstance(started, SpeechStarted) and started.start_s == pytest.approx(20 * 0.03)
    for n in range(20, 40):
        endpointer.push(frame(n), voiced=False)  # a press holds whatever is decided
    (ended,) = endpointer.release()
    assert isinstance(ended, UtteranceEnded)
    assert ended.audio.samples[0] == 10  # the 10 frames (300 ms) before the press are kept
    assert ended.audio.duration_s == pytest.approx(30 * 0.03)
    assert ended.speech_end_s == ended.detected_s == pytest.approx(40 * 0.03)
    endpointer.press()
    for n in range(5):
        endpointer.hear(frame(n))
    (short,) = endpointer.release()  # 150 ms: shorter than the minimum
    assert isinstance(short, UtteranceDiscarded) and short.voiced_s == pytest.approx(0.15)
    endpointer.press()
    (dropped,) = endpointer.drop()  # muted mid-press: nothing of it goes further
    assert isinstance(dropped, UtteranceDiscarded) and dropped.voiced_s == 0.0
    assert endpointer.release() == [] and not endpointer.pressed


def test_a_muted_frame_breaks_the_preroll() -> None:
    config = VadConfig(speech_start_ms=120, preroll_ms=300, min_utterance_ms=0)
    endpointer = Endpointer(config, FRAME_MS, RATE)
    for n in range(10):
        endpointer.hear(frame(n))
    endpointer.skip()  # muted
    decisions = [d for n in range(11, 30) for d in endpointer.push(frame(n), voiced=True)]
    ended = (decisions + endpointer.finish())[-1]
    assert isinstance(ended, UtteranceEnded)
    assert ended.audio.samples[0] == 11  # nothing heard before the muted frame
    assert endpointer.position_s == pytest.approx(30 * 0.03)
