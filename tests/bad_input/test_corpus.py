"""The bad-input corpus (cases.toml): each case fed for real, each outcome checked.

Audio goes through the real command line (`transcribe`, `run --input` in a subprocess with
the bundled models), text through `say --output` (real piper, then real whisper listens to
the WAV) and through ``speakable``/``SentenceSplitter``, configuration through `--config`,
control requests through the real ``ControlServer`` on a unix socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import tomllib
import tracemalloc
import wave
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import REPO, SHIPPED_CONFIG, shipped_config, words
from tests.control.test_protocol import MALFORMED
from tests.engines import openai_server
from tests.test_cli import cli
from voice_companion import app
from voice_companion.audio.chunk import AudioChunk
from voice_companion.control.server import ControlServer
from voice_companion.dialogue.sentences import SentenceSplitter, speakable
from voice_companion.engines import Transcriber
from voice_companion.engines.decode import read_audio, write_wav
from voice_companion.events import Command, ReportStatus
from voice_companion.memory.store import MemoryDb, NewTurn

CASES: dict[str, list[dict[str, Any]]] = tomllib.loads(
    (Path(__file__).with_name("cases.toml")).read_text(encoding="utf-8")
)


def _ids(kind: str, *, needs: str) -> list[Any]:
    return [
        pytest.param(case, id=case["name"])
        for case in CASES[kind]
        if needs in case and "covered" not in case
    ]


# --- inputs, built at test time --------------------------------------------------------------


def _jfk(rate_hz: int = 16_000) -> AudioChunk:
    return read_audio(REPO / "tests" / "data" / "jfk.flac", rate_hz)


def _silence(path: Path) -> Path:
    write_wav(path, AudioChunk.silence(5.0, 16_000))
    return path


def _noise(path: Path) -> Path:
    noise = np.random.default_rng(11).normal(0, 6000, 16_000 * 5).clip(-32768, 32767)
    write_wav(path, AudioChunk(noise.astype(np.int16), 16_000))
    return path


def _clipped(path: Path) -> Path:
    loud = (_jfk().samples.astype(np.int32) * 8).clip(-32768, 32767).astype(np.int16)
    write_wav(path, AudioChunk(loud, 16_000))
    return path


def _rate_8k(path: Path) -> Path:
    write_wav(path, _jfk(8_000))
    return path


def _rate_96k(path: Path) -> Path:
    write_wav(path, _jfk(96_000))
    return path


def _surround(path: Path) -> Path:
    speech = _jfk(48_000).samples
    channels = np.zeros((len(speech), 6), dtype=np.int16)
    channels[:, 2] = speech  # front centre, where film and TV put dialogue
    with wave.open(str(path), "wb") as out:
        out.setnchannels(6)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes(channels.astype("<i2").tobytes())
    return path


def _thirty_minutes(path: Path) -> Path:
    speech = _jfk()
    write_wav(path, AudioChunk.concat([AudioChunk.silence(1800 - 11.0, 16_000), speech], 16_000))
    return path


def _truncated_header(path: Path) -> Path:
    whole = path.with_name("whole.wav")
    write_wav(whole, _jfk())
    path.write_bytes(whole.read_bytes()[:30])
    return path


def _truncated_body(path: Path) -> Path:
    data = (REPO / "tests" / "data" / "jfk.flac").read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def _random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(3).bytes(64 * 1024))
    return path


AUDIO_MAKERS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "silence": ("silent.wav", _silence),
    "noise": ("noise.wav", _noise),
    "clipped": ("clipped.wav", _clipped),
    "rate_8k": ("jfk-8k.wav", _rate_8k),
    "rate_96k": ("jfk-96k.wav", _rate_96k),
    "surround": ("jfk-5.1.wav", _surround),
    "thirty_minutes": ("thirty-minutes.wav", _thirty_minutes),
    "truncated_header": ("truncated-header.wav", _truncated_header),
    "truncated_body": ("truncated.flac", _truncated_body),
    "random_bytes": ("random.wav", _random_bytes),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def audio_input(case: dict[str, Any], folder: Path) -> Path:
    name, make = AUDIO_MAKERS[case["make"]]
    path = folder / name
    return path if path.exists() else make(path)


def check_failure(result: Any, outcome: dict[str, Any]) -> None:
    """The exit code, no traceback, and (for errors) one line saying what is wrong (after
    argparse's usage lines, with ``usage``)."""
    assert result.returncode == outcome["exit"], result.stderr
    assert "Traceback" not in result.stderr
    if "error" in outcome:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if outcome.get("usage"):
            assert lines[0].startswith("usage:"), result.stderr
            lines = lines[-1:]
        assert len(lines) == 1, result.stderr
        assert outcome["error"].lower() in lines[0].lower()


def check_words(text: str, outcome: dict[str, Any]) -> None:
    heard = set(words(text))
    assert set(outcome.get("words", [])) <= heard, text
    assert not set(outcome.get("absent", [])) & heard, text
    if "text" in outcome:
        assert text == outcome["text"]


# --- audio -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _ids("audio", needs="transcribe"))
def test_audio_through_transcribe(case: dict[str, Any], folder: Path, tmp_path: Path) -> None:
    outcome = case["transcribe"]
    result = cli(tmp_path, "transcribe", "--json", str(audio_input(case, folder)))
    check_failure(result, outcome)
    if outcome["exit"] == 0:
        check_words(json.loads(result.stdout)["text"], outcome)


@pytest.mark.parametrize("case", _ids("audio", needs="run"))
def test_audio_through_run(case: dict[str, Any], folder: Path, tmp_path: Path) -> None:
    outcome = case["run"]
    out, trace = tmp_path / "reply.wav", tmp_path / "trace.jsonl"
    source = audio_input(case, folder)
    result = cli(
        tmp_path, "run", "--input", str(source), "--output", str(out), "--trace", str(trace)
    )
    check_failure(result, outcome)
    if outcome["exit"] != 0:
        assert not out.exists()  # nothing half-written
        return
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert len([e for e in events if e["event"] == "turn_end"]) == outcome["turns"]
    transcript = " ".join(e["text"] for e in events if e["event"] == "transcript")
    check_words(transcript, outcome)
    if outcome["turns"]:
        assert read_audio(out).peak() > 1000  # a reply was spoken


@pytest.mark.parametrize("case", _ids("audio", needs="decode"))
def test_long_audio_decodes_in_bounded_memory(case: dict[str, Any], folder: Path) -> None:
    path = audio_input(case, folder)
    tracemalloc.start()
    try:
        chunk = read_audio(path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert chunk.duration_s == pytest.approx(1800, abs=0.1)
    # One buffer the size of the samples, not a list of pieces plus their concatenation.
    assert peak_bytes <= case["decode"]["max_peak_ratio"] * chunk.samples.nbytes, peak_bytes


# --- text ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    return app.build_transcriber(shipped_config(tmp_path_factory.mktemp("stt")))


@pytest.mark.parametrize("case", _ids("text", needs="speakable"))
def test_text_is_made_speakable(case: dict[str, Any]) -> None:
    splitter = SentenceSplitter(max_chars=160)
    pieces = [*splitter.feed(case["input"]), splitter.flush() or ""]
    assert " ".join(s for s in (speakable(p) for p in pieces) if s) == case["speakable"]


@pytest.mark.parametrize("case", _ids("text", needs="say"))
def test_text_through_say(case: dict[str, Any], tmp_path: Path, transcriber: Transcriber) -> None:
    outcome = case["say"]
    out = tmp_path / "said.wav"
    if case.get("stdin"):
        result = cli(tmp_path, "say", "-", "--output", str(out), stdin=case["input"])
    else:
        result = cli(tmp_path, "say", case["input"], "--output", str(out))
    check_failure(result, outcome)
    check_words(transcriber.transcribe(read_audio(out)).text, outcome)


VOCABULARY = "we could go for a walk by the river when the rain stops and talk"


def test_ten_thousand_characters_are_cut_into_bounded_pieces_losing_no_word() -> None:
    (case,) = [c for c in CASES["text"] if c.get("make") == "ten_thousand"]
    limit = case["pieces"]["max_chars"]
    rng = np.random.default_rng(2)
    text = " ".join(rng.choice(VOCABULARY.split(" "), 3000))[:10_000]
    splitter = SentenceSplitter(max_chars=limit)
    pieces: list[str] = []
    for start in range(0, len(text), 7):  # streamed in small pieces, as from a model
        pieces += splitter.feed(text[start : start + 7])
    pieces.append(splitter.flush() or "")
    assert all(len(piece) <= limit for piece in pieces)
    assert " ".join(pieces).split() == text.split()
    assert all(speakable(piece) == piece for piece in pieces if piece)


# --- configuration ---------------------------------------------------------------------------


def _config_file(case: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "companion.toml"
    match case.get("make"):
        case None:
            path.write_text(case["toml"], encoding="utf-8")
        case "latin1_config":
            path.write_bytes('[persona]\nname = "José"\n'.encode("latin-1"))
        case "missing_config":
            pass
        case "folder_config":
            path.mkdir()
        case "nested_config":  # tomllib parses nesting recursively
            path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("case", _ids("config", needs="outcome"))
def test_config_through_the_cli(case: dict[str, Any], tmp_path: Path) -> None:
    config = _config_file(case, tmp_path)
    result = cli(tmp_path, "transcribe", str(tmp_path / "x.wav"), config=config)
    check_failure(result, case["outcome"])


# --- the command line: arguments, encodings, files ------------------------------------------

LATIN1 = os.fsdecode(b"\xe9")
"""What Python makes of a byte that is not UTF-8 in argv or a file name (a lone surrogate)."""


def run_cli(
    tmp_path: Path,
    *args: str,
    stdin: bytes = b"",
    config: Path = SHIPPED_CONFIG,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """The real command line, bytes in and out (``tests.test_cli.cli`` decodes them)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    clean |= {"XDG_CONFIG_HOME": str(tmp_path / "xdg-config"), **(env or {})}
    head = ["--config", str(config), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [sys.executable, "-m", "voice_companion", *head, *args],
        input=stdin,
        capture_output=True,
        env=clean,
        cwd=REPO,
        timeout=300,
    )


def text_of(result: subprocess.CompletedProcess[bytes]) -> Any:
    """The result with stdout and stderr as text, for ``check_failure``."""
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def _negative_user_version(data: Path) -> None:
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    with sqlite3.connect(data / "memory.db") as conn:
        conn.execute("PRAGMA user_version = -1")
    (data / "memory.db").chmod(0o600)  # private, as ours are: the only line is the error


def _fifos(data: Path) -> None:
    for name in ("pipe.json", "pipe.toml"):
        os.mkfifo(data.parent / name)  # opened without a writer: a read would wait forever


def _empty_memory(data: Path) -> None:
    MemoryDb(data / "memory.db").close()


COMMAND_MAKERS: dict[str, Callable[[Path], None]] = {
    "negative_user_version": _negative_user_version,
    "empty_memory": _empty_memory,
    "fifos": _fifos,
}


@pytest.mark.parametrize("case", _ids("command", needs="outcome"))
def test_command_line(case: dict[str, Any], tmp_path: Path) -> None:
    if "make" in case:
        COMMAND_MAKERS[case["make"]](tmp_path / "data")
    fill = {"latin1": LATIN1, "tmp": tmp_path, "long": "x" * 300, "repo": REPO}
    args = [a.format(**fill) for a in case["args"]]
    check_failure(text_of(run_cli(tmp_path, *args)), case["outcome"])


def test_writing_to_a_fifo_keeps_the_fifo(tmp_path: Path) -> None:
    # Renaming a finished file over the target replaced the fifo with a regular file (and,
    # as root, /dev/null and /dev/zero themselves).
    fifo = tmp_path / "out.wav"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the writer's open() returns
    try:
        result = text_of(run_cli(tmp_path, "say", "Hi.", "--output", str(fifo)))
        check_failure(result, {"exit": 0})
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        data = os.read(reader, 1 << 16)  # "Hi." is about 30 KB: it fits the pipe's buffer
    finally:
        os.close(reader)
    assert data[:4] == b"RIFF" and len(data) > 10_000


@pytest.fixture
def model_server() -> Iterator[Callable[[str], Path]]:
    """A scripted OpenAI-compatible server process; returns a config file that uses it."""
    started: list[subprocess.Popen[str]] = []
    folder = Path(tempfile.mkdtemp(prefix="vc-bad-llm-"))

    def start(modes: str) -> Path:
        proc, port = openai_server.launch(modes)
        started.append(proc)
        config = folder / f"{modes}.toml"
        config.write_text(
            f'[llm]\nbackend = "openai"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
            'model = "smollm2"\n[memory]\ndense = false\n',
            encoding="utf-8",
        )
        return config

    yield start
    for proc in started:
        proc.kill()
        proc.communicate(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


def stored_turns(tmp_path: Path) -> list[str]:
    with MemoryDb(tmp_path / "data" / "memory.db") as db:
        return [t.text for t in db.turns(limit=100)]


def test_chat_takes_invalid_utf8_on_stdin_and_goes_on(
    tmp_path: Path, model_server: Callable[[str], Path]
) -> None:
    config = model_server("canned")
    lines = b"I went to the caf\xe9 today\nand then I went home\n"
    # Strict decoding, as under a UTF-8 desktop locale: the bad byte ended the session.
    result = text_of(
        run_cli(tmp_path, "chat", stdin=lines, config=config, env={"PYTHONIOENCODING": "utf-8"})
    )
    check_failure(result, {"exit": 0})
    assert result.stdout.splitlines() == [openai_server.CANNED] * 2, result.stderr
    said = stored_turns(tmp_path)
    assert "I went to the caf\ufffd today" in said and "and then I went home" in said


def test_chat_skips_a_message_too_long_and_goes_on(
    tmp_path: Path, model_server: Callable[[str], Path]
) -> None:
    # Read whole, a line without end (`chat < /dev/zero`) filled memory.
    config = model_server("canned")
    result = text_of(run_cli(tmp_path, "chat", stdin=b"x" * 40_000 + b"\nhello\n", config=config))
    check_failure(result, {"exit": 0})
    assert result.stdout.splitlines() == [openai_server.CANNED]
    refused = [line for line in result.stderr.splitlines() if "chat:" in line]
    assert refused == ["voice-companion: chat: a message longer than 16000 characters was skipped"]
    assert "hello" in stored_turns(tmp_path)


def test_say_reads_a_bounded_stdin(tmp_path: Path) -> None:
    head = ["--config", str(SHIPPED_CONFIG), "--data-dir", str(tmp_path / "data")]
    with open("/dev/zero", "rb") as zero:
        result = subprocess.run(
            [sys.executable, "-m", "voice_companion", *head, "say", "-", "--output", "o.wav"],
            stdin=zero,
            capture_output=True,
            timeout=120,
            cwd=tmp_path,
        )
    check_failure(text_of(result), {"exit": 2, "error": "more than 100000 characters on stdin"})


# Raw, these retitle the window, clear the screen, colour it (C1 CSI) and reverse the text.
HOSTILE = "Ma\x1b]0;owned\x07l\x1b[2Jic\x9b31me \u202eenob\u202c\x7f\r"
RAW = [b"\x1b", b"\x07", b"\r", b"\x7f", "\x9b".encode(), "\u202e".encode(), "\u202c".encode()]


def assert_no_raw_escapes(output: bytes) -> None:
    text = output.decode("utf-8")  # valid UTF-8, too
    assert not [raw for raw in RAW if raw in output], text
    assert "\\u001b" in text, text  # shown, not dropped


def test_persona_list_and_show_print_no_terminal_escapes(tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    data = {
        "name": HOSTILE,
        "description": f"Likes {HOSTILE}.",
        "personality": HOSTILE,
        "first_mes": f"Hello {HOSTILE}",
        "mes_example": "",
        "scenario": "",
    }
    card.write_text(json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": data}))
    imported = run_cli(tmp_path, "persona", "import", str(card), "--as", "mal")
    check_failure(text_of(imported), {"exit": 0})
    assert_no_raw_escapes(imported.stdout)
    for args in (["list"], ["show", "mal"], ["show", "mal", "--prompt"]):
        result = run_cli(tmp_path, "persona", *args)
        check_failure(text_of(result), {"exit": 0})
        assert_no_raw_escapes(result.stdout)
    as_json = run_cli(tmp_path, "persona", "show", "mal", "--json")
    assert not [raw for raw in RAW if raw in as_json.stdout]
    assert json.loads(as_json.stdout)["name"] == HOSTILE.strip()  # JSON still, unchanged


def test_memory_printers_print_no_terminal_escapes(tmp_path: Path) -> None:
    _ = stored_turns(tmp_path)  # creates memory.db
    with MemoryDb(tmp_path / "data" / "memory.db") as db:
        db.add_turn(NewTurn("c1", datetime.now(UTC), "user", f"zebra {HOSTILE}", "import"))
    for args in (["list"], ["show", "1"], ["search", "--mode", "bm25", "zebra"]):
        result = run_cli(tmp_path, "memory", *args)
        check_failure(text_of(result), {"exit": 0})
        assert_no_raw_escapes(result.stdout)
    as_json = run_cli(tmp_path, "memory", "list", "--json")
    assert not [raw for raw in RAW if raw in as_json.stdout]
    assert json.loads(as_json.stdout)["turns"][0]["text"] == f"zebra {HOSTILE}"


def test_chat_prints_no_terminal_escapes_from_the_model(
    tmp_path: Path, model_server: Callable[[str], Path]
) -> None:
    config = model_server("escapes")
    for args in (["chat"], ["chat", "--json"]):
        result = run_cli(tmp_path, *args, stdin=b"Say something odd.\n", config=config)
        check_failure(text_of(result), {"exit": 0})
        assert not [raw for raw in RAW if raw in result.stdout], result.stdout
    assert json.loads(result.stdout)["reply"] == " ".join(openai_server.ESCAPES.split())


def test_server_error_text_quoting_the_user_stays_out_of_the_log(
    tmp_path: Path, model_server: Callable[[str], Path]
) -> None:
    config = model_server("echo")  # HTTP 400 whose body quotes the request, latest first
    secret = b"My secret word is zanzibarquux and my sister is called Philomena.\n"
    result = text_of(run_cli(tmp_path, "chat", stdin=secret, config=config))
    check_failure(result, {"exit": 0})
    assert result.stdout.strip() == shipped_config(tmp_path).llm.apology  # answered
    assert "HTTP 400" in result.stderr  # what failed is said
    private = {"zanzibarquux", "philomena", "secret", "sister"}
    assert not private & set(words(result.stderr)), result.stderr
    # The server did quote them: -vv (DEBUG, which holds what was said) shows them.
    verbose = text_of(run_cli(tmp_path, "-vv", "chat", stdin=secret, config=config))
    assert "zanzibarquux" in verbose.stderr


# --- control socket --------------------------------------------------------------------------


@pytest.fixture
def socket_path() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="vc-bad-"))  # short: a unix socket path is limited
    yield folder / "control.sock"
    shutil.rmtree(folder, ignore_errors=True)


def test_each_malformed_request_is_refused_and_the_next_is_served(socket_path: Path) -> None:
    (case,) = [c for c in CASES["control"] if "outcome" in c]
    served: list[Command] = []

    async def handler(command: Command) -> dict[str, Any]:
        served.append(command)
        return {"state": "idle"}

    async def go() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        pairs = []
        async with ControlServer(socket_path, handler):
            reader, writer = await asyncio.open_unix_connection(socket_path)
            for line, _message in MALFORMED:
                writer.write(line.rstrip(b"\n") + b"\n" + b'{"cmd": "status"}\n')
                await writer.drain()
                bad = json.loads(await asyncio.wait_for(reader.readline(), 10))
                good = json.loads(await asyncio.wait_for(reader.readline(), 10))
                pairs.append((bad, good))
            writer.close()
            await writer.wait_closed()
        return pairs

    pairs = asyncio.run(asyncio.wait_for(go(), 60))
    assert len(pairs) == len(MALFORMED)
    for (bad, good), (_line, message) in zip(pairs, MALFORMED, strict=True):
        assert bad["ok"] is case["outcome"]["ok"] and message in bad["error"]
        assert good == {"ok": case["outcome"]["then_status_ok"], "state": "idle"}
    assert served == [ReportStatus()] * len(MALFORMED)  # no bad request reached the daemon


# --- the manifest itself ---------------------------------------------------------------------


def test_every_case_has_an_outcome_or_names_the_test_that_covers_it() -> None:
    outcomes = {"transcribe", "run", "decode", "speakable", "say", "pieces", "outcome"}
    assert set(CASES) == {"audio", "text", "config", "command", "escapes", "logs", "control"}
    for kind, cases in CASES.items():
        for case in cases:
            if "covered" in case:
                path, _, name = case["covered"].partition("::")
                assert f"def {name}(" in (REPO / path).read_text(encoding="utf-8"), case
            else:
                assert outcomes & set(case), (kind, case["name"])
            if "make" in case and kind == "audio":
                assert case["make"] in AUDIO_MAKERS
            if "make" in case and kind == "command":
                assert case["make"] in COMMAND_MAKERS
