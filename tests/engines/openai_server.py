"""A small OpenAI-compatible chat server for the client tests, run as its own process.

Usage: ``python openai_server.py MODE`` with MODE one of
  llama    streams real tokens from the bundled SmolLM2 as server-sent events (chunked);
           requires ``Authorization: Bearer test-key`` and answers 401 otherwise
  whole    answers one non-streamed JSON completion (a server that ignores stream=true)
  hang     reads the request and never answers
  garbage  answers 200 with text that is not an event stream
  error    answers 500
It binds 127.0.0.1 on an ephemeral port and prints the port on stdout once it is ready.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-key"
_stop = threading.Event()


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "model": "smollm2",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        mode = self.server.mode
        try:
            if mode == "hang":
                _stop.wait(3600)
            elif mode == "garbage":
                self._send(200, "text/html", b"<html><body>It works!</body></html>\n" * 3)
            elif mode == "error":
                self._send(500, "application/json", b'{"error": "model exploded"}')
            elif mode == "whole":
                body = {
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "Hello whole."}}
                    ]
                }
                self._send(200, "application/json", json.dumps(body).encode())
            elif self.headers.get("Authorization") != f"Bearer {API_KEY}":
                self._send(401, "application/json", b'{"error": "bad api key"}')
            else:
                self._stream_llama(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up, e.g. after cancelling

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream_llama(self, request: dict[str, Any]) -> None:
        from voice_companion.engines import ChatMessage

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
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

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode = mode
        self.model: Any = None
        if mode == "llama":
            from voice_companion.engines import bundled
            from voice_companion.engines.llm_llama import LlamaChatModel

            self.model = LlamaChatModel(bundled.smollm2_gguf_path(), 1024, 1, 24, temperature=0.0)


def main() -> None:
    mode = sys.argv[1]
    if mode not in ("llama", "whole", "hang", "garbage", "error"):
        sys.exit(f"unknown mode {mode!r}")
    server = Server(mode)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
