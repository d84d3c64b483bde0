"""Think: stream the model's reply from a worker thread, with timeouts, as sentences."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence

from voice_companion.dialogue.sentences import SentenceSplitter
from voice_companion.engines import ChatMessage, ChatModel
from voice_companion.errors import LlmError, LlmReplyCutError, LlmTimeoutError

log = logging.getLogger(__name__)

_DONE = object()

CHARS_PER_TOKEN = 8
"""A token is about 4 characters of English; twice that is a generous allowance."""
MAX_REPLY_CHARS = 65_536
"""No reply is longer than this, whatever ``llm.max_reply_tokens`` says."""
DEFAULT_REPLY_TIMEOUT_S = 60.0
"""``llm.reply_timeout_s``'s default, for callers without a configuration."""


def reply_char_limit(max_reply_tokens: int) -> int:
    """The longest reply accepted from a model asked for at most ``max_reply_tokens``."""
    return min(max_reply_tokens * CHARS_PER_TOKEN, MAX_REPLY_CHARS)


async def stream_pieces(
    model: ChatModel,
    messages: Sequence[ChatMessage],
    timeout_s: float,
    cancel: threading.Event | None = None,
    *,
    reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
    max_chars: int = MAX_REPLY_CHARS,
) -> AsyncIterator[str]:
    """Yield the model's text pieces as they come, within bounds the model cannot move.

    The model runs in a daemon thread of its own so that a hung server cannot hold an
    executor slot. Raises ``LlmTimeoutError`` when no piece arrives within ``timeout_s``
    (first piece or any gap) and whatever ``LlmError`` the model raised (any other exception
    from the model becomes an ``LlmError``: a malformed reply is a failed reply, not a
    crash). The reply ends after ``reply_timeout_s`` in all, or at ``max_chars`` characters
    (the last piece is trimmed): ``LlmReplyCutError`` once what came before has been yielded,
    or ``LlmTimeoutError`` if nothing came. Leaving early (the consumer stops) tells the model
    to stop; a turn that may be cancelled passes its own ``cancel`` and sets it, since a
    suspended generator is only finalised later.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancel = cancel or threading.Event()
    deadline = time.monotonic() + reply_timeout_s

    def put(item: object) -> None:
        # The loop may be gone if the turn was cancelled during shutdown (or close between
        # the check and the call: then there is nobody left to tell).
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            for piece in model.stream(messages, cancel):
                if cancel.is_set():
                    break
                put(piece)
        except Exception as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            put(_DONE)

    threading.Thread(target=work, name="llm-stream", daemon=True).start()
    chars = 0
    try:
        while True:
            remaining = deadline - time.monotonic()
            wait_s = min(timeout_s, remaining)
            try:
                # Not wait_for: on Python 3.11 it can swallow a cancellation (barge-in) that
                # arrives together with a piece, as it did in the microphone.
                async with asyncio.timeout(max(0.0, wait_s)):
                    item = await queue.get()
            except TimeoutError:
                if remaining > timeout_s:
                    raise LlmTimeoutError(f"the model sent nothing for {timeout_s:g} s") from None
                if not chars:
                    raise LlmTimeoutError(
                        f"the model said nothing within llm.reply_timeout_s = {reply_timeout_s:g} s"
                    ) from None
                raise LlmReplyCutError(
                    f"the reply took longer than llm.reply_timeout_s = {reply_timeout_s:g} s; "
                    "it ends with what came"
                ) from None
            if item is _DONE:
                return
            if isinstance(item, LlmError):
                raise item
            if isinstance(item, Exception):
                log.debug("the model failed", exc_info=item)
                raise LlmError(
                    f"the model failed ({type(item).__name__}); the reply was malformed"
                ) from item
            assert isinstance(item, str)
            if chars + len(item) > max_chars:
                # A server that ignores max_tokens: keep the allowed length, drop the rest.
                if piece := item[: max_chars - chars]:
                    chars += len(piece)
                    yield piece
                raise LlmReplyCutError(f"the reply went past {max_chars} characters; it ends there")
            chars += len(item)
            yield item
    finally:
        cancel.set()


async def sentences(
    pieces: AsyncIterator[str],
    splitter: SentenceSplitter,
    flush_after_s: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[str]:
    """Regroup streamed text into sentences as soon as each is complete.

    ``flush_after_s`` (0: off) bounds how long text may wait for a sentence end: once the
    first piece of the reply has been awaited that long since the reply began, or a later
    piece that long since its text arrived, the complete words that have come are yielded
    as they are. A model that dribbles words without punctuation is heard, not held.
    If ``pieces`` fails (``LlmError``), the complete words already received are yielded
    before the error is re-raised: the user hears the partial reply. A reply cut at its limit
    (``LlmReplyCutError``) ends at its last complete sentence instead, when it has one.
    """
    started = clock()
    pending_since: float | None = None
    emitted = False
    source = aiter(pieces)
    next_piece: asyncio.Task[object] | None = None

    def deadline() -> float | None:
        if not flush_after_s or not splitter.pending:
            return None
        since = pending_since if emitted and pending_since is not None else started
        return since + flush_after_s

    try:
        while True:
            if next_piece is None:
                next_piece = asyncio.ensure_future(_next_or_done(source))
            due = deadline()
            timeout = None if due is None else max(0.0, due - clock())
            done, _ = await asyncio.wait({next_piece}, timeout=timeout)
            if not done:
                # Waited long enough for a full stop: say the words that have come.
                if words := splitter.take_words():
                    emitted = True
                    pending_since = clock() if splitter.pending else None
                    yield words
                    continue
                # Only a fragment of a word so far: wait for the next piece itself.
                await asyncio.wait({next_piece})
            piece = next_piece.result()
            next_piece = None
            if piece is _DONE:
                break
            assert isinstance(piece, str)
            ready = splitter.feed(piece)
            if ready:
                emitted, pending_since = True, None
            for sentence in ready:
                yield sentence
            if splitter.pending and pending_since is None:
                pending_since = clock()
            due = deadline()
            if due is not None and clock() >= due and (words := splitter.take_words()):
                emitted = True
                pending_since = clock() if splitter.pending else None
                yield words
    except LlmError as exc:
        words = splitter.take_words()
        splitter.flush()
        if words and not (emitted and isinstance(exc, LlmReplyCutError)):
            yield words
        raise
    finally:
        if next_piece is not None and not next_piece.done():
            next_piece.cancel()
            # Awaited so that the stream's own clean-up (telling the model to stop) runs now.
            await asyncio.gather(next_piece, return_exceptions=True)
    rest = splitter.flush()
    if rest:
        yield rest


async def _next_or_done(source: AsyncIterator[str]) -> object:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return _DONE
