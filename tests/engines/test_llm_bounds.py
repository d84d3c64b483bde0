"""Replies bounded in length and time whatever the server does, against the real scripted
server process (tests/engines/openai_server.py): one that ignores max_tokens, drips words,
drips header bytes, sends only keep-alives or absurdly nested JSON."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import shipped_config
from tests.fakes import EndlessModel
from voice_companion import app
from voice_companion.engines import ChatMessage
from voice_companion.engines.llm_openai import OpenAiChatModel
from voice_companion.errors import LlmError, LlmReplyCutError, LlmTimeoutError
from voice_companion.runtime import runner

MESSAGES = [ChatMessage("user", "Say hello.")]
WAIT_S = 30.0


def _model(port: int, reply_timeout_s: float = 1.0, read_timeout_s: float = 5.0) -> OpenAiChatModel:
    return OpenAiChatModel(
        f"http://127.0.0.1:{port}/v1",
        "m",
        None,
        connect_timeout_s=2.0,
        read_timeout_s=read_timeout_s,
        max_reply_tokens=24,
        temperature=0.0,
        reply_timeout_s=reply_timeout_s,
    )


def _drain(model: OpenAiChatModel) -> tuple[str, BaseException | None]:
    pieces: list[str] = []
    try:
        for piece in model.stream(MESSAGES, threading.Event()):
            pieces.append(piece)
    except LlmError as exc:
        return "".join(pieces), exc
    return "".join(pieces), None


def test_a_server_that_ignores_max_tokens_is_cut_at_the_length_cap(
    server: Callable[[str], int],
) -> None:
    model = _model(server("huge"), reply_timeout_s=30.0)
    text, error = _drain(model)
    assert model.max_reply_chars == 24 * 8
    assert len(text) == model.max_reply_chars  # 11 MB were offered
    assert isinstance(error, LlmReplyCutError)


@pytest.mark.parametrize("mode", ["dripheaders", "keepalive"])
def test_a_server_that_never_gets_going_times_out_at_the_reply_deadline(
    server: Callable[[str], int], mode: str
) -> None:
    # Every byte comes well within the read timeout: only the whole-reply bound can end it.
    text, error = _drain(_model(server(mode), reply_timeout_s=1.0, read_timeout_s=5.0))
    assert text == ""
    assert isinstance(error, LlmTimeoutError)
    assert "reply_timeout_s = 1 s" in str(error)


def test_a_dripping_server_ends_with_what_came_at_the_reply_deadline(
    server: Callable[[str], int],
) -> None:
    text, error = _drain(_model(server("drip"), reply_timeout_s=1.5))
    assert text.startswith("Number 0 is here.")
    assert isinstance(error, LlmReplyCutError)


@pytest.mark.parametrize("mode", ["nested", "nestedwhole"])
def test_deeply_nested_json_is_a_malformed_reply(server: Callable[[str], int], mode: str) -> None:
    text, error = _drain(_model(server(mode), reply_timeout_s=30.0))
    assert text == ""
    assert isinstance(error, LlmError) and "not an OpenAI chat stream" in str(error)


def _counts() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def _grown(now: tuple[int, int], before: tuple[int, int]) -> bool:
    return now[0] > before[0] or now[1] > before[1]


def _settled() -> tuple[int, int]:
    """The counts once they have stayed the same for half a second (at most ``WAIT_S``)."""
    deadline = time.monotonic() + WAIT_S
    last = _counts()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _counts()
        if now == last:
            return now
        last = now
    return last


def test_twenty_turns_against_misbehaving_servers_leak_no_thread_or_socket(
    server: Callable[[str], int], tmp_path: Path
) -> None:
    port = server(",".join(["drip", "dripheaders", "keepalive"] * 7))
    config = shipped_config(
        tmp_path,
        VOICE_COMPANION_LLM_BACKEND="openai",
        VOICE_COMPANION_LLM_MODEL="m",
        VOICE_COMPANION_LLM_BASE_URL=f"http://127.0.0.1:{port}/v1",
        VOICE_COMPANION_LLM_REPLY_TIMEOUT_S="1.0",
        VOICE_COMPANION_MEMORY_ENABLED="false",
    )
    model = app.build_model(config)
    chat = runner.TextChat(config, model, app.build_dialogue(config))

    async def turn() -> str:
        pieces = [p async for p in chat.reply("Hello?")]
        return " ".join(pieces)

    def one_turn() -> str:
        return asyncio.run(asyncio.wait_for(turn(), WAIT_S))

    try:
        replies = [one_turn()]  # the first starts the client's one watchdog thread
        before = _settled()  # the first turn's hung-up reader may still be on its way out
        replies += [one_turn() for _ in range(20)]
        deadline = time.monotonic() + WAIT_S
        while _grown(_counts(), before) and time.monotonic() < deadline:
            time.sleep(0.05)  # a hung-up reader may need a moment to notice
        after = _counts()
    finally:
        chat.close()
    # A leak grows with the turns (before the fix: a thread and a socket each).
    assert not _grown(after, before), f"threads and fds: {before} before, {after} after 20 turns"
    # Every turn was answered (the words that came) or apologised for.
    apology = config.llm.apology
    assert replies[0].startswith("Number 0")
    assert replies[1] == apology and replies[2] == apology
    assert all(r for r in replies)


def test_the_limits_hold_for_any_model_in_the_think_stage() -> None:
    from voice_companion.stages.think import stream_pieces

    async def go() -> tuple[str, BaseException | None]:
        got: list[str] = []
        try:
            async for piece in stream_pieces(EndlessModel(), MESSAGES, 5.0, max_chars=100):
                got.append(piece)
        except LlmError as exc:
            return "".join(got), exc
        return "".join(got), None

    text, error = asyncio.run(asyncio.wait_for(go(), WAIT_S))
    assert len(text) == 100 and isinstance(error, LlmReplyCutError)
