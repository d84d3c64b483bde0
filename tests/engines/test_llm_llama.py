from __future__ import annotations

import threading
from pathlib import Path

import pytest

from voice_companion.engines import ChatMessage, ChatModel
from voice_companion.engines.llm_llama import LlamaChatModel
from voice_companion.errors import LlmError, ModelNotFoundError

MESSAGES = [
    ChatMessage("system", "You are a friendly companion. Answer in one short sentence."),
    ChatMessage("user", "What colour is the sky on a clear day?"),
]


def test_streams_a_reply(llama: LlamaChatModel) -> None:
    as_protocol: ChatModel = llama
    pieces = list(as_protocol.stream(MESSAGES, threading.Event()))
    assert len(pieces) > 1
    assert all(pieces)
    assert "".join(pieces).strip()


def test_cancel_stops_early(llama: LlamaChatModel) -> None:
    cancel = threading.Event()
    stream = llama.stream(
        [ChatMessage("user", "Count slowly from one to one hundred, one number per line.")],
        cancel,
    )
    first = next(stream)
    assert first
    cancel.set()
    assert list(stream) == []
    # The lock was released: the model answers again right away.
    assert list(llama.stream(MESSAGES, threading.Event()))


def test_cancel_before_start_yields_nothing(llama: LlamaChatModel) -> None:
    cancel = threading.Event()
    cancel.set()
    assert list(llama.stream(MESSAGES, cancel)) == []


def test_prompt_longer_than_context(llama: LlamaChatModel) -> None:
    too_long = [ChatMessage("user", "word " * 1500)]
    with pytest.raises(LlmError, match=r"longer than llm\.context_tokens") as info:
        list(llama.stream(too_long, threading.Event()))
    assert "\n" not in str(info.value)


@pytest.mark.models
def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"definitely not a GGUF file" * 10)
    with pytest.raises(ModelNotFoundError, match=r"cannot be loaded by llama\.cpp"):
        LlamaChatModel(path, 256, 1, 8, 0.5)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such GGUF"):
        LlamaChatModel(tmp_path / "nope.gguf", 256, 1, 8, 0.5)


def test_concurrent_replies_are_serialized(llama: LlamaChatModel) -> None:
    replies: list[str] = []

    def ask() -> None:
        replies.append("".join(llama.stream(MESSAGES, threading.Event())))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert len(replies) == 2
    assert all(reply.strip() for reply in replies)


SYSTEM = ChatMessage("system", "You are Robin, a warm and curious companion. " * 4)


def talk(count: int) -> list[ChatMessage]:
    """``count`` history messages, user first, each long enough to matter to the cache."""
    return [
        ChatMessage("user" if n % 2 == 0 else "assistant", f"This is message {n} of our talk, "
                    f"about the weather and the garden and the cat number {n}.")
        for n in range(count)
    ]  # fmt: skip


def first_piece(llama: LlamaChatModel, messages: list[ChatMessage]) -> None:
    """Evaluate the prompt and stop after the reply's first piece."""
    stream = llama.stream(messages, threading.Event())
    next(stream, None)
    stream.close()  # type: ignore[attr-defined]


def test_a_sliding_history_keeps_the_prompt_cache(llama: LlamaChatModel) -> None:
    turns = talk(8)
    first_piece(llama, [SYSTEM, *turns[0:7]])
    # The oldest exchange leaves the window; the rest is unchanged, one exchange is new.
    slid = [SYSTEM, *turns[2:8], ChatMessage("user", "And what about tomorrow?")]
    first_piece(llama, slid)
    evaluated = llama.last_prompt_tokens - llama.last_cached_tokens
    assert llama.last_cached_tokens > 0.6 * llama.last_prompt_tokens
    assert evaluated < 0.4 * llama.last_prompt_tokens


def test_the_last_exchange_stays_cached_when_its_context_message_and_oldest_turn_leave(
    llama: LlamaChatModel,
) -> None:
    """Next turn, the prompt loses two blocks (the oldest history turn, the last context
    message) and keeps the last exchange: only the new context and words are evaluated."""
    system, history = SYSTEM, talk(6)
    words = ChatMessage("user", "My sister is getting married next month, in a small garden.")
    context = ChatMessage("user", "From earlier conversations: “I love gardens,” said the user.")
    reply = "".join(llama.stream([system, *history, context, words], threading.Event()))
    assert reply.strip()

    new_context = ChatMessage("user", "From earlier conversations: “My sister is Ana.”")
    new_words = ChatMessage("user", "What should I give her?")
    slid = [system, *history[2:], words, ChatMessage("assistant", reply), new_context, new_words]
    first_piece(llama, slid)

    evaluated = llama.last_prompt_tokens - llama.last_cached_tokens
    new_tokens = sum(
        len(llama._llama.tokenize(m.content.encode(), add_bos=False))
        for m in (new_context, new_words)
    )
    # The new text, and the chat template's few markers around it (and after the reply).
    assert new_tokens <= evaluated <= new_tokens + 16
