"""Voices: named piper voices with a speaker, a speed and an expressiveness.

Two folders hold them, the user's winning a name clash:

- the shipped definitions in the repository's ``voices/`` folder (``NAME.toml``);
- the user's folder, ``<data dir>/voices`` (``~/.local/share/voice-companion/voices``), where
  ``NAME.toml`` definitions may be added too, and any piper ``X.onnx`` with its ``X.onnx.json``
  is a voice named ``X`` without a definition.

A definition is a small TOML file::

    description = "Joe, at a calm pace"
    model = "bundled"        # or the path of a piper .onnx, relative to this file's folder
    speaker = -1             # number or name, for multi-speaker voices; -1: the voice's default
    speed = 0.9              # 0.5 to 2.0; 1.0 is the voice's own pace
    expressiveness = 0.6     # 0.0 (flat, identical every time) to 2.0; 1.0 is the voice's own

Speed and expressiveness are in user terms and map onto piper's settings around the voice's
own defaults (the ``inference`` section of its ``.onnx.json``): ``length_scale = own / speed``,
``noise_scale`` and ``noise_w_scale`` = own × expressiveness.

A voice whose files are missing or broken is still listed, with ``problem`` saying why;
``Voice.require()`` turns that into a one-line error. No third-party imports here.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice_companion.config import BUNDLED
from voice_companion.errors import ConfigError, ModelNotFoundError
from voice_companion.persona.values import EXPRESSIVENESS_RANGE, SPEED_RANGE

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "voices"
"""The definitions that come with the project (the repository's ``voices/`` folder)."""

DEFINITION_KEYS = ("description", "model", "speaker", "speed", "expressiveness")

# piper's own fallbacks when a voice's .onnx.json has no ``inference`` section.
_PIPER_LENGTH_SCALE, _PIPER_NOISE_SCALE, _PIPER_NOISE_W_SCALE = 1.0, 0.667, 0.8


@dataclass(frozen=True)
class Voice:
    """One voice: which piper model, which speaker, how fast and how lively.

    ``problem`` is empty for a usable voice, else one line saying what is wrong. The fields
    after it come from the model's ``.onnx.json`` (empty or default when it cannot be read).
    """

    name: str
    source: str
    """"shipped", "user", "bundled" (``tts.voice = "bundled"``) or "file" (a path)."""
    model_path: Path
    description: str = ""
    definition_path: Path | None = None
    """The TOML file defining it, None for a bare ``.onnx`` or a path."""
    speaker: int = -1
    speed: float = 1.0
    expressiveness: float = 1.0
    problem: str = ""
    language: str = ""
    quality: str = ""
    sample_rate_hz: int = 0
    speaker_names: tuple[str, ...] = ()
    num_speakers: int = 1
    own_length_scale: float = _PIPER_LENGTH_SCALE
    own_noise_scale: float = _PIPER_NOISE_SCALE
    own_noise_w_scale: float = _PIPER_NOISE_W_SCALE

    @property
    def config_path(self) -> Path:
        """The ``.onnx.json`` piper needs beside the model."""
        return self.model_path.with_name(self.model_path.name + ".json")

    @property
    def usable(self) -> bool:
        return not self.problem

    @property
    def length_scale(self) -> float:
        return self.own_length_scale / self.speed

    @property
    def noise_scale(self) -> float:
        return self.own_noise_scale * self.expressiveness

    @property
    def noise_w_scale(self) -> float:
        return self.own_noise_w_scale * self.expressiveness

    def with_settings(
        self,
        speed: float | None = None,
        expressiveness: float | None = None,
        speaker: int | str | None = None,
    ) -> Voice:
        """This voice with another speed, expressiveness or speaker (None keeps the current).

        Raises ``ConfigError`` naming the value and the allowed range."""
        changes: dict[str, Any] = {}
        if speed is not None:
            changes["speed"] = _in_range("speed", speed, SPEED_RANGE)
        if expressiveness is not None:
            changes["expressiveness"] = _in_range(
                "expressiveness", expressiveness, EXPRESSIVENESS_RANGE
            )
        if speaker is not None:
            changes["speaker"] = self._speaker_number(speaker)
        return dataclasses.replace(self, **changes)

    def scaled(self, speed: float, expressiveness: float, speaker: int = -1) -> Voice:
        """This voice as a persona asks for it: ``speed`` and ``expressiveness`` multiply the
        definition's (1.0 keeps them), the product kept within range; ``speaker`` replaces
        it when 0 or more. The persona's own values are checked alone first, so a fast
        persona on a fast voice is as fast as allowed rather than an error."""
        self.with_settings(speed=speed, expressiveness=expressiveness)
        return self.with_settings(
            speed=_clamp(self.speed * speed, SPEED_RANGE),
            expressiveness=_clamp(self.expressiveness * expressiveness, EXPRESSIVENESS_RANGE),
            speaker=speaker if speaker >= 0 else None,
        )

    def require(self) -> Voice:
        """This voice if usable; else ``ModelNotFoundError`` (a file is missing) or
        ``ConfigError`` (a definition or file is malformed), one line naming the problem."""
        if not self.problem:
            return self
        if not (self.model_path.is_file() and self.config_path.is_file()):
            raise ModelNotFoundError(f"voice {self.name!r}: {self.problem}")
        raise ConfigError(f"voice {self.name!r}: {self.problem}")

    def _speaker_number(self, speaker: int | str) -> int:
        if isinstance(speaker, bool):
            raise ConfigError(f"speaker = {speaker!r}: give a speaker number or name")
        if isinstance(speaker, str):
            if speaker in self.speaker_names:
                return self.speaker_names.index(speaker)
            known = ", ".join(self.speaker_names) or "none: it has one speaker"
            raise ConfigError(
                f"speaker = {speaker!r}: voice {self.name!r} has no such speaker; "
                f"its speakers: {known}"
            )
        if not -1 <= speaker < max(self.num_speakers, 1):
            raise ConfigError(
                f"speaker = {speaker}: voice {self.name!r} has {self.num_speakers} speaker(s), "
                f"numbered 0 to {max(self.num_speakers, 1) - 1}; -1 means its default"
            )
        return speaker


def user_voices_dir(data_dir: Path) -> Path:
    """Where a user adds voices: ``voices`` in the data dir."""
    return data_dir / "voices"


def list_voices(user_dir: Path | None, shipped_dir: Path = SHIPPED_DIR) -> list[Voice]:
    """Every voice, usable or not, sorted by name; a user's voice replaces a shipped one
    of the same name."""
    by_name = {v.name: v for v in _scan(shipped_dir, "shipped")}
    if user_dir is not None:
        by_name.update({v.name: v for v in _scan(user_dir, "user")})
    return [by_name[name] for name in sorted(by_name, key=str.lower)]


def find_voice(name: str, user_dir: Path | None, shipped_dir: Path = SHIPPED_DIR) -> Voice:
    """The usable voice called ``name`` (case-insensitive when not exact).

    Raises ``ConfigError`` listing the known names for an unknown one, and ``Voice.require``'s
    error for a voice that is listed but unusable."""
    voices = list_voices(user_dir, shipped_dir)
    exact = [v for v in voices if v.name == name]
    loose = [v for v in voices if v.name.lower() == name.lower()]
    found = exact or loose
    if not found:
        known = ", ".join(v.name for v in voices) or "none"
        where = f" (add one to {user_dir})" if user_dir is not None else ""
        raise ConfigError(f"no voice named {name!r}; known voices: {known}{where}")
    return found[0].require()


def resolve_voice(value: str, user_dir: Path | None, shipped_dir: Path = SHIPPED_DIR) -> Voice:
    """A ``tts.voice`` value: "bundled", the path of a piper ``.onnx``, or a voice name."""
    if value == BUNDLED:
        return voice_from_model(_bundled_model(), BUNDLED, "bundled").require()
    if looks_like_path(value):
        path = Path(value).expanduser()
        return voice_from_model(path, path.name.removesuffix(".onnx"), "file").require()
    return find_voice(value, user_dir, shipped_dir)


def looks_like_path(value: str) -> bool:
    return "/" in value or value.startswith(("~", ".")) or value.endswith(".onnx")


def voice_from_model(model_path: Path, name: str, source: str, **fields: Any) -> Voice:
    """A voice for a piper model file, described from its ``.onnx.json``; ``fields`` are
    further ``Voice`` fields (description, speaker, ...)."""
    voice = Voice(name=name, source=source, model_path=model_path, **fields)
    if not model_path.is_file():
        return dataclasses.replace(voice, problem=f"no such piper model file: {model_path}")
    if not voice.config_path.is_file():
        return dataclasses.replace(
            voice, problem=f"piper needs {voice.config_path.name} beside {model_path}"
        )
    try:
        info = json.loads(voice.config_path.read_text("utf-8"))
        described = _describe(voice, info)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError, KeyError) as exc:
        return dataclasses.replace(
            voice, problem=f"{voice.config_path} is not a piper voice description ({exc})"
        )
    return described


def _describe(voice: Voice, info: Any) -> Voice:
    """Fill in what the ``.onnx.json`` says; raises on a malformed one."""
    inference = info.get("inference") or {}
    speaker_map = info.get("speaker_id_map") or {}
    names = tuple(sorted(speaker_map, key=lambda n: int(speaker_map[n])))
    language = info.get("language") or {}
    return dataclasses.replace(
        voice,
        language=str(language.get("code") or (info.get("espeak") or {}).get("voice") or ""),
        quality=str((info.get("audio") or {}).get("quality") or ""),
        sample_rate_hz=int(info["audio"]["sample_rate"]),
        num_speakers=int(info.get("num_speakers", 1)),
        speaker_names=names,
        own_length_scale=float(inference.get("length_scale", _PIPER_LENGTH_SCALE)),
        own_noise_scale=float(inference.get("noise_scale", _PIPER_NOISE_SCALE)),
        own_noise_w_scale=float(inference.get("noise_w", _PIPER_NOISE_W_SCALE)),
    )


def _scan(folder: Path, source: str) -> Iterable[Voice]:
    """The voices in one folder: its definitions, then bare models without one."""
    if not folder.is_dir():
        return []
    voices = {p.stem: _from_definition(p, source) for p in sorted(folder.glob("*.toml"))}
    for model in sorted(folder.glob("*.onnx")):
        name = model.name.removesuffix(".onnx")
        if name not in voices:
            voices[name] = voice_from_model(model, name, source)
    # A lone .onnx.json: most likely the .onnx is still downloading or was misnamed.
    for sidecar in sorted(folder.glob("*.onnx.json")):
        name = sidecar.name.removesuffix(".onnx.json")
        if name not in voices:
            voices[name] = voice_from_model(sidecar.with_suffix(""), name, source)
    return voices.values()


def _from_definition(path: Path, source: str) -> Voice:
    name = path.stem
    try:
        with path.open("rb") as f:
            table = tomllib.load(f)
        fields = _definition_fields(table)
        model_value = table.get("model", BUNDLED)
        if not isinstance(model_value, str) or not model_value:
            raise ConfigError(f"model = {model_value!r}: give {BUNDLED!r} or a .onnx path")
        model = _bundled_model() if model_value == BUNDLED else _relative(path, model_value)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError) as exc:
        return Voice(
            name=name,
            source=source,
            model_path=path.with_suffix(".onnx"),
            definition_path=path,
            problem=f"{path}: {exc}",
        )
    voice = voice_from_model(model, name, source, definition_path=path, **fields)
    if voice.problem:
        return voice
    try:
        return voice.with_settings(speaker=table.get("speaker", -1))
    except ConfigError as exc:
        return dataclasses.replace(voice, problem=f"{path}: {exc}")


def _definition_fields(table: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(table) - set(DEFINITION_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; allowed keys: " + ", ".join(DEFINITION_KEYS)
        )
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"description = {description!r}: expected a string in quotes")
    speaker = table.get("speaker", -1)
    if isinstance(speaker, bool) or not isinstance(speaker, int | str):
        raise ConfigError(f"speaker = {speaker!r}: give a speaker number or name")
    return {
        "description": description,
        "speed": _in_range("speed", table.get("speed", 1.0), SPEED_RANGE),
        "expressiveness": _in_range(
            "expressiveness", table.get("expressiveness", 1.0), EXPRESSIVENESS_RANGE
        ),
    }


def _in_range(key: str, value: Any, allowed: tuple[float, float]) -> float:
    lo, hi = allowed
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{key} = {value!r}: expected a number from {lo} to {hi}")
    return float(value)


def _relative(definition: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else definition.parent / path


def _bundled_model() -> Path:
    from voice_companion.engines import bundled

    return bundled.piper_voice_path()


def _clamp(value: float, allowed: tuple[float, float]) -> float:
    return min(max(value, allowed[0]), allowed[1])
