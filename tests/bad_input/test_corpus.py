"""The bad-input corpus (cases.toml): each case fed for real, each outcome checked.

Audio goes through the real command line (`transcribe`, `run --input` in a subprocess with
the bundled models), text through `say --output` (real piper, then real whisper listens to
the WAV) and through ``speakable``/``SentenceSplitter``, configuration through `--config`,
control requests through the real ``ControlServer`` on a unix socket.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import tomllib
import tracemalloc
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import REPO, shipped_config, words
from tests.control.test_protocol import MALFORMED
from tests.test_cli import cli
from voice_companion import app
from voice_companion.audio.chunk import AudioChunk
from voice_companion.control.server import ControlServer
from voice_companion.dialogue.sentences import SentenceSplitter, speakable
from voice_companion.engines import Transcriber
from voice_companion.engines.decode import read_audio, write_wav
from voice_companion.events import Command, ReportStatus

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
    """The exit code, no traceback, and (for errors) one line saying what is wrong."""
    assert result.returncode == outcome["exit"], result.stderr
    assert "Traceback" not in result.stderr
    if "error" in outcome:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert outcome["error"].lower() in lines[0].lower()


def check_words(text: str, outcome: dict[str, Any]) -> None:
    heard = set(words(text))
    assert set(outcome.get("words", [])) <= heard, text
    assert not set(outcome.get("absent", [])) & heard, text
    if "text" in outcome:
        assert text == outcome["text"]


# --- audio -----------------------------------------------------------------------------------


@pytest.mark.models
@pytest.mark.parametrize("case", _ids("audio", needs="transcribe"))
def test_audio_through_transcribe(case: dict[str, Any], folder: Path, tmp_path: Path) -> None:
    outcome = case["transcribe"]
    result = cli(tmp_path, "transcribe", "--json", str(audio_input(case, folder)))
    check_failure(result, outcome)
    if outcome["exit"] == 0:
        check_words(json.loads(result.stdout)["text"], outcome)


@pytest.mark.models
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
    return path


@pytest.mark.parametrize("case", _ids("config", needs="outcome"))
def test_config_through_the_cli(case: dict[str, Any], tmp_path: Path) -> None:
    config = _config_file(case, tmp_path)
    result = cli(tmp_path, "transcribe", str(tmp_path / "x.wav"), config=config)
    check_failure(result, case["outcome"])


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
    for kind, cases in CASES.items():
        for case in cases:
            if "covered" in case:
                path, _, name = case["covered"].partition("::")
                assert f"def {name}(" in (REPO / path).read_text(encoding="utf-8"), case
            else:
                assert outcomes & set(case), (kind, case["name"])
            if "make" in case and kind == "audio":
                assert case["make"] in AUDIO_MAKERS
