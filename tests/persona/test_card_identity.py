"""A card's name is the persona's name and key; its V3 nickname is how it is called in text.
A persona is found by its name, key, nickname or file name, everywhere; an install made when
the nickname was the key keeps working; a card persona exports to .toml; the persona in use
is not removed unasked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.persona.test_cards import v3_card
from tests.persona.test_personas import cli, library
from voice_companion.persona.files import read_persona


def lumi(tmp_path: Path) -> Path:
    card = v3_card(
        name="Lumi",
        nickname="Lu",
        description="{{char}} is a lighthouse keeper who talks with {{user}}.",
        first_mes="Hello {{user}}, it's {{char}}.",
    )
    path = tmp_path / "Lumi.json"
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


def test_the_card_name_is_the_key_and_the_nickname_is_how_it_is_called(tmp_path: Path) -> None:
    lib = library(tmp_path)
    persona = lib.install_card(lumi(tmp_path))
    assert (persona.key, persona.name, persona.nickname) == ("lumi", "Lumi", "Lu")
    assert persona.backstory.startswith("Lu is a lighthouse keeper")
    assert persona.greeting_for("Sam") == "Hello Sam, it's Lu."
    assert persona.system_prompt().startswith("You are Lu, an AI companion.")
    for name in ("lumi", "Lumi", "LUMI", "Lu", "lu", "lumi.toml"):
        assert lib.path_of(name) == tmp_path / "mine" / "lumi.toml", name
    # The card goes back with its name and nickname as they came.
    out = tmp_path / "out.json"
    lib.export("Lumi", out)
    data = json.loads(out.read_text())["data"]
    assert (data["name"], data["nickname"]) == ("Lumi", "Lu")


def test_an_install_keyed_by_the_nickname_keeps_working(tmp_path: Path) -> None:
    # What an earlier version made of the card: lu.toml beside lu.card.json, and chosen.
    mine = tmp_path / "xdg" / "voice-companion" / "personas"
    mine.mkdir(parents=True)
    (mine / "lu.card.json").write_bytes(lumi(tmp_path).read_bytes())
    (mine / "lu.toml").write_text('card = "lu.card.json"\n', encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "persona").write_text("lu\n")
    listing = {r["key"]: r for r in json.loads(cli(tmp_path, "list", "--json").stdout)}
    assert listing["lu"]["in_use"] and listing["lu"]["name"] == "Lumi"
    assert not listing["robin"]["in_use"]
    for name in ("lu", "Lu", "Lumi", "lu.toml"):
        shown = cli(tmp_path, "show", name, "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["key"] == "lu"
        assert json.loads(shown.stdout)["nickname"] == "Lu"
    exported = cli(tmp_path, "export", "Lumi", str(tmp_path / "back.png"))
    assert exported.returncode == 0, exported.stderr


def test_a_card_persona_exports_to_toml_and_imports_back(tmp_path: Path) -> None:
    lib = library(tmp_path)
    before = lib.install_card(lumi(tmp_path))
    out = tmp_path / "export" / "lighthouse.toml"
    out.parent.mkdir()
    lib.export("Lu", out)
    assert (out.parent / "lighthouse.card.json").is_file()  # the card goes with it
    assert read_persona(out).replace(key="") == before.replace(key="")
    again = library(tmp_path / "elsewhere").install_file(out)
    assert again.replace(key="") == before.replace(key="")


def test_removing_the_persona_in_use_is_asked_or_refused(tmp_path: Path) -> None:
    assert cli(tmp_path, "create", "--name", "Fern", "--use").returncode == 0
    assert cli(tmp_path, "create", "--name", "Ivy").returncode == 0
    refused = cli(tmp_path, "remove", "Fern")  # stdin is not a terminal: no one to ask
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "fern is the persona in use" in refused.stderr and "--yes" in refused.stderr
    assert (tmp_path / "xdg" / "voice-companion" / "personas" / "fern.toml").is_file()
    other = cli(tmp_path, "remove", "ivy")  # not in use: removed unasked
    assert other.returncode == 0 and "removed Ivy" in other.stdout
    gone = cli(tmp_path, "remove", "Fern", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert "removed Fern" in gone.stdout and "Robin will speak" in gone.stdout
    listing = {r["key"]: r for r in json.loads(cli(tmp_path, "list", "--json").stdout)}
    assert "fern" not in listing and listing["robin"]["in_use"]
