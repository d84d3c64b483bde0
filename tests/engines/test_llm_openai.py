"""The OpenAI client against a real HTTP server process (tests/engines/openai_server.py)."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voice_companion.engines import ChatMessage, ChatModel
from voice_companion.engines.llm_openai import OpenAiChatModel
from voice_companion.errors import ConfigError, LlmError, LlmTimeoutError

SERVER = Path(__file__).with_name("openai_server.py")
MESSAGES = [
    ChatMessage("system", "You are a friendly companion. Answer in one short sentence."),
    ChatMessage("user", "Say hello."),
]
READ_TIMEOUT_S = 1.0


def _start(mode: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=30)
    if not ready:
        proc.kill()
        raise RuntimeError(f"the {mode} test server printed no port within 30 s")
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"the {mode} test server failed: {line!r} {err[-2000:]}")
    return proc, int(line)


@pytest.fixture(scope="module")
def server_url() -> Iterator[Callable[[str], str]]:
    """Starts each mode's server once for this module; kills them all at the end."""
    started: dict[str, tuple[subprocess.Popen[str], int]] = {}

    def url(mode: str) -> str:
        if mode not in started:
            started[mode] = _start(mode)
        return f"http://127.0.0.1:{started[mode][1]}/v1"

    yield url
    for proc, _port in started.values():
        proc.kill()
        proc.communicate(timeout=10)


def _client(url: str, api_key: str | None = "test-key") -> OpenAiChatModel:
    return OpenAiChatModel(
        url,
        "smollm2",
        api_key,
        connect_timeout_s=2.0,
        read_timeout_s=READ_TIMEOUT_S,
        max_reply_tokens=24,
        temperature=0.0,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.models
def test_real_tokens_stream(server_url: Callable[[str], str]) -> None:
    # The llama server loads a model first: give it a generous read timeout.
    client = OpenAiChatModel(server_url("llama"), "smollm2", "test-key", 2.0, 30.0, 24, 0.0)
    as_protocol: ChatModel = client
    pieces = list(as_protocol.stream(MESSAGES, threading.Event()))
    assert len(pieces) > 1
    assert all(pieces)
    assert "".join(pieces).strip()


@pytest.mark.models
def test_cancel_hangs_up(server_url: Callable[[str], str]) -> None:
    client = OpenAiChatModel(server_url("llama"), "smollm2", "test-key", 2.0, 30.0, 24, 0.0)
    cancel = threading.Event()
    stream = client.stream(MESSAGES, cancel)
    assert next(stream)
    cancel.set()
    assert list(stream) == []
    # The server survives a client that hung up mid-reply.
    assert list(client.stream(MESSAGES, threading.Event()))


@pytest.mark.models
def test_missing_api_key_is_reported(server_url: Callable[[str], str]) -> None:
    with pytest.raises(LlmError, match=r"HTTP 401.*api_key_env"):
        list(_client(server_url("llama"), api_key=None).stream(MESSAGES, threading.Event()))


def test_non_streamed_json_reply(server_url: Callable[[str], str]) -> None:
    assert list(_client(server_url("whole")).stream(MESSAGES, threading.Event())) == [
        "Hello whole."
    ]


def test_hanging_server_times_out(server_url: Callable[[str], str]) -> None:
    client = _client(server_url("hang"))
    started = time.monotonic()
    with pytest.raises(LlmTimeoutError, match="sent nothing for 1 s"):
        list(client.stream(MESSAGES, threading.Event()))
    assert time.monotonic() - started < READ_TIMEOUT_S + 1.5


def test_server_down() -> None:
    client = _client(f"http://127.0.0.1:{_free_port()}/v1")
    started = time.monotonic()
    with pytest.raises(LlmError, match=r"cannot reach the LLM server .*is it running\?"):
        list(client.stream(MESSAGES, threading.Event()))
    assert time.monotonic() - started < 1.0


def test_garbage(server_url: Callable[[str], str]) -> None:
    with pytest.raises(LlmError, match="not an OpenAI chat stream"):
        list(_client(server_url("garbage")).stream(MESSAGES, threading.Event()))


def test_server_error(server_url: Callable[[str], str]) -> None:
    with pytest.raises(LlmError, match=r"HTTP 500 .*model exploded") as info:
        list(_client(server_url("error")).stream(MESSAGES, threading.Event()))
    assert "\n" not in str(info.value)


def test_cancel_before_start_sends_nothing() -> None:
    cancel = threading.Event()
    cancel.set()
    # Nothing listens on this port: a request would fail, so none is made.
    client = _client(f"http://127.0.0.1:{_free_port()}/v1")
    assert list(client.stream(MESSAGES, cancel)) == []


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "localhost:11434", "http://:99/v1"])
def test_bad_base_url(url: str) -> None:
    with pytest.raises(ConfigError, match=r"llm\.base_url"):
        _client(url)


def test_https_to_a_plain_http_server(server_url: Callable[[str], str]) -> None:
    url = server_url("garbage").replace("http://", "https://")
    with pytest.raises(LlmError, match="TLS with the LLM server"):
        list(_client(url).stream(MESSAGES, threading.Event()))
