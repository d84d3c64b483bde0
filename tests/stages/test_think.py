"""The think stage on its own: the model's pieces streamed from a thread within bounds the
model cannot move, and regrouped into sentences with the real splitter.

Scripted models (tests/fakes.py) make the timing and the words exact; the real SmolLM2 and a
real server process go through the same functions in tests/engines/test_llm_bounds.py, and
the whole turn in tests/test_session.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes import BrokenModel, EndlessModel, FailingModel, ScriptedModel, SlowScriptedModel
from voice_companion.dialogue.sentences import SentenceSplitter
from voice_companion.engines import ChatMessage
from voice_companion.errors import LlmError, LlmReplyCutError, LlmTimeoutError
from voice_companion.stages.think import (
    MAX_REPLY_CHARS,
    reply_char_limit,
    sentences,
    stream_pieces,
)

WAIT_S = 30.0
"""Upper bound on any one test (never a measurement)."""

MESSAGES = [ChatMessage("user", "Tell me something.")]


def collect(aiterator: AsyncIterator[str]) -> tuple[list[str], BaseException | None]:
    """Everything ``aiterator`` yields, and the error that ended it (None if it ended)."""

    async def go() -> tuple[list[str], BaseException | None]:
        got: list[str] = []
        try:
            async for item in aiterator:
                got.append(item)
        except LlmError as exc:
            return got, exc
        return got, None

    return asyncio.run(asyncio.wait_for(go(), WAIT_S))


@pytest.fixture(autouse=True)
def _model_threads_end() -> Iterator[None]:
    """Every model thread ends soon after its reply: none is left running."""
    yield
    deadline = time.monotonic() + 10
    while [t for t in threading.enumerate() if t.name == "llm-stream"]:
        assert time.monotonic() < deadline, "a model thread outlived its reply"
        time.sleep(0.05)


# --- stream_pieces --------------------------------------------------------------------------


def test_the_pieces_come_in_order_and_the_stream_ends() -> None:
    got, error = collect(stream_pieces(ScriptedModel("One two three."), MESSAGES, 5.0))
    assert (got, error) == (["One ", "two ", "three. "], None)


def test_a_model_that_says_nothing_for_the_timeout_times_out() -> None:
    slow = SlowScriptedModel(["Too late."], delay_s=2.0)
    got, error = collect(stream_pieces(slow, MESSAGES, 0.2))
    assert got == [] and isinstance(error, LlmTimeoutError)
    assert "sent nothing for 0.2 s" in str(error)
    assert slow.ended.wait(10), "the model was not told to stop"


def test_a_reply_that_runs_past_its_deadline_ends_with_what_came() -> None:
    slow = SlowScriptedModel([f"Word {n}." for n in range(200)], delay_s=0.02)
    got, error = collect(stream_pieces(slow, MESSAGES, 5.0, reply_timeout_s=0.5))
    assert got and isinstance(error, LlmReplyCutError)
    assert "".join(got).startswith("Word 0. Word 1.")
    assert slow.ended.wait(10) and slow.yielded < len(slow.words)


def test_a_reply_with_nothing_by_its_deadline_is_a_timeout() -> None:
    slow = SlowScriptedModel(["Too late."], delay_s=2.0)
    got, error = collect(stream_pieces(slow, MESSAGES, 5.0, reply_timeout_s=0.2))
    assert got == [] and isinstance(error, LlmTimeoutError)
    assert "llm.reply_timeout_s" in str(error)


def test_the_piece_that_crosses_the_length_cap_is_trimmed_and_the_reply_cut() -> None:
    got, error = collect(stream_pieces(ScriptedModel("abc def ghi"), MESSAGES, 5.0, max_chars=6))
    assert "".join(got) == "abc de" and isinstance(error, LlmReplyCutError)
    got, error = collect(stream_pieces(EndlessModel(), MESSAGES, 5.0, max_chars=100))
    assert len("".join(got)) == 100 and isinstance(error, LlmReplyCutError)


def test_the_cap_follows_max_reply_tokens_up_to_a_hard_limit() -> None:
    assert reply_char_limit(48) == 48 * 8
    assert reply_char_limit(10**9) == MAX_REPLY_CHARS


def test_any_exception_from_the_model_is_an_llm_error_and_llm_errors_pass_as_they_are() -> None:
    got, error = collect(stream_pieces(FailingModel(), MESSAGES, 5.0))
    assert got == [] and type(error) is LlmError
    assert "RuntimeError" in str(error) and isinstance(error.__cause__, RuntimeError)
    own = LlmTimeoutError("the server went quiet")
    got, error = collect(stream_pieces(BrokenModel(["Hello "], own), MESSAGES, 5.0))
    assert got == ["Hello "] and error is own


def test_leaving_early_tells_the_model_to_stop() -> None:
    slow = SlowScriptedModel([f"Word {n}." for n in range(500)], delay_s=0.01)
    cancel = threading.Event()

    async def go() -> None:
        pieces = stream_pieces(slow, MESSAGES, 5.0, cancel)
        async for _ in pieces:
            break
        await pieces.aclose()

    asyncio.run(asyncio.wait_for(go(), WAIT_S))
    assert cancel.is_set()
    assert slow.ended.wait(10), "the model was not told to stop"
    assert slow.yielded < len(slow.words)


# --- sentences ------------------------------------------------------------------------------


def test_pieces_are_regrouped_into_sentences_as_soon_as_each_is_complete() -> None:
    pieces = stream_pieces(ScriptedModel("It rained all day. We stayed in and read."), MESSAGES, 5)
    got, error = collect(sentences(pieces, SentenceSplitter()))
    assert (got, error) == (["It rained all day.", "We stayed in and read."], None)


def test_words_that_wait_past_flush_after_are_said_as_they_are() -> None:
    """A model that dribbles words with no full stop: once they have waited ``flush_after_s``,
    the complete words are yielded before the next piece comes. The next piece is only sent
    once they have been received, so this cannot pass by waiting for it."""

    async def go() -> list[str]:
        received = asyncio.Event()

        async def pieces() -> AsyncIterator[str]:
            yield "I was thinking about the "
            await received.wait()
            yield "sea and the boats."

        got: list[str] = []
        async for sentence in sentences(pieces(), SentenceSplitter(), flush_after_s=0.2):
            got.append(sentence)
            received.set()
        return got

    got = asyncio.run(asyncio.wait_for(go(), WAIT_S))
    assert got == ["I was thinking about the", "sea and the boats."]


def test_without_flush_after_words_wait_for_the_sentence_end() -> None:
    async def pieces() -> AsyncIterator[str]:
        yield "I was thinking about the "
        await asyncio.sleep(0.3)
        yield "sea and the boats."

    got, error = collect(sentences(pieces(), SentenceSplitter(), flush_after_s=0.0))
    assert (got, error) == (["I was thinking about the sea and the boats."], None)


def test_a_first_piece_that_came_after_the_deadline_is_said_at_once() -> None:
    """The deadline of the first words counts from the start of the reply: on a clock where
    the first piece arrived long after it, its words are said without waiting for more."""
    times = iter([0.0, *[100.0] * 50])

    async def go() -> list[str]:
        more = asyncio.Event()

        async def pieces() -> AsyncIterator[str]:
            yield "Well, I suppose that "
            await more.wait()
            yield "it could be."

        got: list[str] = []
        async for sentence in sentences(
            pieces(), SentenceSplitter(), flush_after_s=1.0, clock=lambda: next(times)
        ):
            got.append(sentence)
            more.set()
        return got

    got = asyncio.run(asyncio.wait_for(go(), WAIT_S))
    assert got == ["Well, I suppose that", "it could be."]


def test_a_failed_reply_says_its_complete_words_before_the_error() -> None:
    broken = BrokenModel(["We could go to the sea", "side tomorrow if"], LlmError("gone"))
    got, error = collect(sentences(stream_pieces(broken, MESSAGES, 5.0), SentenceSplitter()))
    assert got == ["We could go to the seaside tomorrow"] and isinstance(error, LlmError)


def test_a_cut_reply_ends_at_its_last_complete_sentence() -> None:
    cut = BrokenModel(["It is late. We should", " go"], LlmReplyCutError("too long"))
    got, error = collect(sentences(stream_pieces(cut, MESSAGES, 5.0), SentenceSplitter()))
    assert got == ["It is late."] and isinstance(error, LlmReplyCutError)
    # With no complete sentence, the words that came are said.
    cut = BrokenModel(["We should go "], LlmReplyCutError("too long"))
    got, error = collect(sentences(stream_pieces(cut, MESSAGES, 5.0), SentenceSplitter()))
    assert got == ["We should go"] and isinstance(error, LlmReplyCutError)


def test_leaving_after_the_first_sentence_stops_the_model_now() -> None:
    """The consumer (a turn cancelled by barge-in) leaves after one sentence: the piece being
    awaited is cancelled and the stream's clean-up tells the model to stop at once."""
    slow = SlowScriptedModel([f"Sentence {n}." for n in range(500)], delay_s=0.01)
    cancel = threading.Event()

    async def go() -> str:
        spoken = sentences(stream_pieces(slow, MESSAGES, 5.0, cancel), SentenceSplitter())
        first = await anext(spoken)
        await spoken.aclose()
        return first

    assert asyncio.run(asyncio.wait_for(go(), WAIT_S)) == "Sentence 0."
    assert cancel.is_set()
    assert slow.ended.wait(10) and slow.yielded < len(slow.words)
