"""Papercuts a new user met (issue 17), each as that user meets it: the real command line in
a subprocess, real files, a real sound server, a real daemon socket."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import cli, one_line_error
from voice_companion.engines.decode import read_audio

DEAD_LLM = (
    '[llm]\nbackend = "openai"\nmodel = "m"\n'
    'base_url = "http://127.0.0.1:9/v1"\nconnect_timeout_s = 1.0\n'
)


def personas(tmp_path: Path) -> Path:
    return tmp_path / "xdg-config" / "voice-companion" / "personas"


# -- global options -----------------------------------------------------------------------


def vc(tmp_path: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """The command line with nothing before the command: options go where the user puts them."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    clean |= {"XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}
    clean |= {"XDG_DATA_HOME": str(tmp_path / "xdg-data")}
    return subprocess.run(
        [sys.executable, "-m", "voice_companion", *args],
        input=stdin, capture_output=True, text=True, timeout=300, env=clean | env,
    )  # fmt: skip


def test_global_options_work_after_the_command_too(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    after = vc(tmp_path, "persona", "use", "morgan", "--data-dir", str(tmp_path / "after"), "-q",
               XDG_RUNTIME_DIR=str(runtime))  # fmt: skip
    assert after.returncode == 0, after.stderr
    assert (tmp_path / "after" / "persona").read_text().strip() == "morgan"
    # Before the command, as ever; and one given before is not undone by the subcommand.
    before = vc(tmp_path, "--data-dir", str(tmp_path / "before"), "persona", "use", "morgan",
                XDG_RUNTIME_DIR=str(runtime))  # fmt: skip
    assert before.returncode == 0, before.stderr
    assert (tmp_path / "before" / "persona").is_file()
    bad = tmp_path / "bad.toml"
    bad.write_text("[stt]\nbeam_size = 0\n")
    line = one_line_error(vc(tmp_path, "persona", "list", "--config", str(bad)), 2)
    assert "stt.beam_size = 0" in line and "bad.toml" in line


def test_chat_persona_talks_as_that_persona(tmp_path: Path, recording_server: str) -> None:
    from tests.engines.openai_server import received_prompts

    env = {
        "VOICE_COMPANION_LLM_BACKEND": "openai",
        "VOICE_COMPANION_LLM_BASE_URL": f"{recording_server}/v1",
        "VOICE_COMPANION_LLM_MODEL": "scripted",
        "VOICE_COMPANION_MEMORY_DENSE": "false",
    }
    result = cli(tmp_path, "chat", "--persona", "Morgan", "--json", stdin="Hi!\n", extra_env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reply"]
    system = received_prompts(recording_server)[-1]["messages"][0]["content"]
    assert "Morgan" in system and "Robin" not in system
    unknown = cli(tmp_path, "chat", "--persona", "Nobody", stdin="Hi!\n", extra_env=env)
    line = one_line_error(unknown, 2)
    assert "no persona called 'Nobody'" in line and "robin" in line


# -- persona create -----------------------------------------------------------------------


def test_create_with_an_unknown_voice_leaves_nothing_behind(tmp_path: Path) -> None:
    result = cli(tmp_path, "persona", "create", "--name", "Fern", "--voice", "alice")
    line = one_line_error(result, 1)
    assert "no voice named 'alice'" in line and "joe" in line and ".draft" not in line
    assert not personas(tmp_path).exists() or not any(personas(tmp_path).iterdir())
    assert "fern" not in cli(tmp_path, "persona", "list").stdout
    made = cli(tmp_path, "persona", "create", "--name", "Fern", "--voice", "joe-calm")
    assert made.returncode == 0, made.stderr
    again = one_line_error(cli(tmp_path, "persona", "create", "--name", "Fern"), 1)
    assert "exists already" in again and "--replace" in again and "--as" not in again


def test_the_wizard_checks_the_name_and_the_voice_when_asked(tmp_path: Path) -> None:
    assert cli(tmp_path, "persona", "create", "--name", "Fern").returncode == 0
    answers = [
        "Fern",  # taken: asked again at once, not after nine questions
        "Ivy", "", "", "", "", "",
        "alice",  # no such voice: asked again, with the voices listed
        "joe-lively", "", "", "n",
    ]  # fmt: skip
    result = cli(tmp_path, "persona", "create", stdin="\n".join(answers) + "\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "you have a persona called 'fern' already" in out
    assert out.index("already") < out.index("personality")  # the clash came first
    assert "joe-calm" in out and "joe-lively" in out  # the voices, listed where asked
    assert "no voice named 'alice'" in out
    assert "--as" not in out + result.stderr
    shown = json.loads(cli(tmp_path, "persona", "show", "ivy", "--json").stdout)
    assert shown["voice"].startswith("joe-lively")
    assert (personas(tmp_path) / "fern.toml").is_file()


# -- say and voices try -------------------------------------------------------------------


def test_say_refuses_an_output_name_that_is_not_wav(tmp_path: Path) -> None:
    for args in (("say", "hello"), ("voices", "try", "joe", "hello")):
        out = tmp_path / "x.mp3"
        line = one_line_error(cli(tmp_path, *args, "--output", str(out)), 2)
        assert "WAV" in line and "x.mp3" in line
        assert not out.exists()


@pytest.mark.models
def test_voices_try_takes_its_options_in_any_order(tmp_path: Path) -> None:
    first = tmp_path / "first.wav"
    later = tmp_path / "later.wav"
    sample = tmp_path / "sample.wav"
    a = cli(tmp_path, "voices", "try", "joe", "--output", str(first), "Hi there.")
    assert a.returncode == 0, a.stderr
    b = cli(tmp_path, "voices", "try", "--speed", "1.0", "joe", "Hi there.", "--output", str(later))
    assert b.returncode == 0, b.stderr
    c = cli(tmp_path, "voices", "try", "joe", "--output", str(sample))
    assert c.returncode == 0, c.stderr
    # The text given was spoken, not the (longer) sample sentence.
    short = read_audio(first).duration_s
    assert abs(short - read_audio(later).duration_s) < 0.2
    assert short < read_audio(sample).duration_s / 2


# -- memory search ------------------------------------------------------------------------


@pytest.mark.models
def test_memory_search_for_nonsense_finds_nothing(tmp_path: Path) -> None:
    from tests.memory.test_cli_memory import seed

    seed(tmp_path)
    assert json.loads(cli(tmp_path, "memory", "search", "zzzqqq", "--json").stdout) == []
    plain = cli(tmp_path, "memory", "search", "zzzqqq")
    assert plain.returncode == 0 and plain.stdout.strip() == "nothing found"
    # Found by meaning alone, above the floor: still a hit.
    hits = json.loads(cli(tmp_path, "memory", "search", "wedding plans", "--json").stdout)
    assert hits[0]["text"] == "My sister Ana is getting married in June."


# -- devices, status, service -------------------------------------------------------------


def test_devices_says_when_there_is_none(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": "unix:/nonexistent/native"}
    result = cli(tmp_path, "devices", extra_env=env)
    assert "no audio devices" in one_line_error(result, 1)
    assert result.stdout == ""


@pytest.mark.skipif(not shutil.which("pulseaudio"), reason="needs PulseAudio")
def test_devices_shows_the_sound_servers_own_devices(tmp_path: Path) -> None:
    from tests.live.pulse import PulseRig

    rig = PulseRig()
    rig.start()
    try:
        env = {k: v for k, v in rig.env.items() if not k.startswith("VOICE_COMPANION_")}
        result = subprocess.run(
            [sys.executable, "-m", "voice_companion", "--data-dir", str(tmp_path), "devices"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    finally:
        rig.stop()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("pulse" in line for line in lines)  # what PortAudio sees
    assert any("Null Output" in line and "(spk)" in line and "*" in line for line in lines)
    assert any("input" in line and "(mic)" in line for line in lines)
    assert not any("spk.monitor" in line for line in lines)


@pytest.mark.models  # the daemon it asks loads the model libraries (the fast lane refuses them)
def test_status_says_muted_and_names_the_persona(tmp_path: Path) -> None:
    from tests.runtime.test_daemon import ScriptedMicrophone, _daemon

    runtime = Path(tempfile_dir())
    socket = runtime / "voice-companion" / "control.sock"
    socket.parent.mkdir(mode=0o700)
    daemon, _ = _daemon(tmp_path, socket, ScriptedMicrophone())
    env = {"XDG_RUNTIME_DIR": str(runtime)}

    async def go() -> tuple[str, str]:
        running = asyncio.create_task(daemon.run())
        while not socket.exists():
            await asyncio.sleep(0.02)
        listening = await asyncio.to_thread(cli, tmp_path, "status", extra_env=env)
        await asyncio.to_thread(cli, tmp_path, "mute", extra_env=env)
        muted = await asyncio.to_thread(cli, tmp_path, "status", extra_env=env)
        await asyncio.to_thread(cli, tmp_path, "quit", extra_env=env)
        await asyncio.wait_for(running, 30)
        assert listening.returncode == 0 and muted.returncode == 0, muted.stderr
        return listening.stdout, muted.stdout

    try:
        listening, muted = asyncio.run(asyncio.wait_for(go(), 120))
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert "persona:    Robin" in listening and "persona:    Robin" in muted
    assert "microphone: listening" in listening
    assert "microphone: muted" in muted and "listening" not in muted


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="vc-")  # short: a socket path's length is limited


@pytest.mark.skipif(not shutil.which("systemctl"), reason="needs systemctl")
def test_service_status_without_a_user_bus_says_what_to_do(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
    line = one_line_error(cli(tmp_path, "service", "status", extra_env=env), 1)
    assert "Failed to connect to bus" in line and "desktop session" in line


def test_the_installed_unit_has_a_readable_header(tmp_path: Path) -> None:
    result = cli(tmp_path, "service", "install", "--no-start")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "xdg-config" / "systemd" / "user" / "voice-companion.service").read_text()
    with_command = [line for line in text.splitlines() if sys.executable in line]
    assert len(with_command) == 1 and with_command[0].startswith("ExecStart=")
    header = [line for line in text.splitlines() if line.startswith("#")][:2]
    assert "service install" in header[0] and "@EXEC@" not in text


# -- the chat on a terminal ---------------------------------------------------------------


@pytest.mark.models  # the chat's memory indexes the turn with MiniLM
@pytest.mark.skipif(not shutil.which("script"), reason="needs util-linux script for a terminal")
def test_log_lines_never_land_inside_the_companions_words(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(DEAD_LLM)  # the model fails mid-reply: a log line, and "Sorry, ..."
    command = shlex.join([sys.executable, "-m", "voice_companion", "--config", str(config),
                          "--data-dir", str(tmp_path / "data"), "chat"])  # fmt: skip
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_RUNTIME_DIR": str(tmp_path)}
    process = subprocess.Popen(
        ["script", "-q", "-c", command, "/dev/null"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None
    time.sleep(5)
    process.stdin.write(b"Hello there\n")
    process.stdin.flush()
    time.sleep(8)
    process.stdin.write(b"\x04")
    process.stdin.flush()
    out, _ = process.communicate(timeout=60)
    lines = out.decode(errors="replace").replace("\r", "").splitlines()
    replies = [line for line in lines if line.startswith("Robin: ")]
    assert any("Sorry" in line for line in replies), lines
    assert not any("voice-companion:" in line for line in replies), lines
    assert any(line.startswith("voice-companion: the language model failed") for line in lines)


@pytest.mark.skipif(not shutil.which("script"), reason="needs util-linux script for a terminal")
def test_ctrl_c_stops_the_reply_not_the_chat_and_quiet_hours_bring_no_greeting(
    tmp_path: Path,
) -> None:
    from tests.engines import openai_server

    server, port = openai_server.launch("dribble")  # a few words, then it stalls
    try:
        config = tmp_path / "c.toml"
        config.write_text(
            f'[llm]\nbackend = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
            '[care]\nquiet_hours = "00:00-00:00"\n'  # all day
        )
        command = shlex.join([sys.executable, "-m", "voice_companion", "--config", str(config),
                              "--data-dir", str(tmp_path / "data"), "chat"])  # fmt: skip
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "c"),
               "XDG_RUNTIME_DIR": str(tmp_path)}  # fmt: skip
        process = subprocess.Popen(
            ["script", "-q", "-c", command, "/dev/null"],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert process.stdin is not None
        time.sleep(5)
        process.stdin.write(b"Tell me a long story\n")
        process.stdin.flush()
        time.sleep(4)
        process.stdin.write(b"\x03")  # Ctrl-C while the reply is still coming
        process.stdin.flush()
        time.sleep(3)
        process.stdin.write(b"\x04")
        process.stdin.flush()
        out, _ = process.communicate(timeout=60)
    finally:
        server.kill()
        server.communicate(timeout=30)
    text = out.decode(errors="replace").replace("\r", "")
    lines = text.splitlines()
    assert process.returncode == 0, text
    assert "reply stopped" in text
    assert "you:" in text.split("reply stopped", 1)[1]  # the chat went on
    said = [line for line in lines if line.startswith("Robin: ")]
    assert said and "an AI" in said[0]  # the disclosure first
    assert not any(line.startswith("Robin: Hi") for line in lines)  # no greeting: quiet hours
