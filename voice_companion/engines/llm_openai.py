"""A chat model behind an OpenAI-compatible HTTP server (Ollama, llama-server, vLLM, ...).

Only the standard library is used: one HTTP/1.1 request per reply, read as server-sent
events. ``connect_timeout_s`` bounds the TCP (and TLS) connect; ``read_timeout_s`` bounds
every single wait for bytes, so a server that stops talking fails within that time.
``reply_timeout_s`` bounds the whole reply and ``max_reply_chars`` its length, whatever the
server does (a byte at a time, keep-alives only, headers that never end, ignoring
``max_tokens``): one watchdog thread hangs up a connection whose reply ran out of time or was
cancelled, so a blocked read ends at once and no reader thread or socket is left behind.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from voice_companion.engines import ChatMessage
from voice_companion.errors import ConfigError, LlmError, LlmReplyCutError, LlmTimeoutError

log = logging.getLogger(__name__)

_MAX_LINE_BYTES = 1 << 20
"""Longest event line accepted; junk without newlines must not fill memory."""
_EXCERPT_CHARS = 200
_NOT_A_STREAM = "the LLM server sent something that is not an OpenAI chat stream"


class OpenAiChatModel:
    """Streams chat replies from ``{base_url}/chat/completions`` (satisfies ``ChatModel``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_reply_tokens: int,
        temperature: float,
        reply_timeout_s: float = 60.0,
        max_reply_chars: int | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"llm.base_url = {base_url!r}: expected an http:// or https:// URL, "
                "for example http://127.0.0.1:11434/v1"
            )
        try:
            self._port = parts.port
        except ValueError as exc:
            raise ConfigError(f"llm.base_url = {base_url!r}: the port is not a number") from exc
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._path = parts.path.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_reply_tokens = max_reply_tokens
        self.temperature = temperature
        self.reply_timeout_s = reply_timeout_s
        # About 8 characters a token: generous, yet a reply that ignores max_tokens stops.
        self.max_reply_chars = max_reply_chars or min(max_reply_tokens * 8, 65_536)

    @property
    def url(self) -> str:
        return self.base_url + "/chat/completions"

    def stream(self, messages: Sequence[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        """Yield reply pieces as they arrive; stop and hang up once ``cancel`` is set.

        ``cancel`` is checked between received lines: a server that is silently thinking
        is interrupted at the next line or, at worst, after ``read_timeout_s``.
        """
        if cancel.is_set():
            return
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "stream": True,
                "max_tokens": self.max_reply_tokens,
                "temperature": self.temperature,
            }
        ).encode("utf-8")
        conn = self._connect()
        watch = _WATCHDOG.watch(conn, cancel, time.monotonic() + self.reply_timeout_s)
        chars = 0
        try:
            for piece in self._pieces(conn, body, cancel):
                if chars + len(piece) > self.max_reply_chars:
                    if kept := piece[: self.max_reply_chars - chars]:
                        yield kept
                    raise LlmReplyCutError(
                        f"the LLM server at {self.url} sent more than {self.max_reply_chars} "
                        "characters (it ignores max_tokens?); the reply ends there"
                    )
                chars += len(piece)
                yield piece
            if watch.expired:  # the end of the body was our hang-up
                raise self._too_slow(chars)
        except LlmError as exc:
            if watch.expired:
                raise self._too_slow(chars) from exc
            if watch.hung_up:
                return  # cancelled: the hang-up is ours, not the server's failure
            raise
        finally:
            _WATCHDOG.unwatch(watch)
            conn.close()  # also how a cancelled stream tells the server to stop generating

    def _pieces(
        self, conn: http.client.HTTPConnection, body: bytes, cancel: threading.Event
    ) -> Iterator[str]:
        response = self._post(conn, body)
        content_type = response.getheader("Content-Type", "").lower()
        if content_type.startswith("application/json"):
            # A server that ignores stream=true answers with one whole completion.
            yield from _whole_reply(self._read_all(response))
            return
        yield from self._events(response, cancel)

    def _too_slow(self, chars: int) -> LlmError:
        if chars:
            return LlmReplyCutError(
                f"the LLM server at {self.url} took longer than llm.reply_timeout_s = "
                f"{self.reply_timeout_s:g} s over the reply; it ends with what came"
            )
        return LlmTimeoutError(
            f"the LLM server at {self.url} said nothing within llm.reply_timeout_s = "
            f"{self.reply_timeout_s:g} s"
        )

    def _connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=self.connect_timeout_s,
                context=ssl.create_default_context(),
            )
        else:
            conn = http.client.HTTPConnection(
                self._host, self._port, timeout=self.connect_timeout_s
            )
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise LlmTimeoutError(
                f"cannot reach the LLM server at {self.url}: no connection within "
                f"{self.connect_timeout_s:g} s (is it running?)"
            ) from exc
        except ssl.SSLError as exc:
            conn.close()
            raise LlmError(f"TLS with the LLM server at {self.url} failed: {exc}") from exc
        except OSError as exc:
            conn.close()
            raise LlmError(
                f"cannot reach the LLM server at {self.url}: {exc.strerror or exc} (is it running?)"
            ) from exc
        assert conn.sock is not None
        # From here on each blocking read waits at most read_timeout_s.
        conn.sock.settimeout(self.read_timeout_s)
        return conn

    def _post(self, conn: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
        except TimeoutError as exc:
            raise self._timeout() from exc
        except (OSError, http.client.HTTPException) as exc:
            raise LlmError(f"the LLM server at {self.url} dropped the request: {exc}") from exc
        if response.status != 200:
            excerpt = self._excerpt(response)
            raise LlmError(
                f"the LLM server at {self.url} answered HTTP {response.status} "
                f"{response.reason}{_status_hint(response.status)}: {excerpt}"
            )
        return response

    def _events(self, response: http.client.HTTPResponse, cancel: threading.Event) -> Iterator[str]:
        data_lines: list[str] = []
        while not cancel.is_set():
            line = self._read_line(response)
            if line is None:  # end of the body without [DONE]: take what came
                if data_lines:
                    yield from _event_pieces("\n".join(data_lines))
                return
            if line == "":
                # A blank line ends one event (SSE); its data lines form one JSON document.
                if data_lines:
                    payload = "\n".join(data_lines)
                    data_lines = []
                    if payload.strip() == "[DONE]":
                        return
                    for piece in _event_pieces(payload):
                        if cancel.is_set():
                            return
                        yield piece
                continue
            if line.startswith(":"):
                continue  # an SSE comment, used as a keep-alive
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                if value.strip() == "[DONE]" and not data_lines:
                    return
                data_lines.append(value)
            elif field not in ("event", "id", "retry"):
                raise LlmError(f"{_NOT_A_STREAM}: {_clip(line)!r}")

    def _read_line(self, response: http.client.HTTPResponse) -> str | None:
        try:
            raw = response.readline(_MAX_LINE_BYTES + 1)
        except TimeoutError as exc:
            raise self._timeout() from exc
        except (OSError, http.client.HTTPException) as exc:
            raise LlmError(f"the LLM server at {self.url} broke off the reply: {exc}") from exc
        if not raw:
            return None
        if len(raw) > _MAX_LINE_BYTES:
            raise LlmError(f"{_NOT_A_STREAM}: a line longer than {_MAX_LINE_BYTES} bytes")
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise LlmError(f"{_NOT_A_STREAM}: bytes that are not UTF-8") from exc

    def _read_all(self, response: http.client.HTTPResponse) -> bytes:
        try:
            return response.read(16 * _MAX_LINE_BYTES)
        except TimeoutError as exc:
            raise self._timeout() from exc
        except (OSError, http.client.HTTPException) as exc:
            raise LlmError(f"the LLM server at {self.url} broke off the reply: {exc}") from exc

    def _excerpt(self, response: http.client.HTTPResponse) -> str:
        try:
            raw = response.read(4 * _EXCERPT_CHARS)
        except (OSError, http.client.HTTPException):
            return "(no body)"
        text = " ".join(raw.decode("utf-8", errors="replace").split())
        return _clip(text) or "(no body)"

    def _timeout(self) -> LlmTimeoutError:
        return LlmTimeoutError(
            f"the LLM server at {self.url} sent nothing for {self.read_timeout_s:g} s; "
            "it may be overloaded (raise llm.read_timeout_s) or stuck"
        )


class _Watched:
    """One stream under the watchdog's eye."""

    def __init__(self, conn: http.client.HTTPConnection, cancel: threading.Event, deadline: float):
        self.conn, self.cancel, self.deadline = conn, cancel, deadline
        self.hung_up = False
        self.expired = False

    def hang_up(self, expired: bool) -> None:
        self.expired, self.hung_up = expired, True
        sock = self.conn.sock
        if sock is not None:
            # shutdown, not close: the reading thread's blocked recv returns at once, and the
            # descriptor is closed by that thread, so it cannot be reused under it. The plain
            # socket's shutdown: SSLSocket's drops its TLS state under the reader's feet.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread for every stream: hangs up on those cancelled or out of time.

    A cancelled reader otherwise stays blocked in a read (inside http.client, where the
    cancel flag is not looked at) for as long as the server keeps dripping bytes.
    """

    POLL_S = 0.05

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._streams: set[_Watched] = set()
        self._thread: threading.Thread | None = None

    def watch(
        self, conn: http.client.HTTPConnection, cancel: threading.Event, deadline: float
    ) -> _Watched:
        watched = _Watched(conn, cancel, deadline)
        with self._lock:
            self._streams.add(watched)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llm-watchdog", daemon=True)
                self._thread.start()
            self._lock.notify()
        return watched

    def unwatch(self, watched: _Watched) -> None:
        with self._lock:
            self._streams.discard(watched)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._streams:
                    self._lock.wait()
                streams = list(self._streams)
            now = time.monotonic()
            for watched in streams:
                if watched.hung_up:
                    continue
                if watched.cancel.is_set():
                    watched.hang_up(expired=False)
                elif now >= watched.deadline:
                    watched.hang_up(expired=True)
            time.sleep(self.POLL_S)


_WATCHDOG = _Watchdog()


def _event_pieces(payload: str) -> Iterator[str]:
    """The reply text inside one ``data:`` event (nothing for role-only or usage events)."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise LlmError(f"{_NOT_A_STREAM}: {_clip(payload)!r}") from exc
    if isinstance(event, dict) and "error" in event:
        raise LlmError(f"the LLM server reported an error: {_error_text(event['error'])}")
    choices = event.get("choices") if isinstance(event, dict) else None
    if not isinstance(choices, list):
        raise LlmError(f"{_NOT_A_STREAM}: {_clip(payload)!r}")
    if not choices:
        return  # e.g. a final usage-only event
    choice = choices[0]
    delta = choice.get("delta", {}) if isinstance(choice, dict) else None
    if not isinstance(delta, dict):
        raise LlmError(f"{_NOT_A_STREAM}: {_clip(payload)!r}")
    content = delta.get("content")
    if content is not None and not isinstance(content, str):
        raise LlmError(f"{_NOT_A_STREAM}: {_clip(payload)!r}")
    if content:
        yield content


def _whole_reply(raw: bytes) -> Iterator[str]:
    try:
        event: Any = json.loads(raw)
        if isinstance(event, dict) and "error" in event:
            raise LlmError(f"the LLM server reported an error: {_error_text(event['error'])}")
        content = event["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        raise LlmError(f"{_NOT_A_STREAM}: {_clip(raw.decode('utf-8', 'replace'))!r}") from exc
    if not isinstance(content, str):
        raise LlmError(f"{_NOT_A_STREAM}: the message content is not text")
    if content:
        yield content


def _error_text(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return _clip(error["message"])
    return _clip(str(error))


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return " (check the API key named by llm.api_key_env)"
    if status == 404:
        return " (check llm.base_url and llm.model)"
    return ""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"
