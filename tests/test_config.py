"""Configuration: the shipped file, overrides, and one-line errors naming the key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.conftest import SHIPPED_CONFIG
from voice_companion.config import SECTIONS, Config, load_config
from voice_companion.errors import ConfigError, ModelNotFoundError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "companion.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_documents_every_key_with_its_default(tmp_path: Path) -> None:
    loaded = load_config(SHIPPED_CONFIG, env={}, data_dir=tmp_path)
    defaults = Config(data_dir=tmp_path)
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    for name, section_type in SECTIONS.items():
        assert f"[{name}]" in text
        for f in dataclasses.fields(section_type):
            assert re.search(rf"^{f.name} = ", text, re.M), f"{name}.{f.name} undocumented"
        assert getattr(loaded, name) == getattr(defaults, name)


def test_file_values_and_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "[llm]\ntemperature = 0.2\nmax_reply_tokens = 50\n")
    env = {"VOICE_COMPANION_LLM_TEMPERATURE": "1.5", "VOICE_COMPANION_VAD_AGGRESSIVENESS": "3"}
    config = load_config(path, env=env, data_dir=tmp_path)
    assert config.llm.temperature == 1.5
    assert config.llm.max_reply_tokens == 50
    assert config.vad.aggressiveness == 3
    assert config.data_dir == tmp_path


@pytest.mark.parametrize(
    ("toml", "env", "needle"),
    [
        ("[llm]\ntemprature = 0.3\n", {}, "llm.temprature"),
        ("[sound]\nx = 1\n", {}, "'sound'"),
        ('[llm]\ntemperature = "hot"\n', {}, "llm.temperature = 'hot'"),
        ("[llm]\ntemperature = 9.0\n", {}, "from 0.0 to 2.0"),
        ('[llm]\nbackend = "gpt"\n', {}, "llama, openai"),
        ("[vad]\naggressiveness = 1.5\n", {}, "whole number"),
        ("[vad]\naggressiveness = true\n", {}, "vad.aggressiveness = True"),
        ("[persona]\nname = 3\n", {}, "persona.name"),
        ("llm = 3\n", {}, "[llm] must be a table"),
        ("[llm\n", {}, "not valid TOML"),
        ("", {"VOICE_COMPANION_LLM_TEMPERATURE": "warm"}, "VOICE_COMPANION_LLM_TEMPERATURE"),
        ("", {"VOICE_COMPANION_STT_MODLE": "x"}, "VOICE_COMPANION_STT_MODLE"),
        ('[llm]\nbackend = "openai"\n', {}, "llm.model"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, toml), env=env, data_dir=tmp_path)
    message = str(caught.value)
    assert needle in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[llm]\nmodel_path = "/nope/model.gguf"\n', "llm.model_path"),
        ('[stt]\nmodel = "./no-such-folder"\n', "stt.model"),
        ('[tts]\nvoice = "/nope/voice.onnx"\n', "tts.voice"),
    ],
)
def test_missing_model_files_are_config_errors(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(ModelNotFoundError, match=re.escape(key)):
        load_config(write(tmp_path, toml), env={}, data_dir=tmp_path)


def test_voice_needs_its_json_beside_it(tmp_path: Path) -> None:
    voice = tmp_path / "me.onnx"
    voice.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match=r"me\.onnx\.json"):
        load_config(write(tmp_path, f'[tts]\nvoice = "{voice}"\n'), env={}, data_dir=tmp_path)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml", env={}, data_dir=tmp_path)


def test_barge_in_and_the_listening_mode_are_given_as_words_and_held_as_enums(
    tmp_path: Path,
) -> None:
    from voice_companion.config import BargeIn, ListeningMode

    assert load_config(data_dir=tmp_path, env={}).audio.barge_in is BargeIn.GUARDED
    assert load_config(data_dir=tmp_path, env={}).audio.mode is ListeningMode.HANDS_FREE
    env_mode = {"VOICE_COMPANION_AUDIO_MODE": "push_to_talk"}
    assert load_config(data_dir=tmp_path, env=env_mode).audio.mode is ListeningMode.PUSH_TO_TALK
    config = load_config(write(tmp_path, '[audio]\nbarge_in = "off"\n'), env={}, data_dir=tmp_path)
    assert config.audio.barge_in is BargeIn.OFF
    env = {"VOICE_COMPANION_AUDIO_BARGE_IN": "full"}
    assert load_config(data_dir=tmp_path, env=env).audio.barge_in is BargeIn.FULL
    with pytest.raises(
        ConfigError, match=re.escape("barge_in = 'loud': expected one of guarded, full")
    ):
        load_config(write(tmp_path, '[audio]\nbarge_in = "loud"\n'), env={}, data_dir=tmp_path)
