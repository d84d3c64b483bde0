"""Think: stream the model's reply from a worker thread, with timeouts, as sentences."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence

from voice_companion.dialogue.sentences import SentenceSplitter
from voice_companion.engines import ChatMessage, ChatModel
from voice_companion.errors import LlmError, LlmTimeoutError

_DONE = object()


async def stream_pieces(
    model: ChatModel,
    messages: Sequence[ChatMessage],
    timeout_s: float,
    cancel: threading.Event | None = None,
) -> AsyncIterator[str]:
    """Yield the model's text pieces as they come.

    The model runs in a daemon thread of its own so that a hung server cannot hold an
    executor slot. Raises ``LlmTimeoutError`` when no piece arrives within ``timeout_s``
    (first piece or any gap), and whatever ``LlmError`` the model raised. Leaving early (the
    consumer stops) tells the model to stop; a turn that may be cancelled passes its own
    ``cancel`` and sets it, since a suspended generator is only finalised later.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancel = cancel or threading.Event()

    def put(item: object) -> None:
        # The loop may be gone if the turn was cancelled during shutdown.
        if not loop.is_closed():
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
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout_s)
            except TimeoutError:
                raise LlmTimeoutError(f"the model sent nothing for {timeout_s:g} s") from None
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            assert isinstance(item, str)
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
    before the error is re-raised: the user hears the partial reply.
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
    except LlmError:
        words = splitter.take_words()
        splitter.flush()
        if words:
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
