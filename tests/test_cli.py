"""The command line as a user meets it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import JFK_TEXT, SHIPPED_CONFIG, word_error_rate, words
from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines.decode import read_audio, write_wav


def cli(
    tmp_path: Path,
    *args: str,
    stdin: str = "",
    config: Path | None = SHIPPED_CONFIG,
    timeout: float = 300,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    env.update(extra_env or {})
    head = ["--config", str(config)] if config else []
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "voice_companion",
            *head,
            "--data-dir",
            str(tmp_path / "data"),
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines, "an error must say something"
    return lines[-1]


def test_help_and_version(tmp_path: Path) -> None:
    result = cli(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("run", "chat", "say", "transcribe"):
        assert command in result.stdout
    assert cli(tmp_path, "run", "--help").returncode == 0
    assert cli(tmp_path, "--version").stdout.startswith("voice-companion ")
    assert cli(tmp_path).returncode == 2
    one_line_error(cli(tmp_path, "dance"), 2)


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[llm]\ntemperature = 'hot'\n")
    line = one_line_error(cli(tmp_path, "transcribe", "x.wav", config=bad), 2)
    assert "llm.temperature" in line and "'hot'" in line
    bad.write_text("[tts]\nvoice = '/nope/v.onnx'\n")
    assert "tts.voice" in one_line_error(cli(tmp_path, "transcribe", "x.wav", config=bad), 2)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    text = folder / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    empty = folder / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
    zero = folder / "zero.flac"
    zero.write_bytes(b"")
    return {
        "missing": folder / "nope.wav",
        "text": text,
        "empty": empty,
        "zero": zero,
        "folder": folder,
    }


@pytest.mark.parametrize("case", ["missing", "text", "empty", "zero", "folder"])
def test_unreadable_recordings_get_one_line_and_no_output(
    tmp_path: Path, bad_inputs: dict[str, Path], case: str
) -> None:
    out = tmp_path / "out.wav"
    result = cli(tmp_path, "run", "--input", str(bad_inputs[case]), "--output", str(out))
    line = one_line_error(result, 1)
    assert str(bad_inputs[case].name) in line
    assert not out.exists()
    one_line_error(cli(tmp_path, "transcribe", str(bad_inputs[case])), 1)


@pytest.mark.models
def test_run_answers_a_stereo_441_recording_with_trace(jfk_path: Path, tmp_path: Path) -> None:
    mono = read_audio(jfk_path, rate_hz=44_100).samples
    stereo = tmp_path / "jfk-stereo.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44_100)
        w.writeframes(np.stack([mono, mono // 2], axis=1).astype(np.int16).tobytes())
    out, trace = tmp_path / "reply.wav", tmp_path / "trace.jsonl"
    result = cli(
        tmp_path, "run", "--input", str(stereo), "--output", str(out), "--trace", str(trace)
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert all(isinstance(e["t"], float | int) for e in events)
    names = {e["event"] for e in events}
    assert {"speech_start", "speech_end", "transcript", "reply", "first_audio", "turn_end"} <= names
    transcript = next(e["text"] for e in events if e["event"] == "transcript")
    assert word_error_rate(JFK_TEXT, transcript) <= 0.10
    reply = read_audio(out)
    assert reply.duration_s > 0.5 and reply.peak() > 1000


@pytest.mark.models
def test_run_on_ten_minutes_answers_the_speech_in_it(jfk_path: Path, tmp_path: Path) -> None:
    speech = read_audio(jfk_path)
    long = AudioChunk.concat([AudioChunk.silence(589.0, 16_000), speech], 16_000)
    recording = tmp_path / "long.wav"
    write_wav(recording, long)
    out, trace = tmp_path / "out.wav", tmp_path / "trace.jsonl"
    result = cli(
        tmp_path, "run", "--input", str(recording), "--output", str(out), "--trace", str(trace)
    )
    assert result.returncode == 0, result.stderr
    transcripts = [json.loads(x) for x in trace.read_text().splitlines() if '"transcript"' in x]
    assert len(transcripts) == 1
    assert transcripts[0]["text"] and "country" in transcripts[0]["text"].lower()


@pytest.mark.models
def test_chat_reads_lines_and_prints_one_reply_per_line(tmp_path: Path) -> None:
    result = cli(tmp_path, "chat", "--json", stdin="Hi there!\n\nWhat is your name?\n")
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["you"] for r in replies] == ["Hi there!", "What is your name?"]
    assert all(r["reply"].strip() for r in replies)


@pytest.mark.models
def test_chat_says_sorry_when_the_server_is_down(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[llm]\nbackend = "openai"\nmodel = "m"\n'
        'base_url = "http://127.0.0.1:9/v1"\nconnect_timeout_s = 1.0\n'
    )
    result = cli(tmp_path, "chat", stdin="Hello?\n", config=config)
    assert result.returncode == 0, result.stderr
    assert "sorry" in result.stdout.lower()
    assert "Traceback" not in result.stderr


@pytest.mark.models
def test_say_speaks_what_it_is_given(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = cli(
        tmp_path, "say", "Hello 😊 there\x07, my friend. It's 3.5 degrees!", "--output", str(out)
    )
    assert result.returncode == 0, result.stderr
    from tests.conftest import shipped_config
    from voice_companion.app import build_transcriber

    heard = build_transcriber(shipped_config(tmp_path)).transcribe(read_audio(out)).text
    assert {"hello", "friend"} <= set(words(heard))


@pytest.mark.models
def test_say_long_text_and_nothing_to_say(tmp_path: Path) -> None:
    out = tmp_path / "long.wav"
    text = "This is a fairly long sentence for the voice to read aloud. " * 82  # ~5000 chars
    result = cli(tmp_path, "say", text[:5000], "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert read_audio(out).duration_s > 60
    nothing = cli(tmp_path, "say", "😊 \x01 ** ##", "--output", str(tmp_path / "n.wav"))
    assert "nothing to say" in one_line_error(nothing, 2)
    assert not (tmp_path / "n.wav").exists()


def test_the_xdg_config_file_is_read_when_no_config_is_given(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg-config" / "voice-companion"
    xdg.mkdir(parents=True)
    (xdg / "companion.toml").write_text("[stt]\nbeam_size = 0\n")
    line = one_line_error(cli(tmp_path, "transcribe", "x.wav", config=None), 2)
    assert "stt.beam_size = 0" in line and "companion.toml" in line


def test_service_install_writes_a_unit_that_systemd_accepts(tmp_path: Path) -> None:
    import shlex
    import shutil

    env_home = tmp_path / "xdg-config"
    result = cli(tmp_path, "service", "install", "--no-start")
    assert result.returncode == 0, result.stderr
    unit = env_home / "systemd" / "user" / "voice-companion.service"
    text = unit.read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text and "Restart=on-failure" in text
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    command = shlex.split(exec_line.removeprefix("ExecStart="))
    assert command[-1] == "run"
    # the command line it will run is this installation, with this config and data dir
    version = subprocess.run(
        [*command[:-1], "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("voice-companion ")
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
        )
        assert verify.returncode == 0, verify.stderr


def test_run_without_any_sound_device_says_so_in_one_line(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": "unix:/nonexistent/native"}
    result = cli(tmp_path, "run", extra_env=env)
    line = one_line_error(result, 1)
    assert "no audio" in line and "PulseAudio or PipeWire" in line


def test_control_commands_without_a_running_companion(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    for args in (("status",), ("ptt", "toggle"), ("mute",), ("say", "hello"), ("quit",)):
        result = cli(tmp_path, *args, extra_env={"XDG_RUNTIME_DIR": str(runtime)})
        assert "not running" in one_line_error(result, 1)


@pytest.mark.models
@pytest.mark.skipif(not shutil.which("script"), reason="needs util-linux script for a terminal")
def test_run_on_a_terminal_without_sound_offers_the_text_chat(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    command = shlex.join(
        [
            sys.executable,
            "-m",
            "voice_companion",
            "--config",
            str(SHIPPED_CONFIG),
            "--data-dir",
            str(tmp_path / "data"),
            "run",
        ]
    )
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "PULSE_SERVER": "unix:/nonexistent/native",
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
    }
    # `script` gives the companion a terminal; we type one line, then Ctrl-D.
    process = subprocess.Popen(
        ["script", "-q", "-c", command, "/dev/null"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None
    time.sleep(5)
    process.stdin.write(b"Hello there\n")
    process.stdin.flush()
    time.sleep(8)
    process.stdin.write(b"\x04")
    process.stdin.flush()
    out, _ = process.communicate(timeout=60)
    text = out.decode(errors="replace").replace("\r", "")
    assert "no audio input device" in text and "opening the text chat" in text
    assert "you: Hello there" in text
    replies = [line for line in text.splitlines() if line.startswith("Robin: ")]
    assert len(replies) >= 2  # the greeting and an answer
    assert process.returncode == 0
