"""The speak stage on its own, with the real piper voice: sentences synthesised and played in
order, what was heard when it is cut short, a sentence the voice fails on skipped, and the
hold before the first audio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.fakes import FailOneSentence, PacedSink
from voice_companion.audio.sinks import MemorySink
from voice_companion.engines import Synthesizer
from voice_companion.stages.speak import PIECE_S, SpeechProgress, speak

WAIT_S = 60.0
"""Upper bound on any one test (never a measurement)."""

STORY = ["The rain stopped at noon.", "We walked down to the harbour.", "The boats were out."]


async def given(texts: list[str]) -> AsyncIterator[str]:
    for text in texts:
        yield text


def spoken(
    texts: list[str],
    voice: Synthesizer,
    sink: MemorySink,
    progress: SpeechProgress,
    **options: object,
) -> None:
    asyncio.run(
        asyncio.wait_for(
            speak(given(texts), voice, sink, progress, time.monotonic, **options),  # type: ignore[arg-type]
            WAIT_S,
        )
    )


def test_every_sentence_is_played_in_order_in_short_pieces_with_its_pause(
    piper: Synthesizer,
) -> None:
    sink, progress, first = MemorySink(), SpeechProgress(), []
    spoken(STORY, piper, sink, progress, pause_ms=200, on_first_audio=first.append)
    assert progress.played == STORY and progress.heard_text == " ".join(STORY)
    assert progress.playing == "" and progress.playing_share == 0.0
    assert all(c.rate_hz == piper.rate_hz for c in sink.chunks)
    assert max(c.duration_s for c in sink.chunks) <= PIECE_S + 1e-6
    pauses = [c for c in sink.chunks if c.peak() == 0 and c.duration_s == pytest.approx(0.2)]
    assert len(pauses) == len(STORY)
    assert first == [progress.first_audio_t] and progress.tts_first_s is not None
    assert progress.first_sentence_t is not None
    assert progress.first_sentence_t <= progress.first_audio_t


def test_a_sentence_the_voice_fails_on_and_one_with_nothing_to_say_are_skipped(
    piper: Synthesizer,
) -> None:
    voice = FailOneSentence(piper, "harbour")
    sink, progress = MemorySink(), SpeechProgress()
    spoken([*STORY[:2], "...", STORY[2]], voice, sink, progress)
    assert voice.failed == 1
    assert progress.played == [STORY[0], STORY[2]]
    assert sink.chunks


def test_cancelled_mid_sentence_it_stops_between_pieces_and_knows_what_was_heard(
    piper: Synthesizer,
) -> None:
    """A barge-in cancels the stage: it stops at the next piece, plays nothing more, and the
    words heard are the sentences played and the share of the one that was playing."""
    sink, progress = PacedSink(), SpeechProgress()

    async def go() -> int:
        task = asyncio.create_task(speak(given(STORY), piper, sink, progress, time.monotonic))
        while not (progress.played and 0 < progress.playing_share < 1):
            await asyncio.sleep(0.01)
            assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        written = len(sink.chunks)
        await asyncio.sleep(0.3)
        assert len(sink.chunks) == written, "audio was played after the cancellation"
        return written

    asyncio.run(asyncio.wait_for(go(), WAIT_S))
    assert progress.played == [STORY[0]] and progress.playing == STORY[1]
    heard = progress.heard_text
    assert heard.startswith(STORY[0] + " ") and STORY[1].startswith(heard[len(STORY[0]) + 1 :])
    assert heard != " ".join(STORY[:2])


def test_nothing_is_played_until_the_hold_lets_it_and_then_all_of_it(piper: Synthesizer) -> None:
    """``before_first_audio`` (the session's hold of a speculative reply): synthesis goes on,
    but not one sample reaches the sink until the hold returns."""
    sink, progress = MemorySink(), SpeechProgress()

    async def go() -> None:
        release = asyncio.Event()
        task = asyncio.create_task(
            speak(
                given(STORY), piper, sink, progress, time.monotonic, before_first_audio=release.wait
            )
        )
        while progress.tts_first_s is None:  # the first sentence is synthesised
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert sink.chunks == [] and progress.first_audio_t is None
        release.set()
        await task

    asyncio.run(asyncio.wait_for(go(), WAIT_S))
    assert progress.played == STORY


def test_what_was_heard_counts_the_words_in_proportion_to_the_audio_played() -> None:
    progress = SpeechProgress(played=["It rained."], playing="we stayed in and read")
    assert progress.heard_text == "It rained."
    progress.playing_share = 0.4
    assert progress.heard_text == "It rained. we stayed"
    progress.playing_share = 1.0
    assert progress.heard_text == "It rained. we stayed in and read"
    assert SpeechProgress().heard_text == ""
