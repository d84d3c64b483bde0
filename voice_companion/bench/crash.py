"""`bench crash`: kill -9 at random moments during a stream of turns; nothing confirmed is lost.

Each run starts a real ``voice-companion chat --json`` process on one data folder, feeds it
turns one at a time (the next once the reply to the last is printed) and kills it with SIGKILL
at a random moment: while it starts, while it writes the user's words, while it waits for the
model, while it writes the reply. Then, from a separate connection, as the next process would
find the file: every turn whose reply was printed must be in memory.db (the user's words, and
the reply right after them in the same conversation), and ``PRAGMA integrity_check`` must say
ok. The next run starts on the same file.

The language model is a scripted OpenAI-compatible server (a thread in this process, or any
``base_url`` given): the store is what is under test, and a real model would only make each
run slower. Dense embeddings are off for the same reason (their model takes longer to load than
a run lasts); the rest of the write path, facts included, is the real one.

The kill moments come from a seeded generator: the same seed gives the same moments (the
process's own timing still varies from run to run).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import selectors
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from voice_companion.errors import CrashBenchError
from voice_companion.private import private_dir

log = logging.getLogger(__name__)

SAYINGS = (
    "My sister Ana lives in Porto",
    "I had a long day at work and my feet hurt",
    "I love coffee in the morning",
    "Tomorrow I have a dentist appointment",
    "My friend Tom called me about the concert",
    "I think I will cook pasta tonight",
    "The train was late again this morning",
    "I am reading a book about the ocean",
)
"""What the user says, with a run and turn tag added so that every turn is unique."""
REPLY_WAIT_S = 30.0
"""Longest wait for one reply before a run counts as stuck."""
CALIBRATION_TURNS = 3
START_SHARE = 0.3
"""Share of the kills aimed at the process's start (opening and recovering the database)."""
TURNS_AFTER_FIRST = 12
"""The other kills land within this many turns' time after the first reply."""


@dataclass
class Run:
    """One process life: what was sent, what was confirmed, and what the store held after."""

    kill_after_s: float
    sent: int = 0
    confirmed: list[tuple[str, str]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    integrity: str = ""
    in_flight: bool = False
    """Killed with a turn sent and its reply not printed yet."""
    first_reply_s: float | None = None
    """Seconds from the process start to its first printed reply."""


@dataclass
class CrashReport:
    runs: list[Run]
    seed: int
    start_window_s: float
    """Kills aimed at the start land within this long of it (median over the run)."""
    turn_window_s: float
    """The others land within this long after the first reply."""
    seconds: float
    store_turns: int

    @property
    def confirmed(self) -> int:
        return sum(len(r.confirmed) for r in self.runs)

    @property
    def lost(self) -> list[str]:
        return [text for r in self.runs for text in r.lost]

    @property
    def integrity_failures(self) -> list[str]:
        return [r.integrity for r in self.runs if r.integrity != "ok"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": len(self.runs),
            "seed": self.seed,
            "turns_sent": sum(r.sent for r in self.runs),
            "turns_confirmed": self.confirmed,
            "turns_lost": len(self.lost),
            "lost": self.lost[:20],
            "integrity_ok": sum(1 for r in self.runs if r.integrity == "ok"),
            "integrity_failures": self.integrity_failures[:20],
            "killed_mid_turn": sum(1 for r in self.runs if r.in_flight and r.confirmed),
            "killed_before_first_reply": sum(1 for r in self.runs if not r.confirmed),
            "start_window_s": round(self.start_window_s, 3),
            "turn_window_s": round(self.turn_window_s, 3),
            "store_turns": self.store_turns,
            "seconds": round(self.seconds, 2),
        }


# -- a scripted OpenAI-compatible server -------------------------------------------------------


class _ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            messages = json.loads(body or b"{}").get("messages", [])
            last = str(messages[-1].get("content", "")) if messages else ""
        except (ValueError, AttributeError):
            last = ""
        tag = re.search(r"\(run \d+ turn \d+\)", last)
        pieces = ["Noted ", tag.group(0) if tag else "(no tag)", ". Tell me more."]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for piece in pieces:
                self._chunk({"choices": [{"index": 0, "delta": {"content": piece}}]})
            self._chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            self._write(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the chat process was killed mid-reply: that is the point

    def _chunk(self, event: dict[str, Any]) -> None:
        self._write(b"data: " + json.dumps(event).encode() + b"\n\n")

    def _write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-request resets the connection: expected here


@contextmanager
def scripted_llm() -> Iterator[str]:
    """An OpenAI-compatible server on 127.0.0.1 whose reply names the turn it answers; yields
    its base URL."""
    server = _ScriptedServer(("127.0.0.1", 0), _ScriptedHandler)
    thread = threading.Thread(target=server.serve_forever, name="scripted-llm", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- one process life --------------------------------------------------------------------------


def write_config(path: Path, base_url: str) -> None:
    """The chat's configuration: the scripted model, word search only."""
    path.write_text(
        "[llm]\n"
        'backend = "openai"\n'
        f'base_url = "{base_url}"\n'
        'model = "scripted"\n'
        "connect_timeout_s = 5.0\n"
        "read_timeout_s = 20.0\n"
        "[memory]\n"
        "dense = false\n",
        encoding="utf-8",
    )


def _saying(run: int, turn: int) -> str:
    return f"{SAYINGS[(run + turn) % len(SAYINGS)]} (run {run} turn {turn})"


class _Chat:
    """A ``voice-companion chat --json`` process, fed one line at a time."""

    def __init__(self, command: list[str], stderr_path: Path) -> None:
        with stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._stdin = self.proc.stdin
        self._fd = self.proc.stdout.fileno()
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    def send(self, text: str) -> bool:
        try:
            self._stdin.write(text.encode() + b"\n")
            return True
        except (BrokenPipeError, OSError):
            return False

    def reply(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line, or None when the deadline passes first (or the output ends)."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            value = json.loads(line)
        except ValueError:
            raise CrashBenchError(
                f"the chat printed something that is not JSON: {line!r}"
            ) from None
        if not isinstance(value, dict):
            raise CrashBenchError(f"the chat printed something that is not an object: {line!r}")
        return value

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.end()

    def end(self, timeout_s: float = 30.0) -> int:
        self._selector.close()
        with suppress(OSError):
            self._stdin.close()
        code = self.proc.wait(timeout_s)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


def _command(config_path: Path, data_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "voice_companion", "--config", str(config_path),
        "--data-dir", str(data_dir), "-q", "chat", "--json",
    ]  # fmt: skip


def _calibrate(command: list[str], stderr_path: Path) -> tuple[float, float]:
    """One run without a kill: seconds to the first reply, and per later turn."""
    chat = _Chat(command, stderr_path)
    started = time.monotonic()
    times: list[float] = []
    try:
        for turn in range(CALIBRATION_TURNS):
            chat.send(_saying(0, turn))
            if chat.reply(time.monotonic() + REPLY_WAIT_S) is None:
                raise CrashBenchError(
                    f"the chat process gave no reply within {REPLY_WAIT_S:g} s; see {stderr_path}"
                )
            times.append(time.monotonic() - started)
    finally:
        chat.end()
    per_turn = (times[-1] - times[0]) / max(1, len(times) - 1)
    return times[0], per_turn


def _one_run(
    n: int, kill_after_s: float, after_first_reply: bool, command: list[str], stderr_path: Path
) -> Run:
    """Kill ``kill_after_s`` after the process started or, with ``after_first_reply``, after
    it printed its first reply."""
    run = Run(kill_after_s=kill_after_s)
    chat = _Chat(command, stderr_path)
    spawned = time.monotonic()
    kill_at = spawned + (REPLY_WAIT_S if after_first_reply else kill_after_s)
    turn = 0
    try:
        while time.monotonic() < kill_at:
            text = _saying(n, turn)
            if not chat.send(text):
                break
            run.sent += 1
            run.in_flight = True
            answer = chat.reply(kill_at)
            if answer is None:
                break
            run.in_flight = False
            if run.first_reply_s is None:
                run.first_reply_s = time.monotonic() - spawned
                if after_first_reply:
                    kill_at = time.monotonic() + kill_after_s
            if answer.get("you") != text:
                raise CrashBenchError(f"run {n}: a reply to {answer.get('you')!r}, not {text!r}")
            run.confirmed.append((text, str(answer.get("reply", ""))))
            turn += 1
    finally:
        alive = chat.proc.poll() is None
        chat.kill()
    if not alive:
        raise CrashBenchError(
            f"run {n}: the chat process ended by itself (exit {chat.proc.returncode}); "
            f"see {stderr_path}"
        )
    return run


def check_store(db_path: Path, run: Run) -> None:
    """What the next process finds: integrity, and every confirmed turn with its reply."""
    conn = sqlite3.connect(db_path, timeout=10, isolation_level=None)
    try:
        run.integrity = "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
        for you, reply in run.confirmed:
            rows = conn.execute(
                "SELECT id, conversation_id FROM turns WHERE speaker = 'user' AND text = ?",
                (you,),
            ).fetchall()
            found = False
            for turn_id, conversation in rows:
                after = conn.execute(
                    "SELECT speaker, text FROM turns WHERE conversation_id = ? AND id > ?"
                    " ORDER BY id LIMIT 1",
                    (conversation, turn_id),
                ).fetchone()
                if after and after[0] == "assistant" and after[1].split() == reply.split():
                    found = True
            if not found:
                run.lost.append(you)
    finally:
        conn.close()


def run(
    runs: int,
    work_dir: Path,
    seed: int | None = None,
    base_url: str | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> CrashReport:
    """Kill ``runs`` chat processes at random moments; check the store after each."""
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    rng = random.Random(seed)
    private_dir(work_dir)
    data_dir = work_dir / "data"
    config_path = work_dir / "companion.toml"
    stderr_path = work_dir / "chat-stderr.log"
    started = time.monotonic()
    with scripted_llm() as own_url:
        write_config(config_path, base_url or own_url)
        command = _command(config_path, data_dir)
        first_s, per_turn_s = _calibrate(command, stderr_path)
        progress(
            f"seed {seed}; first reply {first_s:.2f} s after start, then {per_turn_s:.3f} s "
            f"per turn"
        )
        done: list[Run] = []
        start_windows: list[float] = []
        starts = [first_s]
        turns_s = TURNS_AFTER_FIRST * per_turn_s
        for n in range(1, runs + 1):
            # A share of the kills land while the process starts (anywhere up to its usual
            # first reply, which follows the machine's load); the others land at a random
            # moment within the next few turns after its first reply, timed from that reply.
            if rng.random() < START_SHARE:
                start_windows.append(statistics.median(starts[-25:]))
                moment = rng.uniform(0.0, start_windows[-1])
                one = _one_run(n, moment, False, command, stderr_path)
            else:
                one = _one_run(n, rng.uniform(0.0, turns_s), True, command, stderr_path)
            if one.first_reply_s is not None:
                starts.append(one.first_reply_s)
            check_store(data_dir / "memory.db", one)
            done.append(one)
            if one.lost or one.integrity != "ok":
                progress(f"run {n}: lost {one.lost}, integrity {one.integrity!r} (seed {seed})")
            if n % 50 == 0 or n == runs:
                progress(f"{n}/{runs} runs, {sum(len(r.confirmed) for r in done)} turns confirmed")
    conn = sqlite3.connect(data_dir / "memory.db")
    try:
        store_turns = int(conn.execute("SELECT count(*) FROM turns").fetchone()[0])
    finally:
        conn.close()
    start_window_s = statistics.median(start_windows) if start_windows else first_s
    return CrashReport(done, seed, start_window_s, turns_s, time.monotonic() - started, store_turns)
