"""A chat model run in-process by llama.cpp (llama-cpp-python) from a GGUF file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from voice_companion.engines import ChatMessage
from voice_companion.errors import LlmError, LlmTimeoutError, ModelNotFoundError

log = logging.getLogger(__name__)

_BUSY_TIMEOUT_S = 120.0
"""How long a new reply waits for an earlier, unfinished one to be closed or to finish."""
SHIFT_MIN_TOKENS = 32
"""Cached tokens worth keeping by shifting the cache when a block left the prompt's middle."""


class LlamaChatModel:
    """Streams chat replies from a local GGUF model (satisfies ``ChatModel``).

    One ``Llama`` object lives as long as this adapter, so llama.cpp reuses the KV cache
    for the prompt prefix shared with the previous turn (system prompt and history). When
    blocks leave the prompt (the oldest history turn as the window slides, the last turn's
    context message), the cached turns after them are kept too: the left blocks' tokens are
    removed from the cache and the rest shifted into place (llama.cpp's context shift), so a
    turn evaluates only what changed, not the whole history. ``last_prompt_tokens`` and
    ``last_cached_tokens`` tell how much was reused.
    """

    def __init__(
        self,
        model_path: Path,
        context_tokens: int,
        threads: int,
        max_reply_tokens: int,
        temperature: float,
        repeat_penalty: float = 1.1,
        batch_threads: int = 0,
    ) -> None:
        if not model_path.is_file():
            raise ModelNotFoundError(f"llm.model_path: no such GGUF file: {model_path}")
        self.model_path = model_path
        self.context_tokens = context_tokens
        self.max_reply_tokens = max_reply_tokens
        self.temperature = temperature
        self.repeat_penalty = repeat_penalty
        # llama.cpp contexts are not thread-safe; stages may call next() from any worker
        # thread, so a plain Lock (releasable from another thread) guards each whole reply.
        self._lock = threading.Lock()
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LlmError(
                f"llama-cpp-python cannot be imported ({exc}): run `make setup`"
            ) from exc
        # None: llama.cpp picks for this machine. ``threads`` generate the reply (the voice
        # runs beside them); ``batch_threads`` evaluate the prompt (nothing else runs then).
        n_threads = threads if threads > 0 else None
        n_batch_threads = batch_threads if batch_threads > 0 else n_threads
        try:
            self._llama: Any = Llama(
                model_path=str(model_path),
                n_ctx=context_tokens,
                n_threads=n_threads,
                n_threads_batch=n_batch_threads,
                verbose=False,
            )
        except ValueError as exc:
            raise ModelNotFoundError(
                f"llm.model_path: {model_path} cannot be loaded by llama.cpp (is it a GGUF "
                f"model file?): {_first_line(exc)}"
            ) from exc
        except Exception as exc:  # ctypes and llama.cpp failures have no common type
            raise LlmError(f"cannot load {model_path}: {_first_line(exc)}") from exc
        self.last_prompt_tokens = 0
        self.last_cached_tokens = 0
        generate = self._llama.generate

        def generate_reusing_cache(tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
            tokens = list(tokens)
            self._shift_cache(tokens)
            return generate(tokens, *args, **kwargs)

        # Our own Llama object: every completion it runs passes through the cache shift.
        self._llama.generate = generate_reusing_cache  # type: ignore[method-assign]

    def _shift_cache(self, tokens: list[int]) -> None:
        """Keep the cached runs the new prompt goes on with after the common prefix, with the
        blocks between them removed from the KV cache and what follows shifted into place
        (llama.cpp's context shift); llama.cpp then evaluates only the new tail.

        Two blocks leave a prompt between turns: the oldest history turn, when the window
        slides, and the last turn's context message (recollections, mood), which is not kept
        in the history. A shifted run's cache was computed beside the removed blocks (as in
        llama.cpp's own context shift): close enough for a chat model. A block *replaced*
        (new notes about the user) cannot be kept this way: llama.cpp only decodes at the end
        of a sequence."""
        llama = self._llama
        old = [int(t) for t in llama.input_ids[: llama.n_tokens]]
        prefix = _common_prefix(old, tokens)
        self.last_prompt_tokens, self.last_cached_tokens = len(tokens), prefix
        runs = _kept_runs(old, tokens, prefix) if prefix else []
        if not runs:
            return
        cursor, gap_start = prefix, prefix
        try:
            ctx = llama._ctx
            for start, run in runs:
                if not ctx.kv_cache_seq_rm(0, gap_start, start):
                    raise RuntimeError("llama.cpp cannot remove part of a sequence")
                ctx.kv_cache_seq_shift(0, start, start + run, cursor - start)
                llama.input_ids[cursor : cursor + run] = old[start : start + run]
                cursor, gap_start = cursor + run, start + run
            ctx.kv_cache_seq_rm(0, cursor, -1)
        except Exception as exc:  # an older llama.cpp without context shift: evaluate all
            log.debug("cannot shift the prompt cache: %s", exc)
            # llama.cpp's eval clears the cache from n_tokens on, shifted cells included.
            llama.n_tokens = prefix
            return
        llama.n_tokens = cursor
        self.last_cached_tokens = cursor

    def stream(self, messages: Sequence[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        """Yield reply pieces as llama.cpp produces them; stop quietly once ``cancel`` is set."""
        if cancel.is_set():
            return
        prompt = [{"role": m.role, "content": m.content} for m in messages]
        # A reply generator that was abandoned without close() keeps the lock; fail loudly
        # instead of waiting forever.
        if not self._lock.acquire(timeout=_BUSY_TIMEOUT_S):
            raise LlmTimeoutError(
                f"llama.cpp is still busy with an earlier reply after {_BUSY_TIMEOUT_S:g} s"
            )
        try:
            try:
                chunks = self._llama.create_chat_completion(
                    messages=prompt,
                    stream=True,
                    max_tokens=self.max_reply_tokens,
                    temperature=self.temperature,
                    repeat_penalty=self.repeat_penalty,
                )
            except Exception as exc:  # raised before streaming, e.g. a bad chat template
                raise self._wrap(exc) from exc
            try:
                while not cancel.is_set():
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        return
                    except Exception as exc:  # prompt too long, decode failure, ...
                        raise self._wrap(exc) from exc
                    piece = _delta_content(chunk)
                    if piece and not cancel.is_set():
                        yield piece
            finally:
                # Ends llama.cpp's generation now, still under the lock, instead of at GC.
                chunks.close()
        finally:
            self._lock.release()

    def _wrap(self, exc: Exception) -> LlmError:
        text = _first_line(exc)
        if "exceed context window" in text:
            return LlmError(
                f"the prompt is longer than llm.context_tokens = {self.context_tokens} "
                f"({text}); shorten the history or raise llm.context_tokens"
            )
        return LlmError(f"llama.cpp failed: {text}")


def _kept_runs(old: list[int], new: list[int], prefix: int) -> list[tuple[int, int]]:
    """Where the cached tokens ``old`` go on as ``new`` does after their common ``prefix``,
    each time a block of ``old`` is skipped: (start in ``old``, length) of each run."""
    runs: list[tuple[int, int]] = []
    at_old, at_new = prefix, prefix
    while (start := _block_end(old, new[at_new : at_new + SHIFT_MIN_TOKENS], at_old)) is not None:
        run = _common_prefix(old[start:], new[at_new:])
        runs.append((start, run))
        at_old, at_new = start + run, at_new + run
    return runs


def _block_end(old: list[int], probe: list[int], at: int) -> int | None:
    """The first index after ``at`` where ``old`` goes on with ``probe``, or None."""
    if len(probe) < SHIFT_MIN_TOKENS:
        return None
    return next(
        (
            i
            for i in range(at + 1, len(old) - SHIFT_MIN_TOKENS + 1)
            if old[i : i + SHIFT_MIN_TOKENS] == probe
        ),
        None,
    )


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _delta_content(chunk: Any) -> str:
    try:
        content = chunk["choices"][0]["delta"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    return content if isinstance(content, str) else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
