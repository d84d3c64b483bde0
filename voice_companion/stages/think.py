"""Think: stream the model's reply from a worker thread, with timeouts, as sentences."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

from voice_companion.dialogue.sentences import SentenceSplitter
from voice_companion.engines import ChatMessage, ChatModel
from voice_companion.errors import LlmTimeoutError

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


async def sentences(pieces: AsyncIterator[str], splitter: SentenceSplitter) -> AsyncIterator[str]:
    """Regroup streamed text into sentences as soon as each is complete."""
    async for piece in pieces:
        for sentence in splitter.feed(piece):
            yield sentence
    rest = splitter.flush()
    if rest:
        yield rest
