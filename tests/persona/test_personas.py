"""Persona files, the persona library, character cards as personas, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SHIPPED_CONFIG
from voice_companion.errors import ConfigError, PersonaError
from voice_companion.persona.card_format import Character, read_card, write_card
from voice_companion.persona.files import persona_toml, read_persona
from voice_companion.persona.library import PersonaLibrary, shipped_dir
from voice_companion.persona.lorebook import Lorebook, LoreEntry
from voice_companion.persona.values import Persona, VoiceChoice

SHIPPED = shipped_dir()


def library(tmp_path: Path, check_voice=None) -> PersonaLibrary:  # type: ignore[no-untyped-def]
    return PersonaLibrary(tmp_path / "mine", SHIPPED, tmp_path / "data", check_voice)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_personas_are_valid_and_make_their_prompt() -> None:
    robin = read_persona(SHIPPED / "robin.toml")
    morgan = read_persona(SHIPPED / "morgan.toml")
    assert robin.key == "robin" and robin.name == "Robin"
    prompt = robin.system_prompt()
    assert prompt.startswith("You are Robin, an AI companion.")
    assert "Your boundaries:" in prompt and "Examples of how you talk:" in prompt
    assert "comfort them first" in prompt
    assert "AI" in robin.ai_disclosure and "Robin" in robin.ai_disclosure
    assert morgan.voice.speed == 0.9 and "librarian" in morgan.system_prompt()
    assert robin.greeting_for("Sam", index=1) == "Hey Sam, it's Robin. How are you doing?"
    assert robin.greeting_for(index=1) == "Hey friend, it's Robin. How are you doing?"


def test_a_persona_file_round_trips_through_its_toml(tmp_path: Path) -> None:
    from voice_companion.persona.card_format import ExampleTurn

    persona = Persona(
        name='Zoë "Z" Quinn',
        personality="dry\nwit",
        backstory="A lighthouse keeper.\x7f",
        greetings=("Hi!", "Hello {{user}}"),
        examples=((ExampleTurn("user", "Hey"), ExampleTurn("assistant", "Hey yourself")),),
        voice=VoiceChoice("joe", 0, 1.5, 0.25),
    )
    path = write(tmp_path / "zoe.toml", persona_toml(persona))
    back = read_persona(path)
    assert back == persona.replace(key="zoe", personality="dry\nwit")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "A"\nmood = "x"\n', "unknown key 'mood'"),
        ("name = 3\n", "'name' must be text"),
        ('personality = "no name"\n', "'name' is missing"),
        ('name = "A"\ngreetings = [1]\n', "'greetings' must be a list of texts"),
        ('name = "A"\n[voice]\nspeed = 9\n', "speed = 9 is outside 0.5 to 2.0"),
        ('name = "A"\n[voice]\npitch = 1\n', "unknown key 'pitch' in [voice]"),
        ('name = "A"\n[[examples]]\nuser = "a"\nbot = "b"\n', "examples #1"),
        ('name = "A"\ncard = "../../etc/passwd"\n', "'card' must name a card file beside it"),
        ('name = "A"\ncard = "gone.png"\n', "its card cannot be read"),
        ("name = [unclosed\n", "not valid TOML"),
    ],
)
def test_a_bad_persona_file_is_one_line_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(PersonaError) as caught:
        read_persona(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_huge_or_binary_persona_file_is_refused(tmp_path: Path) -> None:
    huge = write(tmp_path / "huge.toml", 'name = "A"\nbackstory = "' + "x" * 2_000_000 + '"\n')
    with pytest.raises(PersonaError, match="too large"):
        read_persona(huge)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(PersonaError, match="not UTF-8"):
        read_persona(binary)


def test_a_missing_voice_file_is_refused_and_nothing_is_installed(tmp_path: Path) -> None:
    from voice_companion import app
    from voice_companion.config import load_config

    config = load_config(SHIPPED_CONFIG, env={}, data_dir=tmp_path / "data")

    def check(choice: VoiceChoice) -> None:
        app.persona_voice(config, choice).require()

    lib = library(tmp_path, check)
    source = write(
        tmp_path / "in" / "ghost.toml", 'name = "Ghost"\n[voice]\nname = "/no/such.onnx"\n'
    )
    lib.choose("morgan")
    with pytest.raises(ConfigError) as caught:
        lib.install_file(source)
    assert "such.onnx" in str(caught.value)
    assert not (tmp_path / "mine").exists() or not list((tmp_path / "mine").iterdir())
    assert lib.current_name() == "morgan"


def test_create_use_list_and_remove(tmp_path: Path) -> None:
    lib = library(tmp_path)
    assert lib.current_name() == "robin"
    saved = lib.save(Persona(name="Dr. Ada Lovelace", personality="precise"))
    assert saved.key == "dr-ada-lovelace"
    with pytest.raises(PersonaError, match="exists already"):
        lib.save(Persona(name="Dr. Ada Lovelace"))
    assert lib.choose("dr. ada lovelace").key == "dr-ada-lovelace"  # by its name, any case
    assert lib.current().name == "Dr. Ada Lovelace"
    assert (tmp_path / "data" / "persona").read_text().strip() == "dr-ada-lovelace"
    assert [e.key for e in lib.entries()] == ["dr-ada-lovelace", "morgan", "robin"]
    with pytest.raises(PersonaError, match="shipped sample"):
        lib.remove("robin")
    lib.remove("dr-ada-lovelace")
    assert lib.current_name() == "robin"  # the removed one is no longer chosen
    with pytest.raises(PersonaError, match="no persona called 'nobody'; known: morgan, robin"):
        lib.load("nobody")


def test_a_users_file_wins_over_a_sample_and_broken_ones_are_listed(tmp_path: Path) -> None:
    lib = library(tmp_path)
    write(tmp_path / "mine" / "robin.toml", 'name = "My Robin"\n')
    write(tmp_path / "mine" / "broken.toml", 'name = "B"\nmood = 1\n')
    entries = {e.key: e for e in lib.entries()}
    assert entries["robin"].source == "yours" and lib.load("robin").name == "My Robin"
    assert entries["broken"].persona is None and "unknown key 'mood'" in entries["broken"].problem


def _card(tmp_path: Path) -> Character:
    """A card from elsewhere: V3, unknown fields, extensions of other tools, a lorebook."""
    raw = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": "Captain Vale",
            "description": "{{char}} sails the sky with {{user}}.",
            "personality": "bold, loyal",
            "scenario": "An airship at dawn.",
            "first_mes": "Welcome aboard, {{user}}!",
            "alternate_greetings": ["Ahoy, <USER>."],
            "mes_example": "<START>\n{{user}}: Where to?\n{{char}}: Wherever the wind says.",
            "system_prompt": "Stay in character. {{original}}",
            "post_history_instructions": "Keep it nautical.",
            "creator_notes": "",
            "tags": ["adventure"],
            "creator": "someone",
            "character_version": "7",
            "extensions": {"other_tool": {"keep": [1, 2.50, "x"], "order": {"b": 1, "a": 2}}},
            "group_only_greetings": [],
            "character_book": {
                "entries": [
                    {
                        "keys": ["kraken"],
                        "content": "The kraken sank {{char}}'s first ship.",
                        "enabled": True,
                        "insertion_order": 1,
                    }
                ],
                "extensions": {},
            },
            "x_unknown_field": {"nested": True},
        },
    }
    return Character(name="unused", card_json=json.dumps(raw))


@pytest.mark.parametrize("suffix", [".json", ".png"])
def test_a_card_becomes_a_persona_and_exports_back_unchanged(tmp_path: Path, suffix: str) -> None:
    from voice_companion.persona.card_format import parse_card

    original = parse_card(json.loads(_card(tmp_path).card_json))
    card_path = tmp_path / f"vale{suffix}"
    write_card(original, card_path)
    lib = library(tmp_path)
    persona = lib.install_card(card_path)
    assert persona.key == "captain-vale" and persona.name == "Captain Vale"
    assert "Captain Vale sails the sky with the user." in persona.backstory
    assert "Scenario: An airship at dawn." in persona.backstory
    assert persona.greeting_for("Sam") == "Welcome aboard, Sam!"
    assert persona.greeting_for("Sam", 1) == "Ahoy, Sam."
    assert persona.examples[0][1].text == "Wherever the wind says."
    prompt = persona.system_prompt()
    assert "Stay in character." in prompt and "{{original}}" not in prompt
    # the lorebook fires on its key, after the history, never in the system prompt
    assert persona.context_for(["tell me about the kraken"]) == [
        "The kraken sank Captain Vale's first ship.",
        "Keep it nautical.",
    ]
    assert persona.context_for(["hello"]) == ["Keep it nautical."]
    assert "kraken" not in prompt

    out = tmp_path / f"out{suffix}"
    lib.export("captain-vale", out)
    exported = read_card(out)
    before = json.loads(original.card_json)["data"] if suffix == ".json" else None
    after = json.loads(exported.card_json)["data"]
    if before is not None:
        assert after == before
    assert after["extensions"]["other_tool"] == {"keep": [1, 2.5, "x"], "order": {"b": 1, "a": 2}}
    assert after["x_unknown_field"] == {"nested": True}
    assert "voice_companion" not in after["extensions"]  # untouched: nothing of ours added

    # a change the user made (a voice) travels in our extension; the rest stays as it was
    toml = tmp_path / "mine" / "captain-vale.toml"
    toml.write_text(toml.read_text() + "\n[voice]\nspeed = 1.25\n")
    lib.export("captain-vale", tmp_path / "changed.json")
    changed = json.loads((tmp_path / "changed.json").read_text())["data"]
    assert changed["extensions"]["voice_companion"]["voice"]["speed"] == 1.25
    assert changed["extensions"]["other_tool"] == after["extensions"]["other_tool"]
    assert {k: v for k, v in changed.items() if k != "extensions"} == {
        k: v for k, v in after.items() if k != "extensions"
    }


def test_a_persona_made_here_survives_export_and_import_as_a_card(tmp_path: Path) -> None:
    lib = library(tmp_path)
    lore = Lorebook(entries=(LoreEntry(keys=("garden",), content="Ada grows tomatoes."),))
    ada = Persona(
        name="Ada",
        personality="precise",
        speaking_style="short",
        backstory="A retired engineer.",
        boundaries="no gossip",
        disclosure="I'm Ada, an AI.",
        greetings=("Hello {{user}}.",),
        lorebook=lore,
        voice=VoiceChoice("joe", -1, 1.5, 0.5),
    )
    lib.save(ada)
    lib.export("ada", tmp_path / "ada.png")
    back = lib.install_card(tmp_path / "ada.png", key="ada-again")
    same = ("name", "personality", "speaking_style", "backstory", "boundaries", "disclosure")
    assert all(getattr(back, f) == getattr(ada, f) for f in same)
    assert back.greetings == ada.greetings and back.voice == ada.voice
    assert back.context_for(["my garden"]) == ["Ada grows tomatoes."]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("nochunk.png", None, "no"),
        ("badb64.png", b"chara\x00@@@not-base64@@@", "base64"),
        ("shape.json", b'{"spec": "chara_card_v2", "data": []}', "data"),
        ("notjson.json", b"{oops", "JSON"),
    ],
)
def test_a_bad_card_installs_nothing_and_keeps_the_current_persona(
    tmp_path: Path, name: str, data: bytes | None, message: str
) -> None:
    import struct
    import zlib

    lib = library(tmp_path)
    lib.choose("morgan")
    path = tmp_path / name
    if name.endswith(".png"):
        png = bytearray(b"\x89PNG\r\n\x1a\n")

        def chunk(kind: bytes, body: bytes) -> bytes:
            crc = zlib.crc32(kind + body) & 0xFFFFFFFF
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

        png += chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        if data is not None:
            png += chunk(b"tEXt", data)
        png += chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")
        path.write_bytes(bytes(png))
    else:
        assert data is not None
        path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        lib.install_card(path)
    assert message.lower() in str(caught.value).lower() and "\n" not in str(caught.value)
    assert not (tmp_path / "mine").exists() or not list((tmp_path / "mine").iterdir())
    assert lib.current_name() == "morgan"


# -- the command line -------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_COMPANION_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "voice_companion", "--config", str(SHIPPED_CONFIG),
         "--data-dir", str(tmp_path / "data"), "persona", *args],
        input=stdin, capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


def test_the_cli_creates_step_by_step_and_switches(tmp_path: Path) -> None:
    answers = "\n".join(
        ["Juniper", "playful, bright", "", "a fox spirit", "", "Hey hey!", "", "1.2", "0.7", "n"]
    )
    made = cli(tmp_path, "create", "--use", stdin=answers + "\n")
    assert made.returncode == 0, made.stderr
    assert "created Juniper" in made.stdout and "will speak when the companion next starts" in (
        made.stdout
    )
    shown = cli(tmp_path, "show", "--json")
    info = json.loads(shown.stdout)
    assert info["name"] == "Juniper" and info["personality"] == "playful, bright"
    assert info["backstory"] == "a fox spirit" and info["greetings"] == ["Hey hey!"]
    assert "speed 1.2" in info["voice"] and "expressiveness 0.7" in info["voice"]
    listed = json.loads(cli(tmp_path, "list", "--json").stdout)
    assert [r["key"] for r in listed if r["in_use"]] == ["juniper"]

    bad = cli(tmp_path, "use", "nobody")
    assert bad.returncode == 1 and "no persona called 'nobody'" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    cut = cli(tmp_path, "create", stdin="Half\n")
    assert cut.returncode == 2 and "input ended" in cut.stderr

    exported = cli(tmp_path, "export", "juniper", str(tmp_path / "j.json"))
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "j.json").read_text())["data"]["name"] == "Juniper"
    again = cli(tmp_path, "import", str(tmp_path / "j.json"))
    assert again.returncode == 1 and "exists already" in again.stderr
    renamed = cli(tmp_path, "import", str(tmp_path / "j.json"), "--as", "juniper-2")
    assert renamed.returncode == 0, renamed.stderr
    assert cli(tmp_path, "remove", "juniper-2").returncode == 0
    assert cli(tmp_path, "show", "juniper-2").returncode == 1


def test_edit_keeps_the_file_when_the_result_is_invalid(tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "\\nmood = 1\\n" >> "$1"\n')
    editor.chmod(0o755)
    before = cli(tmp_path, "create", "--name", "Kit", "--personality", "calm")
    assert before.returncode == 0, before.stderr
    path = tmp_path / "xdg" / "voice-companion" / "personas" / "kit.toml"
    text = path.read_text()
    os.environ["EDITOR"] = str(editor)
    try:
        edited = cli(tmp_path, "edit", "kit")
    finally:
        del os.environ["EDITOR"]
    assert edited.returncode == 1 and "unknown key 'mood'" in edited.stderr
    assert path.read_text() == text


def test_lore_goes_with_the_new_words_and_the_system_message_stays_cached(tmp_path: Path) -> None:
    from voice_companion.dialogue.dialogue import Dialogue
    from voice_companion.memory.seam import NoMemory
    from voice_companion.persona.card_format import parse_card

    lib = library(tmp_path)
    write_card(parse_card(json.loads(_card(tmp_path).card_json)), tmp_path / "vale.json")
    vale = lib.install_card(tmp_path / "vale.json")
    d = Dialogue(vale, NoMemory(), history_turns=8, budget_tokens=1500, conversation_id="c")
    d.record_user("Good morning!")
    calm = d.messages_for("Good morning!")
    d.record_reply("Morning, sailor.", interrupted=False)
    d.record_user("Have you ever seen a kraken?")
    stormy = d.messages_for("Have you ever seen a kraken?")
    assert calm[0] == stormy[0]  # the system message: identical, so llama.cpp keeps it
    # The lore and the card's after-history instruction: in the context message just before
    # the new words, which go alone.
    assert "first ship" not in calm[-2].content and "Keep it nautical." in calm[-2].content
    assert "The kraken sank Captain Vale's first ship." in stormy[-2].content
    assert stormy[-1].content == "Have you ever seen a kraken?"
