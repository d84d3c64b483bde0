"""`voice-companion persona list|show|create|use|edit|export|import|remove`."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voice_companion.cli.voices import ranged_float
from voice_companion.config import Config
from voice_companion.errors import (
    CompanionError,
    ConfigError,
    ControlError,
    DaemonNotRunningError,
    UsageError,
)
from voice_companion.persona.values import (
    EXPRESSIVENESS_RANGE,
    SPEED_RANGE,
    Persona,
    VoiceChoice,
)

EXIT_OK = 0


def add_parsers(commands: Any) -> None:
    persona = commands.add_parser(
        "persona",
        help="the companion's character: list, create, use, import a card, ...",
        description="Personas are TOML files you own: samples ship in config/personas/, yours "
        "live in ~/.config/voice-companion/personas/. Character cards (V2/V3, .json or .png) "
        "can be imported and exported.",
    )
    actions = persona.add_subparsers(dest="persona_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list the personas, marking the one in use")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    show = actions.add_parser("show", help="show a persona (default: the one in use)")
    show.add_argument("name", nargs="?", metavar="NAME")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    show.add_argument("--prompt", action="store_true", help="print its system prompt")

    create = actions.add_parser(
        "create",
        help="make a new persona, step by step (or from flags)",
        description="Without --name, asks for each part in the terminal. With --name, writes "
        "the persona from the flags given (for scripts).",
    )
    create.add_argument("--name", help="what the companion is called")
    create.add_argument("--personality", default="", help="e.g. 'warm, curious, teasing'")
    create.add_argument("--style", default="", help="how it speaks")
    create.add_argument("--backstory", default="", help="who it is, its history")
    create.add_argument("--boundaries", default="", help="what it will not do")
    create.add_argument(
        "--greeting", action="append", default=[], help="a greeting (repeat for more)"
    )
    create.add_argument("--voice", default="", help="a voice from `voices list`")
    create.add_argument("--speed", type=ranged_float("speed", SPEED_RANGE), default=1.0)
    create.add_argument(
        "--expressiveness", type=ranged_float("expressiveness", EXPRESSIVENESS_RANGE), default=1.0
    )
    create.add_argument("--use", action="store_true", help="use it from now on")
    create.add_argument("--replace", action="store_true", help="overwrite a persona of that name")

    use = actions.add_parser(
        "use", help="switch to a persona (the running companion switches at once)"
    )
    use.add_argument("name", metavar="NAME")

    edit = actions.add_parser(
        "edit",
        help="edit a persona file in $EDITOR (a sample is copied to your folder first)",
    )
    edit.add_argument("name", nargs="?", metavar="NAME")

    export = actions.add_parser(
        "export", help="write a persona as a .toml file or a .json/.png character card"
    )
    export.add_argument("name", metavar="NAME")
    export.add_argument(
        "output", type=Path, metavar="FILE", help="FILE.toml, FILE.json or FILE.png"
    )

    importing = actions.add_parser(
        "import", help="add a persona from a .toml file or a .json/.png character card"
    )
    importing.add_argument("file", type=Path, metavar="FILE")
    importing.add_argument("--as", dest="key", default="", metavar="KEY", help="its file name")
    importing.add_argument("--replace", action="store_true", help="overwrite one of that name")
    importing.add_argument("--use", action="store_true", help="use it from now on")
    importing.add_argument("--voice", default=None, help="a voice from `voices list` (cards)")

    remove = actions.add_parser("remove", help="delete one of your personas")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument(
        "--yes", action="store_true", help="remove it even if it is the one in use, unasked"
    )


def cmd_persona(config: Config, args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[Config, argparse.Namespace], int]] = {
        "list": _list,
        "show": _show,
        "create": _create,
        "use": _use,
        "edit": _edit,
        "export": _export,
        "import": _import,
        "remove": _remove,
    }
    try:
        return handlers[args.persona_action](config, args)
    except ConfigError as exc:
        # The persona or card named on the command line is what failed, not the config.
        raise CompanionError(str(exc)) from None


def _library(config: Config) -> Any:
    from voice_companion import app

    return app.persona_library(config)


def _list(config: Config, args: argparse.Namespace) -> int:
    library = _library(config)
    try:
        current: Path | None = library.path_of(library.current_name(config.persona.name))
    except ConfigError:
        current = None
    rows = []
    for e in library.entries():
        in_use = e.path == current
        rows.append(
            {
                "key": e.key,
                "name": e.persona.name if e.persona else None,
                "source": e.source,
                "path": str(e.path),
                "in_use": in_use,
                "usable": e.persona is not None,
                "problem": e.problem,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    for r in rows:
        mark = "*" if r["in_use"] else " "
        what = r["name"] if r["usable"] else f"UNUSABLE: {r['problem']}"
        print(f"{mark} {r['key']:<16} {r['source']:<8} {what}")
    print(f"(* in use; yours are in {library.mine})")
    return EXIT_OK


def _show(config: Config, args: argparse.Namespace) -> int:
    library = _library(config)
    name = args.name or library.current_name(config.persona.name)
    path = library.path_of(name)
    persona = library.load(name)
    if args.prompt:
        print(persona.system_prompt())
        return EXIT_OK
    info = _describe(persona, path)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return EXIT_OK
    for key, value in info.items():
        if value in ("", [], None, 0):
            continue
        if isinstance(value, list):
            value = " | ".join(str(v) for v in value)
        print(f"{key + ':':<16}{value}")
    return EXIT_OK


def _describe(persona: Persona, path: Path) -> dict[str, Any]:
    v = persona.voice
    return {
        "key": persona.key,
        "name": persona.name,
        "nickname": persona.nickname,
        "file": str(path),
        "personality": persona.personality,
        "speaking_style": persona.speaking_style,
        "backstory": persona.backstory,
        "boundaries": persona.boundaries,
        "greetings": list(persona.greetings),
        "examples": len(persona.examples),
        "lore_entries": len(persona.lorebook.entries) if persona.lorebook else 0,
        "voice": f"{v.name or '(tts.voice)'}, speed {v.speed:g}, "
        f"expressiveness {v.expressiveness:g}"
        + (f", speaker {v.speaker}" if v.speaker >= 0 else ""),
    }


# -- create -------------------------------------------------------------------------------


def _create(config: Config, args: argparse.Namespace) -> int:
    library = _library(config)
    if args.name is None:
        persona, hear = _ask(config, library, args.replace)
    else:
        persona = Persona(
            name=args.name.strip(),
            personality=args.personality,
            speaking_style=args.style,
            backstory=args.backstory,
            boundaries=args.boundaries,
            greetings=tuple(g for g in args.greeting if g.strip()),
            voice=VoiceChoice(args.voice, -1, args.speed, args.expressiveness),
        )
        hear = False
    if not persona.name:
        raise UsageError("a persona needs a name")
    saved = library.save(persona, replace=args.replace)
    print(f"created {saved.name} in {library.mine / (saved.key + '.toml')}")
    if hear:
        _hear(config, saved)
    if args.use:
        return _switch(config, library, saved.key)
    print(f"use it with: voice-companion persona use {saved.key}")
    return EXIT_OK


def _ask(config: Config, library: Any, replace: bool = False) -> tuple[Persona, bool]:
    """The step-by-step dialogue: one question per part, with a default in brackets. The name
    and the voice are checked as they are given, and asked again when they cannot be used."""
    print("Let's make a companion. Press Enter to keep the suggestion in [brackets].")
    name = _ask_name(library, replace)
    personality = _prompt(
        f"Describe {name}'s personality in a few words.", "warm, curious and kind"
    )
    style = _prompt(f"How does {name} speak?", "short, natural spoken sentences; no lists or emoji")
    backstory = _prompt(f"Anything about {name}'s story or background? (optional)", "")
    boundaries = _prompt(f"What won't {name} do or talk about? (optional)", "")
    greeting = _prompt(f"How should {name} greet you?", f"Hi, it's {name}. I'm here.")
    voice = _ask_voice(config)
    speed = _number("Speaking speed, 0.5 to 2.0?", 1.0, SPEED_RANGE)
    expressive = _number("Expressiveness, 0.0 (flat) to 2.0?", 1.0, EXPRESSIVENESS_RANGE)
    hear = _prompt("Hear the voice now? (y/n)", "y").lower().startswith("y")
    persona = Persona(
        name=name,
        personality=personality,
        speaking_style=style,
        backstory=backstory,
        boundaries=boundaries,
        greetings=(greeting,) if greeting else (),
        voice=VoiceChoice(voice, -1, speed, expressive),
    )
    return persona, hear


def _ask_name(library: Any, replace: bool) -> str:
    from voice_companion.persona.library import key_for

    while True:
        name = _prompt("What is their name?", "")
        if not name:
            raise UsageError("a persona needs a name")
        key = key_for(name)
        if replace or not library.exists(key):
            return name
        print(f"  you have a persona called {key!r} already; give another name")


def _ask_voice(config: Config) -> str:
    """A voice that can be used, by name; "" keeps the default (``tts.voice``)."""
    from voice_companion import app
    from voice_companion.persona.voices import list_voices, user_voices_dir

    usable = [v for v in list_voices(user_voices_dir(config.data_dir)) if v.usable]
    for v in usable:
        print(f"  {v.name}" + (f"  {v.description}" if v.description else ""))
    while True:
        answer = _prompt(f"Which voice? (Enter keeps the default, {config.tts.voice!r})", "")
        if not answer:
            return ""
        try:
            app.voice_for(config, answer).require()
            return answer
        except ConfigError as exc:  # it says which voices there are
            print(f"  {exc}")


def _prompt(question: str, default: str) -> str:
    shown = f" [{default}]" if default else ""
    try:
        answer = input(f"{question}{shown} ").strip()
    except EOFError:
        raise UsageError("the input ended before the persona was complete") from None
    return answer or default


def _number(question: str, default: float, bounds: tuple[float, float]) -> float:
    while True:
        text = _prompt(question, f"{default:g}")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if bounds[0] <= value <= bounds[1]:
            return value
        print(f"  please give a number from {bounds[0]:g} to {bounds[1]:g}")


def _hear(config: Config, persona: Persona) -> None:
    """Speak the persona's greeting in its voice on the output device."""
    from voice_companion.cli.voices import cmd_voices

    v = persona.voice
    try:
        cmd_voices(
            config,
            argparse.Namespace(
                voices_action="try",
                name=v.name or config.tts.voice,
                text=persona.greeting_for(),
                output=None,
                speed=v.speed,
                expressiveness=v.expressiveness,
            ),
        )
    except CompanionError as exc:
        print(f"(could not play the voice: {exc})", file=sys.stderr)


# -- use, edit, import, export, remove --------------------------------------------------------


def _use(config: Config, args: argparse.Namespace) -> int:
    return _switch(config, _library(config), args.name)


def _switch(config: Config, library: Any, name: str) -> int:
    """Keep the choice, then switch the running companion, if there is one."""
    from voice_companion.cli.control import send
    from voice_companion.control.server import default_socket_path

    persona = library.choose(name)
    if config.persona.name and config.persona.name != persona.key:
        print(
            f"note: persona.name = {config.persona.name!r} in {config.source} overrides this "
            "choice when the companion starts",
            file=sys.stderr,
        )
    try:
        running = default_socket_path().exists()
    except ControlError:  # no runtime dir: no companion can be running in this session
        running = False
    try:
        if running:
            send({"cmd": "persona", "name": persona.key})
            print(f"now speaking as {persona.name}")
            return EXIT_OK
    except DaemonNotRunningError:
        pass
    print(f"{persona.name} will speak when the companion next starts")
    return EXIT_OK


def _edit(config: Config, args: argparse.Namespace) -> int:
    """Edit a copy in $VISUAL/$EDITOR; the file changes only if the result is a valid persona."""
    from voice_companion.atomic import write_atomic
    from voice_companion.persona.files import read_persona
    from voice_companion.persona.library import card_name
    from voice_companion.private import private_dir

    library = _library(config)
    path = library.path_of(args.name or library.current_name(config.persona.name))
    target = library.mine / path.name
    if path.parent != library.mine and target.exists():
        raise CompanionError(f"{target} exists but is not a readable persona; fix it by hand")
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "nano"
    if shutil.which(shlex.split(editor)[0]) is None:
        raise CompanionError(f"no editor {editor!r} found: set $EDITOR, or edit {path} yourself")
    with tempfile.TemporaryDirectory() as tmp:
        draft = Path(tmp) / path.name
        shutil.copyfile(path, draft)
        card = path.parent / card_name(path) if card_name(path) else None
        if card is not None:
            shutil.copyfile(card, Path(tmp) / card.name)
        while True:
            subprocess.run([*shlex.split(editor), str(draft)], check=False)
            try:
                read_persona(draft)
                break
            except ConfigError as exc:
                print(f"that persona has a problem: {exc}", file=sys.stderr)
                if not sys.stdin.isatty() or not _prompt("Edit again? (y/n)", "y").startswith("y"):
                    raise CompanionError(f"{path} is unchanged") from None
        private_dir(library.mine)
        if card is not None and card.parent != library.mine:
            write_atomic(library.mine / card.name, card.read_bytes())
        write_atomic(target, draft.read_bytes())
    print(f"saved {target}")
    return EXIT_OK


def _export(config: Config, args: argparse.Namespace) -> int:
    _library(config).export(args.name, args.output)
    print(f"wrote {args.output}")
    return EXIT_OK


def _import(config: Config, args: argparse.Namespace) -> int:
    library = _library(config)
    source: Path = args.file
    suffix = source.suffix.lower()
    if suffix == ".toml":
        persona = library.install_file(source, args.key, args.replace)
    elif suffix in (".json", ".png"):
        voice = VoiceChoice(name=args.voice) if args.voice is not None else None
        persona = library.install_card(source, args.key, args.replace, voice)
    else:
        raise UsageError(f"{source}: import a .toml persona or a .json/.png character card")
    print(f"imported {persona.name} as {persona.key!r}")
    if args.use:
        return _switch(config, library, persona.key)
    print(f"use it with: voice-companion persona use {persona.key}")
    return EXIT_OK


def _remove(config: Config, args: argparse.Namespace) -> int:
    from voice_companion.persona.library import DEFAULT_PERSONA

    library = _library(config)
    in_use = library.in_use(args.name, config.persona.name)
    if in_use and not args.yes:
        shown = library.path_of(args.name).stem
        if not sys.stdin.isatty():
            raise UsageError(
                f"{shown} is the persona in use: switch first (persona use NAME), or add --yes"
            )
        if not _prompt(f"{shown} is the persona in use. Remove it? (y/n)", "n").startswith("y"):
            print("kept it")
            return EXIT_OK
    persona = library.remove(args.name)
    print(f"removed {persona.name}")
    if in_use:  # the running companion must not go on speaking as it
        return _switch(config, library, DEFAULT_PERSONA)
    return EXIT_OK


COMMANDS = {"persona": cmd_persona}
