"""Voices: the shipped definitions, the user's folder, `voices list|try`, speed and
expressiveness, with real piper (the bundled voice) and real faster-whisper listening back."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHIPPED_CONFIG, shipped_config
from voice_companion import app
from voice_companion.audio.chunk import AudioChunk
from voice_companion.engines import bundled
from voice_companion.engines.decode import read_audio
from voice_companion.engines.stt import WhisperTranscriber
from voice_companion.errors import ConfigError, ModelNotFoundError
from voice_companion.persona.voices import find_voice, list_voices, resolve_voice

TEXT = "Good morning. The garden looks lovely today."


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber("bundled", "en", beam_size=1, compute_type="int8", threads=2)


def heard(transcriber: WhisperTranscriber, audio: AudioChunk) -> set[str]:
    from voice_companion.engines.resample import resample

    text = transcriber.transcribe(resample(audio, 16_000)).text
    return set(re.findall(r"[a-z]+", text.lower()))


def run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, config: Path = SHIPPED_CONFIG
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    base["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    # No sound server unless a test brings one: `try` without --output must not reach a
    # real speaker by accident.
    base["PULSE_SERVER"] = "unix:/nonexistent/native"
    base.update(env or {})
    head = [sys.executable, "-m", "voice_companion", "--config", str(config)]
    return subprocess.run(
        [*head, "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=base,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "voices"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def add_bundled_copy(folder: Path, name: str, json_too: bool = True) -> Path:
    """The bundled model under another name, as a user adding a downloaded voice would."""
    model = bundled.piper_voice_path()
    (folder / f"{name}.onnx").symlink_to(model)
    if json_too:
        (folder / f"{name}.onnx.json").symlink_to(model.with_name(model.name + ".json"))
    return folder / f"{name}.onnx"


# --- speaking: real piper, heard back by real faster-whisper ------------------------------


def test_try_joe_into_a_wav_speaks_the_sample(
    tmp_path: Path, transcriber: WhisperTranscriber
) -> None:
    out = tmp_path / "x.wav"
    result = run(tmp_path, "voices", "try", "joe", "--output", str(out))
    assert result.returncode == 0, result.stderr
    audio = read_audio(out, 22_050)
    assert 1.5 < audio.duration_s < 8.0
    assert {"hello", "sound", "voice"} <= heard(transcriber, audio)


@pytest.mark.models
def test_speed_makes_it_shorter_or_longer(tmp_path: Path) -> None:
    durations = {}
    for speed in ("1.5", "0.75"):
        out = tmp_path / f"{speed}.wav"
        result = run(
            tmp_path, "voices", "try", "joe", TEXT, "--speed", speed,
            "--expressiveness", "0", "--output", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        durations[speed] = read_audio(out, 22_050).duration_s
    # Twice the pace; the length does not quite halve (0.58 measured: piper's pauses and the
    # one between sentences do not scale), but it is clearly shorter.
    assert durations["1.5"] < durations["0.75"] * 0.7


def test_expressiveness_zero_is_steady_and_above_zero_varies(
    tmp_path: Path, transcriber: WhisperTranscriber
) -> None:
    config = shipped_config(tmp_path)
    flat = app.build_synthesizer(config, app.voice_for(config, "joe", expressiveness=0.0))
    lively = app.build_synthesizer(config, app.voice_for(config, "joe", expressiveness=1.5))
    # piper's noise is not seeded: with none, the same text gives the same samples; with
    # some, two renderings of the same text differ.
    a, b = flat.synthesize(TEXT), flat.synthesize(TEXT)
    assert np.array_equal(a.samples, b.samples)
    c, d = lively.synthesize(TEXT), lively.synthesize(TEXT)
    assert not (len(c) == len(d) and np.array_equal(c.samples, d.samples))
    assert not (len(a) == len(c) and np.array_equal(a.samples, c.samples))
    # Still speech, either way.
    assert {"garden", "lovely"} <= heard(transcriber, a)
    assert {"garden", "lovely"} <= heard(transcriber, c)


# --- the user's folder ------------------------------------------------------------------


def test_a_users_onnx_is_picked_up_and_speaks(
    tmp_path: Path, transcriber: WhisperTranscriber
) -> None:
    add_bundled_copy(user_dir(tmp_path), "my-voice")
    listed = run(tmp_path, "voices", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    mine = rows["my-voice"]
    assert (mine["source"], mine["usable"], mine["language"], mine["quality"]) == (
        "user",
        True,
        "en_US",
        "medium",
    )
    assert mine["speakers"] == 1 and mine["definition"] is None
    out = tmp_path / "mine.wav"
    result = run(tmp_path, "voices", "try", "my-voice", TEXT, "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert {"garden", "lovely"} <= heard(transcriber, read_audio(out, 22_050))


def test_onnx_without_its_json_is_listed_unusable_and_try_fails_in_one_line(
    tmp_path: Path,
) -> None:
    add_bundled_copy(user_dir(tmp_path), "half", json_too=False)
    rows = {r["name"]: r for r in json.loads(run(tmp_path, "voices", "list", "--json").stdout)}
    assert rows["half"]["usable"] is False
    assert "half.onnx.json" in rows["half"]["problem"]
    human = run(tmp_path, "voices", "list")
    assert re.search(r"half .*UNUSABLE: .*half\.onnx\.json", human.stdout)
    line = one_line_error(run(tmp_path, "voices", "try", "half"), 1)
    assert "half.onnx.json" in line
    with pytest.raises(ModelNotFoundError, match=r"half\.onnx\.json"):
        find_voice("half", user_dir(tmp_path))


def test_unknown_name_exits_1_listing_the_voices(tmp_path: Path) -> None:
    line = one_line_error(run(tmp_path, "voices", "try", "nobody"), 1)
    assert "'nobody'" in line
    assert all(name in line for name in ("joe", "joe-calm", "joe-lively"))


def test_list_shows_the_shipped_voices(tmp_path: Path) -> None:
    result = run(tmp_path, "voices", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"joe", "joe-calm", "joe-lively"} <= set(rows)
    assert all(rows[n]["usable"] and rows[n]["source"] == "shipped" for n in rows)
    assert rows["joe-calm"]["speed"] < 1.0 < rows["joe-lively"]["speed"]
    human = run(tmp_path, "voices", "list")
    assert human.returncode == 0 and "joe-calm" in human.stdout


def test_the_users_voice_wins_a_name_clash(tmp_path: Path) -> None:
    folder = user_dir(tmp_path)
    add_bundled_copy(folder, "alba")
    (folder / "joe.toml").write_text('model = "alba.onnx"\nspeed = 1.5\ndescription = "mine"\n')
    joe = find_voice("joe", folder)
    assert (joe.source, joe.speed, joe.description) == ("user", 1.5, "mine")
    assert joe.model_path == folder / "alba.onnx"
    assert [v.name for v in list_voices(folder)].count("joe") == 1


def test_broken_definitions_are_listed_with_the_reason(tmp_path: Path) -> None:
    folder = user_dir(tmp_path)
    (folder / "fast.toml").write_text("speed = 9\n")
    (folder / "typo.toml").write_text('modle = "bundled"\n')
    (folder / "gone.toml").write_text('model = "nowhere.onnx"\n')
    (folder / "bad.toml").write_text("speed = [\n")
    voices = {v.name: v for v in list_voices(folder)}
    assert "speed = 9" in voices["fast"].problem
    assert "'modle'" in voices["typo"].problem
    assert "nowhere.onnx" in voices["gone"].problem
    assert "bad.toml" in voices["bad"].problem
    with pytest.raises(ModelNotFoundError, match=r"nowhere\.onnx"):
        find_voice("gone", folder)
    with pytest.raises(ConfigError, match=r"expected a number from 0\.5 to 2\.0"):
        find_voice("fast", folder)


# --- mapping onto piper's settings -------------------------------------------------------


def test_speed_and_expressiveness_map_around_the_voices_own_settings(tmp_path: Path) -> None:
    folder = user_dir(tmp_path)
    model = bundled.piper_voice_path()
    (folder / "own.onnx").symlink_to(model)
    description = json.loads(model.with_name(model.name + ".json").read_text())
    description["inference"] = {"length_scale": 1.2, "noise_scale": 0.5, "noise_w": 0.6}
    description["num_speakers"] = 3
    description["speaker_id_map"] = {"ann": 0, "bob": 1, "cy": 2}
    (folder / "own.onnx.json").write_text(json.dumps(description))
    (folder / "own-bob.toml").write_text(
        'model = "own.onnx"\nspeaker = "bob"\nspeed = 2.0\nexpressiveness = 0.5\n'
    )
    own = find_voice("own", folder)
    assert (own.length_scale, own.noise_scale, own.noise_w_scale) == (1.2, 0.5, 0.6)
    assert own.speaker_names == ("ann", "bob", "cy")
    bob = find_voice("own-bob", folder)
    assert bob.speaker == 1
    assert bob.length_scale == pytest.approx(0.6)
    assert (bob.noise_scale, bob.noise_w_scale) == pytest.approx((0.25, 0.3))
    with pytest.raises(ConfigError, match=r"'dan'.*ann, bob, cy"):
        own.with_settings(speaker="dan")
    with pytest.raises(ConfigError, match="3 speaker"):
        own.with_settings(speaker=3)


def test_persona_settings_multiply_a_definitions_and_stay_in_range(tmp_path: Path) -> None:
    config = shipped_config(tmp_path)
    calm = app.voice_for(config, "joe-calm")
    assert (calm.speed, calm.expressiveness) == (0.85, 0.6)
    faster = app.voice_for(config, "joe-calm", speed=1.2, expressiveness=0.5)
    assert (faster.speed, faster.expressiveness) == pytest.approx((1.02, 0.3))
    capped = app.voice_for(config, "joe-lively", speed=2.0, expressiveness=2.0)
    assert (capped.speed, capped.expressiveness) == (2.0, 2.0)
    with pytest.raises(ConfigError, match="speed = 3"):
        app.voice_for(config, "joe", speed=3)


def test_tts_voice_takes_a_name_a_path_or_bundled(tmp_path: Path) -> None:
    by_name = dataclasses.replace(
        shipped_config(tmp_path),
        tts=dataclasses.replace(shipped_config(tmp_path).tts, voice="joe-lively"),
    )
    assert app.voice_for(by_name).speed == 1.2
    path = str(bundled.piper_voice_path())
    assert resolve_voice(path, None).source == "file"
    assert resolve_voice("bundled", None).model_path == bundled.piper_voice_path()
    # A wrong name in the config file does not stop `voices list`, which shows the names...
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[tts]\nvoice = "nobody"\n')
    listed = run(tmp_path, "voices", "list", config=wrong)
    assert listed.returncode == 0 and "joe-calm" in listed.stdout
    # ...but speaking with it is a configuration mistake, in one line naming the voices.
    said = run(tmp_path, "say", "Hello.", "--output", str(tmp_path / "s.wav"), config=wrong)
    line = one_line_error(said, 2)
    assert "'nobody'" in line and "joe-calm" in line


def test_bad_flag_values_are_usage_errors(tmp_path: Path) -> None:
    result = run(tmp_path, "voices", "try", "joe", "--speed", "fast")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "0.5 to 2.0" in result.stderr
    assert run(tmp_path, "voices", "try", "joe", "--expressiveness", "-1").returncode == 2
    assert run(tmp_path, "voices").returncode == 2
