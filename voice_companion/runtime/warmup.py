"""The warm-up: each model run once before the companion reports ready, so that the first
turn is as fast as the tenth. Nothing is recorded."""

from __future__ import annotations

import logging

from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.engines import ChatMessage, ChatModel
from voice_companion.runtime.turn import Engines

log = logging.getLogger(__name__)

WARM_UP_TEXT = "Hello there."
"""Spoken, heard and answered once before the companion reports ready."""


def warm_up(
    engines: Engines, dialogue: Dialogue, reply_pieces: int = 4, timeout_s: float = 15.0
) -> float:
    """Run each model once so that the first turn is as fast as the tenth: one sentence of
    speech synthesis, speech-to-text on that sentence, and a few tokens of a reply to the
    real system prompt (which leaves the persona's prefix in llama.cpp's cache). The model
    gets ``timeout_s`` (``llm.warm_up_timeout_s``; 0: it is skipped): a server that drips or
    never answers delays start-up by that much, not more. Nothing is recorded in the
    dialogue. Returns the seconds spent."""
    import time

    from voice_companion.audio.chunk import STT_RATE_HZ as rate
    from voice_companion.engines.resample import resample
    from voice_companion.errors import CompanionError

    started = time.monotonic()
    try:
        speech = engines.synthesizer.synthesize(WARM_UP_TEXT)
        engines.transcriber.transcribe(resample(speech, rate))
    except CompanionError as exc:  # a cold first turn is slower, not broken
        log.warning("warm-up failed (the first reply may be slow): %s", exc)
    if timeout_s > 0:
        _warm_model(engines.model, dialogue.messages_for(WARM_UP_TEXT), reply_pieces, timeout_s)
    spent = time.monotonic() - started
    log.info("models warmed up in %.2f s", spent)
    return spent


def _warm_model(
    model: ChatModel, messages: list[ChatMessage], reply_pieces: int, timeout_s: float
) -> None:
    """A few pieces of a reply, in a thread of their own so that the wait is bounded."""
    import threading

    from voice_companion.errors import CompanionError

    cancel, done = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        stream = None
        try:
            stream = model.stream(messages, cancel)
            for n, _piece in enumerate(stream, 1):
                if n >= reply_pieces or cancel.is_set():
                    break
        except Exception as exc:
            failure.append(exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            done.set()

    thread = threading.Thread(target=work, name="llm-warm-up", daemon=True)
    thread.start()
    finished = done.wait(timeout_s)
    cancel.set()  # the model hangs up (or stops at its next token)
    if not finished:
        log.warning(
            "the language model did not answer the warm-up within %g s "
            "(llm.warm_up_timeout_s); going on, the first reply may be slow",
            timeout_s,
        )
        thread.join(2.0)
    elif failure and isinstance(failure[0], CompanionError):
        log.warning("warm-up failed (the first reply may be slow): %s", failure[0])
    elif failure:
        log.warning(
            "warm-up failed with %s (the first reply may be slow)", type(failure[0]).__name__
        )
        log.debug("warm-up failed", exc_info=failure[0])
