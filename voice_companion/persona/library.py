"""Where personas live, which one is in use, and installing, exporting and removing them.

Two folders: the samples shipped in ``config/personas/`` and the user's own in
``$XDG_CONFIG_HOME/voice-companion/personas/``; a user's file wins over a sample with the same
name. A persona is known by its file name (``robin`` for ``robin.toml``) or, failing that, by
the name inside it. The choice made with ``persona use`` is kept in ``persona`` in the data
dir. Nothing is installed half-way: a persona is read and checked in full before any file is
written, and files are written through a temporary name and a rename.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from voice_companion.atomic import write_atomic
from voice_companion.errors import ConfigError, PersonaError
from voice_companion.persona.card_format import read_card, write_card
from voice_companion.persona.cards import character_from_persona, persona_from_character
from voice_companion.persona.files import VoiceCheck, persona_toml, read_persona
from voice_companion.persona.values import Persona, VoiceChoice
from voice_companion.private import private_dir

DEFAULT_PERSONA = "robin"
"""Used when nothing was chosen: the shipped sample ``config/personas/robin.toml``."""
CHOICE_FILE = "persona"
_KEY_CHARS = re.compile(r"[^a-z0-9]+")


def shipped_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "config" / "personas"


def user_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("voice-companion")) / "personas"


def key_for(name: str) -> str:
    """A file name for a persona called ``name``: "Dr. Ada Lovelace" → "dr-ada-lovelace"."""
    key = _KEY_CHARS.sub("-", name.lower()).strip("-")[:60].strip("-")
    return key or "persona"


@dataclass(frozen=True)
class Entry:
    """One persona file: its key, where it is, whose it is, and the persona or what is wrong."""

    key: str
    path: Path
    source: str
    """"yours" or "shipped"."""
    persona: Persona | None
    problem: str = ""


class PersonaLibrary:
    def __init__(
        self,
        mine: Path,
        shipped: Path,
        data_dir: Path,
        check_voice: VoiceCheck | None = None,
    ) -> None:
        self.mine = mine
        self.shipped = shipped
        self._choice = data_dir / CHOICE_FILE
        self._check_voice = check_voice

    # -- reading --------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every persona file, the user's first; broken ones listed with their problem."""
        found: dict[str, Entry] = {}
        for folder, source in ((self.mine, "yours"), (self.shipped, "shipped")):
            for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
                if path.stem in found:
                    continue
                try:
                    entry = Entry(path.stem, path, source, self._read(path))
                except ConfigError as exc:
                    entry = Entry(path.stem, path, source, None, str(exc))
                found[path.stem] = entry
        return sorted(found.values(), key=lambda e: e.key)

    def path_of(self, name: str) -> Path:
        """The file of the persona called ``name``: its key (the file name, with or without
        ``.toml``), the name inside it, its nickname, or the key that name makes ("Dr. Ada"
        for ``dr-ada``); any case."""
        wanted = name.strip().removesuffix(".toml")
        for folder in (self.mine, self.shipped):
            path = folder / f"{wanted}.toml"
            if wanted and "/" not in wanted and not wanted.startswith(".") and path.is_file():
                return path
        lowered = wanted.casefold()
        entries = self.entries()
        # In this order: a key, a name, a nickname, then the key the words would make.
        for rule in range(4 if wanted else 0):
            for e in entries:
                p = e.persona
                if (
                    (rule == 0 and e.key.casefold() == lowered)
                    or (rule == 1 and p is not None and p.name.casefold() == lowered)
                    or (rule == 2 and p is not None and p.nickname.casefold() == lowered)
                    or (rule == 3 and e.key == key_for(wanted))
                ):
                    return e.path
        known = ", ".join(e.key for e in entries) or "none"
        raise PersonaError(
            f"no persona called {name!r}; known: {known} (see `voice-companion persona list`)"
        )

    def load(self, name: str) -> Persona:
        return self._read(self.path_of(name))

    def current_name(self, configured: str = "") -> str:
        """``persona.name`` from the configuration, else the last `persona use`, else Robin."""
        if configured.strip():
            return configured.strip()
        try:
            chosen = self._choice.read_text(encoding="utf-8").strip()
        except OSError:
            chosen = ""
        return chosen or DEFAULT_PERSONA

    def current(self, configured: str = "") -> Persona:
        return self.load(self.current_name(configured))

    def choose(self, name: str) -> Persona:
        """Check the persona in full, then keep it as the one to use."""
        persona = self.load(name)
        private_dir(self._choice.parent)
        write_atomic(self._choice, (persona.key + "\n").encode("utf-8"))
        return persona

    # -- writing --------------------------------------------------------------------------

    def install_file(self, source: Path, key: str = "", replace: bool = False) -> Persona:
        """Copy a persona file (with the card it names) into the user's folder."""
        persona = self._read(source)
        key = key or key_for(source.stem)
        target = self._free_target(key, replace)
        text = source.read_text(encoding="utf-8")
        card = card_name(source)
        if card:
            card_target = self.mine / f"{key}.card{Path(card).suffix.lower()}"
            write_atomic(card_target, (source.parent / card).read_bytes())
            text = re.sub(
                r"^card\s*=.*$", f"card = {card_target.name!r}", text, count=1, flags=re.M
            )
        write_atomic(target, text.encode("utf-8"))
        return persona.replace(key=key)

    def install_card(
        self, card: Path, key: str = "", replace: bool = False, voice: VoiceChoice | None = None
    ) -> Persona:
        """Make a persona of a character card (.json or .png), keeping the card beside it;
        ``voice`` overrides the card's."""
        character = read_card(card)
        persona = persona_from_character(character)
        if voice is not None:
            persona = persona.replace(voice=voice)
        key = key or key_for(persona.name)
        target = self._free_target(key, replace)
        if self._check_voice is not None:
            self._check_voice(persona.voice)
        card_target = self.mine / f"{key}.card{card.suffix.lower()}"
        write_atomic(card_target, card.read_bytes())
        only = ("voice",) if voice is not None else ()
        write_atomic(target, persona_toml(persona, card=card_target.name, only=only).encode())
        return self._read(target)

    def save(self, persona: Persona, key: str = "", replace: bool = False) -> Persona:
        """Write a persona made here (``persona create``) into the user's folder."""
        key = key or key_for(persona.name)
        target = self._free_target(key, replace, hint="choose another name, or --replace it")
        if self._check_voice is not None:
            self._check_voice(persona.voice)
        text = persona_toml(persona).encode("utf-8")
        # Read back in full (its voice too) under a name no listing sees, before it appears.
        draft = target.with_name(f".{target.name}.draft")
        write_atomic(draft, text)
        try:
            self._read(draft)
        finally:
            draft.unlink(missing_ok=True)
        write_atomic(target, text)
        return self._read(target)

    def exists(self, key: str) -> bool:
        """Whether one of the user's personas has the file name ``key``."""
        return (self.mine / f"{key}.toml").exists()

    def export(self, name: str, out: Path) -> None:
        """Write the persona as a persona file (.toml) or a character card (.json, .png)."""
        path = self.path_of(name)
        persona = self._read(path)
        suffix = out.suffix.lower()
        card = card_name(path)
        if suffix == ".toml":
            text = path.read_text(encoding="utf-8")
            if card:
                # A persona file and its card beside it, as `persona import` takes them.
                card_out = out.with_name(f"{out.stem}.card{Path(card).suffix.lower()}")
                write_atomic(card_out, (path.parent / card).read_bytes())
                text = re.sub(
                    r"^card\s*=.*$", f"card = {card_out.name!r}", text, count=1, flags=re.M
                )
            write_atomic(out, text.encode("utf-8"))
            return
        if suffix not in (".json", ".png"):
            raise PersonaError(f"{out}: export to a .toml persona file, or a .json or .png card")
        card_path = path.parent / card if card else None
        original = read_card(card_path) if card_path else None
        character = character_from_persona(persona, original)
        image = card_path if card_path is not None and card_path.suffix.lower() == ".png" else None
        write_card(character, out, image=image)

    def in_use(self, name: str, configured: str = "") -> bool:
        """Whether ``name`` resolves to the persona in use."""
        try:
            return self.path_of(name) == self.path_of(self.current_name(configured))
        except PersonaError:
            return False

    def remove(self, name: str) -> Persona:
        path = self.path_of(name)
        persona = self._read_or_none(path)
        if path.parent != self.mine:
            raise PersonaError(f"{path.stem} is a shipped sample; it cannot be removed")
        was_chosen = self.in_use(path.stem)
        card = card_name(path)
        path.unlink()
        if card:
            (path.parent / card).unlink(missing_ok=True)
        if was_chosen:
            self._choice.unlink(missing_ok=True)
        return persona or Persona(name=path.stem, key=path.stem)

    # -- helpers --------------------------------------------------------------------------

    def _read(self, path: Path) -> Persona:
        return read_persona(path, self._check_voice)

    def _read_or_none(self, path: Path) -> Persona | None:
        try:
            return self._read(path)
        except ConfigError:
            return None

    def _free_target(
        self, key: str, replace: bool, hint: str = "choose another name with --as, or --replace it"
    ) -> Path:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", key):
            raise PersonaError(
                f"{key!r} cannot name a persona file: use lowercase letters, digits and '-'"
            )
        target = self.mine / f"{key}.toml"
        if target.exists() and not replace:
            raise PersonaError(f"a persona called {key!r} exists already ({target}); {hint}")
        private_dir(self.mine)
        return target


def card_name(path: Path) -> str:
    """The card file a persona file refers to (a name beside it), or ""."""
    import tomllib

    try:
        card = tomllib.loads(path.read_text(encoding="utf-8")).get("card", "")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ""
    return card if isinstance(card, str) else ""
