"""A small OpenAI-compatible chat server for the client tests, run as its own process.

Usage: ``python openai_server.py MODE[,MODE...] [PORT]`` with MODE one of
  llama    streams real tokens from the bundled SmolLM2 as server-sent events (chunked);
           requires ``Authorization: Bearer test-key`` and answers 401 otherwise
  whole    answers one non-streamed JSON completion (a server that ignores stream=true)
  hang     reads the request and never answers
  garbage  answers 200 with text that is not an event stream (an HTML page)
  error    answers 500
  badjson  an event stream whose first event is not JSON
  shape    an event stream of JSON events that are not chat chunks
  cut      streams a few words, then drops the connection mid-reply
  dribble  streams words slowly with no punctuation, then sends only keep-alive comments
           until ``GET /release`` (or 60 s), then the last words and [DONE]
  canned   streams ``CANNED``, three known sentences, word by word
  facts    streams ``FACTS``: fact lines as a capable model answers the fact extractor
  drip     streams "Number 0 is here. Number 1 is here. ..." a word every ``DRIP_S``, until
           the client leaves
  dripheaders  sends its status line and headers a byte every ``DRIP_S`` and never ends them
  keepalive    starts an event stream, then sends only keep-alive comments, forever
  nested   an event stream whose first event is JSON nested 100,000 deep
  nestedwhole  one non-streamed JSON completion nested 100,000 deep
  huge     ignores max_tokens: streams ``HUGE_CHARS`` characters of sentences at once
           ("Sentence 0 goes on. Sentence 1 goes on. ...")
  escapes  streams ``ESCAPES``: words with terminal escapes and bidi overrides in them
  echo     answers HTTP 400 quoting the request's messages, latest first, as some servers
           quote the request they refuse
``GET /requests`` answers the bodies of every chat request received so far, as a JSON list:
the prompts the model was really sent.
A list of modes scripts successive requests: the n-th request gets the n-th mode, and the
last mode repeats (``hang,llama``: the first request hangs, later ones are answered).
It binds 127.0.0.1 on PORT (default: an ephemeral one) and prints the port on stdout once
it is ready.
"""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from voice_companion.bench.reference_model import sse_chunk

API_KEY = "test-key"
MODES = (
    "llama",
    "whole",
    "hang",
    "garbage",
    "error",
    "badjson",
    "shape",
    "cut",
    "dribble",
    "canned",
    "drip",
    "dripheaders",
    "keepalive",
    "nested",
    "nestedwhole",
    "huge",
    "echo",
    "escapes",
    "facts",
)
DRIP_S = 0.2
NESTED = b"[" * 100_000 + b"]" * 100_000
HUGE_CHARS = 11_000_000
CANNED = "The sun is out today. This sentence will fail. The birds are singing."
FACTS = (
    "name | name | Margaret\nnickname | nickname | Maggie\nrelation | dog | Biscuit\n"
    "trait | dog | a brown spaniel\nallergy | allergy | peanuts\nhometown | hometown | Cork\n"
    "birthday | mother | 3rd of June\nwork | work | astronaut\nname | name | Admin"
)
DRIBBLE_FIRST = "well I was just thinking about what you told me earlier and"
DRIBBLE_REST = " it made me smile"
CUT_WORDS = "Let me tell you about my"
ESCAPES = "Hello \x1b]0;owned\x07there \x1b[2Jmy \u202efriend\u202c \x9b31mtoday."
_stop = threading.Event()
_released = threading.Event()


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse_chunk(delta, finish, model="smollm2")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def do_GET(self) -> None:
        if self.path == "/release":
            _released.set()
            self._send(200, "text/plain", b"released\n")
        elif self.path == "/requests":
            with self.server._lock:
                body = json.dumps(self.server.received).encode()
            self._send(200, "application/json", body)
        else:
            self._send(404, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        with self.server._lock:
            self.server.received.append(request)
        mode = self.server.next_mode()
        try:
            if mode == "hang":
                _stop.wait(3600)
            elif mode == "garbage":
                self._send(200, "text/html", b"<html><body>It works!</body></html>\n" * 3)
            elif mode == "error":
                self._send(500, "application/json", b'{"error": "model exploded"}')
            elif mode == "echo":
                said = [m.get("content", "") for m in request.get("messages", [])][::-1]
                echoed = {"error": {"message": f"cannot take {said}", "request": request}}
                self._send(400, "application/json", json.dumps(echoed).encode())
            elif mode == "whole":
                body = {
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "Hello whole."}}
                    ]
                }
                self._send(200, "application/json", json.dumps(body).encode())
            elif mode == "nestedwhole":
                self._send(200, "application/json", NESTED)
            elif mode == "dripheaders":
                self._drip_headers()
            elif mode in ("drip", "keepalive", "huge"):
                self._endless(mode)
            elif mode in (
                "badjson",
                "shape",
                "cut",
                "dribble",
                "canned",
                "nested",
                "escapes",
                "facts",
            ):
                self._scripted(mode)
            elif self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self._send(401, "application/json", b'{"error": "bad api key"}')
            else:
                self._stream_llama(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up, e.g. after cancelling

    def _scripted(self, mode: str) -> None:
        self._start_stream()
        if mode == "badjson":
            self._write(b'data: {"choices": [{"delta": {"content": "Hel\n\n')
        elif mode == "nested":
            self._write(b"data: " + NESTED + b"\n\n")
        elif mode == "shape":
            self._write(b'data: {"result": "Hello there, friend."}\n\n')
        elif mode == "cut":
            for word in CUT_WORDS.split(" "):
                self._write(_chunk({"content": word + " "}))
            # Gone mid-reply, without the chunked terminator: as if the server crashed.
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        elif mode == "dribble":
            for n, word in enumerate(DRIBBLE_FIRST.split()):
                self._write(_chunk({"content": (" " if n else "") + word}))
                time.sleep(0.15)
            # Stalled: only keep-alive comments, until the test sees the words were spoken.
            deadline = time.monotonic() + 60
            while not _released.wait(0.3) and time.monotonic() < deadline:
                self._write(b": keep-alive\n\n")
            self._write(_chunk({"content": DRIBBLE_REST}))
        elif mode == "escapes":
            for n, word in enumerate(ESCAPES.split(" ")):
                self._write(_chunk({"content": (" " if n else "") + word}))
        elif mode == "canned":
            for n, word in enumerate(CANNED.split()):
                self._write(_chunk({"content": (" " if n else "") + word}))
        elif mode == "facts":
            for line in FACTS.splitlines(keepends=True):
                self._write(_chunk({"content": line}))
        self._write(_chunk({}, finish="stop"))
        self._write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _drip_headers(self) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Padding: "
        for byte in head:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(DRIP_S)
        while not _stop.wait(DRIP_S):  # the header line never ends
            self.wfile.write(b"a")
            self.wfile.flush()

    def _endless(self, mode: str) -> None:
        self._start_stream()
        if mode == "huge":
            sent = n = 0
            while sent < HUGE_CHARS:
                text = "".join(f"Sentence {n + i} goes on. " for i in range(40))
                self._write(_chunk({"content": text}))
                sent, n = sent + len(text), n + 40
            self._write(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        n = 0
        while not _stop.wait(DRIP_S):
            if mode == "keepalive":
                self._write(b": keep-alive\n\n")
            else:
                word = f"Number {n // 4} is here.".split()[n % 4]
                self._write(_chunk({"content": ("" if n == 0 else " ") + word}))
                n += 1

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream_llama(self, request: dict[str, Any]) -> None:
        from voice_companion.engines import ChatMessage

        self._start_stream()
        messages = [ChatMessage(m["role"], m["content"]) for m in request["messages"]]
        self._write(_chunk({"role": "assistant"}))
        for piece in self.server.model.stream(messages, threading.Event()):
            self._write(_chunk({"content": piece}))
        self._write(_chunk({}, finish="stop"))
        self._write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, modes: list[str], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.modes = modes
        self.requests = 0
        self.received: list[Any] = []
        self._lock = threading.Lock()
        self.model: Any = None
        if "llama" in modes:
            from voice_companion.engines import bundled
            from voice_companion.engines.llm_llama import LlamaChatModel

            self.model = LlamaChatModel(bundled.smollm2_gguf_path(), 1024, 1, 24, temperature=0.0)

    def next_mode(self) -> str:
        with self._lock:
            mode = self.modes[min(self.requests, len(self.modes) - 1)]
            self.requests += 1
            return mode


def launch(modes: str, port: int = 0) -> tuple[subprocess.Popen[str], int]:
    """Start this server as its own process (for tests); returns it and its port."""
    proc = subprocess.Popen(
        [sys.executable, __file__, modes, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=60)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.isdigit():
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"the {modes} test server did not start: {line!r} {err[-2000:]}")
    return proc, int(line)


def main() -> None:
    modes = sys.argv[1].split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        sys.exit(f"unknown mode {unknown[0]!r}")
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    server = Server(modes, port)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()


def received_prompts(server: str) -> list[Any]:
    """The bodies of every chat request the server at ``server`` (``http://host:port``) got."""
    import urllib.request

    with urllib.request.urlopen(f"{server}/requests", timeout=10) as answer:
        return list(json.loads(answer.read()))
