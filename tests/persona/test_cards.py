"""Character Card V2/V3 import and export; PNGs are built here with zlib and struct."""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from voice_companion.errors import ConfigError
from voice_companion.persona.card_format import (
    SPEC_V2,
    SPEC_V3,
    CardError,
    Character,
    ExampleTurn,
    card_dict,
    read_card,
    substitute,
    write_card,
)
from voice_companion.persona.lorebook import Lorebook, LoreEntry, active_entries

SIG = b"\x89PNG\r\n\x1a\n"

UNKNOWN_EXTENSIONS: dict[str, Any] = {
    "depth_prompt": {"prompt": "Stay in character, {{char}}.", "depth": 4, "role": "system"},
    "zeta_first": [1, 2.5, None, True, {"nested": ["é", "猫", "\u2028"]}],
    "alpha_second": 12345678901234567890,
    "talkativeness": "0.5",
}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(*text_chunks: tuple[bytes, bytes]) -> bytes:
    ihdr = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00\x00\x00\xff")
    texts = b"".join(chunk(b"tEXt", k + b"\x00" + v) for k, v in text_chunks)
    return SIG + chunk(b"IHDR", ihdr) + texts + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def b64(card: object) -> bytes:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))


def v2_card(**data: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Aria",
        "description": "{{char}} is a lighthouse keeper who talks to {{user}} at night.",
        "personality": "calm",
        "scenario": "",
        "first_mes": "Hello, {{user}}. I'm {{char}}.",
        "mes_example": "",
        "creator_notes": "",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": ["Evening, <USER>. <BOT> here."],
        "tags": ["calm"],
        "creator": "someone",
        "character_version": "1",
        "extensions": UNKNOWN_EXTENSIONS,
    }
    base.update(data)
    return {"spec": SPEC_V2, "spec_version": "2.0", "data": base}


def v3_card(**data: Any) -> dict[str, Any]:
    card = v2_card(**data)
    card["spec"], card["spec_version"] = SPEC_V3, "3.0"
    card["data"].setdefault("group_only_greetings", ["Hi, everyone."])
    card["data"].setdefault("nickname", "Ari")
    card["data"].setdefault(
        "assets", [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}]
    )
    return card


def write(tmp_path: Path, name: str, blob: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(blob)
    return path


# ----------------------------------------------------------------------- PNG import


def test_png_with_only_a_v2_chunk(tmp_path: Path) -> None:
    path = write(tmp_path, "aria.png", make_png((b"chara", b64(v2_card()))))
    character = read_card(path)
    assert character.name == "Aria"
    assert character.spec == SPEC_V2
    assert character.personality == "calm"
    assert character.extensions == UNKNOWN_EXTENSIONS


def test_png_with_only_a_v3_chunk(tmp_path: Path) -> None:
    path = write(tmp_path, "aria.png", make_png((b"ccv3", b64(v3_card()))))
    character = read_card(path)
    assert character.spec == SPEC_V3
    assert character.nickname == "Ari"
    assert character.group_only_greetings == ("Hi, everyone.",)


def test_png_with_both_chunks_reads_ccv3(tmp_path: Path) -> None:
    v2 = v2_card(name="Old name")
    v3 = v3_card(name="New name")
    for order in (
        [(b"chara", b64(v2)), (b"ccv3", b64(v3))],
        [(b"ccv3", b64(v3)), (b"chara", b64(v2))],
    ):
        path = write(tmp_path, "both.png", make_png(*order))
        assert read_card(path).name == "New name"


def test_unpadded_and_wrapped_base64_is_accepted(tmp_path: Path) -> None:
    text = b64(v2_card()).rstrip(b"=")
    wrapped = b"\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    path = write(tmp_path, "a.png", make_png((b"chara", wrapped)))
    assert read_card(path).name == "Aria"


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "blob", "problem"),
    [
        ("nochunk.png", make_png(), "no character card"),
        ("other.png", make_png((b"Comment", b"hello")), "no character card"),
        ("b64.png", make_png((b"chara", b"!!!not base64!!!")), "not valid base64"),
        ("notjson.png", make_png((b"chara", base64.b64encode(b"{oops"))), "not valid JSON"),
        ("latin.png", make_png((b"chara", base64.b64encode(b"\xff\xfe{}"))), "not UTF-8"),
        ("list.png", make_png((b"ccv3", b64([1, 2]))), "must be a JSON object"),
        (
            "v1.png",
            make_png((b"chara", b64({"name": "Old", "first_mes": "hi"}))),
            "spec is missing",
        ),
        ("nodata.png", make_png((b"chara", b64({"spec": SPEC_V2}))), "no 'data' object"),
        ("noname.png", make_png((b"chara", b64(v2_card(name="")))), "has no name"),
        (
            "badtype.png",
            make_png((b"chara", b64(v2_card(first_mes=3)))),
            "data.first_mes must be a string",
        ),
        (
            "badlist.png",
            make_png((b"chara", b64(v2_card(alternate_greetings="hi")))),
            "alternate_greetings",
        ),
        (
            "badext.png",
            make_png((b"chara", b64(v2_card(extensions=[])))),
            "extensions must be an object",
        ),
        (
            "badbook.png",
            make_png((b"chara", b64(v2_card(character_book={"entries": [{"keys": "x"}]})))),
            "data.character_book.entries[0].keys must be a list of strings",
        ),
        ("text.png", b"this is not a png at all", "not a PNG image"),
        ("cut.png", make_png((b"chara", b64(v2_card())))[:60], "truncated"),
        ("empty.json", b"", "empty"),
        ("broken.json", b'{"spec": ', "not valid JSON"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_bad_cards_fail_with_one_line(tmp_path: Path, name: str, blob: bytes, problem: str) -> None:
    path = write(tmp_path, name, blob)
    with pytest.raises(CardError) as info:
        read_card(path)
    message = str(info.value)
    assert problem in message
    assert "\n" not in message
    assert str(path) in message
    assert isinstance(info.value, ConfigError)


def test_corrupt_crc_is_refused(tmp_path: Path) -> None:
    blob = bytearray(make_png((b"chara", b64(v2_card()))))
    blob[40] ^= 0xFF  # inside the tEXt chunk
    with pytest.raises(CardError, match="bad CRC"):
        read_card(write(tmp_path, "crc.png", bytes(blob)))


def test_a_50_mb_file_is_refused_by_its_size(tmp_path: Path) -> None:
    # A valid card PNG padded (sparsely) to 50 MB: only a size check can refuse it.
    path = write(tmp_path, "huge.png", make_png((b"chara", b64(v2_card()))))
    with path.open("r+b") as f:
        f.truncate(50 * 1024 * 1024)
    with pytest.raises(
        CardError, match=r"too large for a character card \(50\.0 MB, limit 32 MB\)"
    ):
        read_card(path)
    assert read_card(path, max_bytes=60 * 1024 * 1024).name == "Aria"


# ----------------------------------------------------------------------- export


def test_json_round_trip_keeps_unknown_extensions_exactly(tmp_path: Path) -> None:
    card = v2_card()
    card["data"]["x_unknown_field"] = {"kept": True}
    card["top_level_unknown"] = 7
    src = write(tmp_path, "in.json", json.dumps(card, ensure_ascii=False, indent=1).encode())
    out = tmp_path / "out.json"
    write_card(read_card(src), out)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == card
    assert json.dumps(written["data"]["extensions"], ensure_ascii=False) == json.dumps(
        UNKNOWN_EXTENSIONS, ensure_ascii=False
    )
    assert list(written["data"]["extensions"]) == list(UNKNOWN_EXTENSIONS)  # key order too


def test_edit_changes_only_the_edited_field(tmp_path: Path) -> None:
    card = v3_card(character_book={"name": "Lore", "extensions": {"x": 1}, "entries": []})
    src = write(tmp_path, "in.json", json.dumps(card).encode())
    edited = dataclasses.replace(read_card(src), personality="cheerful")
    out = tmp_path / "out.json"
    write_card(edited, out)
    written = json.loads(out.read_text(encoding="utf-8"))
    card["data"]["personality"] = "cheerful"
    assert written == card


def test_png_export_writes_both_chunks_and_reimports(tmp_path: Path) -> None:
    src = write(tmp_path, "in.json", json.dumps(v3_card()).encode())
    character = read_card(src)
    out = tmp_path / "out.png"
    write_card(character, out)
    blob = out.read_bytes()
    assert blob.startswith(SIG)
    texts = _text_chunks(blob)
    v2 = json.loads(base64.b64decode(texts[b"chara"]))
    v3 = json.loads(base64.b64decode(texts[b"ccv3"]))
    assert (v2["spec"], v2["spec_version"], v3["spec"], v3["spec_version"]) == (
        SPEC_V2,
        "2.0",
        SPEC_V3,
        "3.0",
    )
    assert "nickname" not in v2["data"] and "group_only_greetings" not in v2["data"]
    assert v2["data"]["creator_notes"].startswith("This character card is Character Card V3")
    assert v3 == v3_card()
    assert v2["data"]["extensions"] == v3["data"]["extensions"] == UNKNOWN_EXTENSIONS
    assert read_card(out) == character


def test_png_export_into_a_given_image_replaces_old_card_chunks(tmp_path: Path) -> None:
    old = make_png((b"chara", b64(v2_card(name="Stale"))), (b"Comment", b"keep me"))
    image = write(tmp_path, "art.png", old)
    character = Character(name="Fresh", first_mes="Hi {{user}}")
    out = tmp_path / "fresh.png"
    write_card(character, out, image=image)
    blob = out.read_bytes()
    texts = _all_text_chunks(blob)
    assert [k for k, _ in texts] == [b"Comment", b"chara", b"ccv3"]
    assert _chunk_kinds(blob) == [b"IHDR", b"tEXt", b"IDAT", b"tEXt", b"tEXt", b"IEND"]
    again = read_card(out)
    assert again.name == "Fresh" and again.greetings("Sam") == ("Hi Sam",)
    v2 = json.loads(base64.b64decode(_text_chunks(blob)[b"chara"]))
    assert v2["data"]["name"] == "Fresh"
    for key in ("description", "personality", "scenario", "mes_example", "system_prompt"):
        assert v2["data"][key] == ""
    assert v2["data"]["extensions"] == {}


def test_v2_card_round_trips_through_json_as_v2(tmp_path: Path) -> None:
    src = write(tmp_path, "in.json", json.dumps(v2_card()).encode())
    out = tmp_path / "out.json"
    write_card(read_card(src), out)
    assert json.loads(out.read_text(encoding="utf-8")) == v2_card()
    write_card(read_card(src), out, spec=SPEC_V3)
    upgraded = json.loads(out.read_text(encoding="utf-8"))
    assert upgraded["spec"] == SPEC_V3 and upgraded["data"]["group_only_greetings"] == []


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    with pytest.raises(CardError, match="not a PNG image"):
        write_card(Character(name="A"), out, image=b"not a png")
    with pytest.raises(CardError, match=r"must end in \.json or \.png"):
        write_card(Character(name="A"), tmp_path / "out.txt")
    assert list(tmp_path.iterdir()) == []


def test_placeholder_png_is_a_valid_image(tmp_path: Path) -> None:
    out = tmp_path / "c.png"
    write_card(Character(name="A"), out)
    blob = out.read_bytes()
    assert _chunk_kinds(blob) == [b"IHDR", b"IDAT", b"tEXt", b"tEXt", b"IEND"]
    idat = _chunk_data(blob, b"IDAT")
    assert len(zlib.decompress(idat)) == 1 + 3  # filter byte + one RGB pixel


# ----------------------------------------------------------------------- text


def test_substitution() -> None:
    text = "{{char}} waves at {{user}}. <BOT> and <USER>; {{ CHAR }}, {{User}}, <bot>."
    assert substitute(text, "Aria", "Sam") == "Aria waves at Sam. Aria and Sam; Aria, Sam, Aria."
    assert substitute("{{user}}", "Aria", "{{char}}") == "{{char}}"  # one pass only


def test_greetings_use_nickname_and_skip_blanks() -> None:
    character = Character(
        name="Aria",
        nickname="Ari",
        first_mes="Hello, {{user}}. I'm {{char}}.",
        alternate_greetings=("Evening, <USER>.", "  "),
        group_only_greetings=("Hi all",),
    )
    assert character.greetings("Sam") == ("Hello, Sam. I'm Ari.", "Evening, Sam.")
    assert Character(name="B").greetings() == ()


def test_example_exchanges() -> None:
    character = Character(
        name="Aria",
        mes_example=(
            "<START>\n{{user}}: How was the storm?\n{{char}}: Loud.\nThe lamp held.\n"
            "<START>\n<USER>: Hi <BOT>\n<BOT>: Hi {{user}}!\nAria: Again, hello.\n"
            "<START>\n\n"
        ),
    )
    assert character.example_exchanges("Sam") == (
        (
            ExampleTurn("user", "How was the storm?"),
            ExampleTurn("assistant", "Loud.\nThe lamp held."),
        ),
        (
            ExampleTurn("user", "Hi Aria"),
            ExampleTurn("assistant", "Hi Sam!"),
            ExampleTurn("assistant", "Again, hello."),
        ),
    )


# ----------------------------------------------------------------------- lorebook


def _book(**overrides: Any) -> dict[str, Any]:
    entries = [
        {
            "keys": ["storm"],
            "content": "Storms scare {{char}}.",
            "insertion_order": 20,
            "enabled": True,
            "extensions": {"x_mine": [1]},
        },
        {
            "keys": ["cat"],
            "content": "The cat is called Pip.",
            "insertion_order": 5,
            "enabled": True,
            "extensions": {},
        },
        {
            "keys": [],
            "content": "@@depth 4\nThe lighthouse is on an island.",
            "constant": True,
            "insertion_order": 10,
            "enabled": True,
            "extensions": {},
        },
        {
            "keys": ["storm"],
            "content": "Disabled.",
            "insertion_order": 1,
            "enabled": False,
            "extensions": {},
        },
        {
            "keys": ["ship"],
            "secondary_keys": ["wreck", "sank"],
            "selective": True,
            "content": "A ship sank here in 1902.",
            "insertion_order": 30,
            "enabled": True,
            "extensions": {},
        },
        {
            "keys": ["Pip"],
            "case_sensitive": True,
            "content": "Pip is ginger.",
            "insertion_order": 6,
            "enabled": True,
            "extensions": {},
        },
        {
            "keys": ["灯台"],
            "content": "灯台の話。",
            "insertion_order": 40,
            "enabled": True,
            "extensions": {},
        },
        {
            "keys": ["storm"],
            "use_regex": True,
            "content": "Regex entry.",
            "insertion_order": 0,
            "enabled": True,
            "extensions": {},
        },
    ]
    book: dict[str, Any] = {"name": "Lore", "extensions": {}, "entries": entries}
    book.update(overrides)
    return book


def test_lorebook_activation_order_and_rules() -> None:
    book = Lorebook.from_dict(_book())
    constant = "The lighthouse is on an island."
    assert active_entries(book, []) == [constant]
    assert active_entries(book, ["A STORM is coming", "my cat hid"]) == [
        "The cat is called Pip.",
        constant,
        "Storms scare {{char}}.",
    ]
    assert active_entries(book, ["a category of storms"]) == [constant]  # whole words only
    assert active_entries(book, ["the ship"]) == [constant]  # selective: needs a secondary key
    assert active_entries(book, ["the ship", "it SANK"])[-1] == "A ship sank here in 1902."
    assert "Pip is ginger." not in active_entries(book, ["pip"])  # case sensitive
    assert "Pip is ginger." in active_entries(book, ["Pip"])
    assert active_entries(book, ["昨日灯台に行った"])[-1] == "灯台の話。"  # no word edges in CJK


def test_lorebook_scan_depth_limits_to_recent_messages() -> None:
    book = Lorebook.from_dict(_book(scan_depth=1))
    assert "The cat is called Pip." not in active_entries(book, ["cat", "nothing"])
    assert "The cat is called Pip." in active_entries(book, ["nothing", "cat"])


def test_character_lore_substitutes_and_book_round_trips(tmp_path: Path) -> None:
    card = v2_card(character_book=_book())
    src = write(tmp_path, "in.json", json.dumps(card).encode())
    character = read_card(src)
    assert character.lore(["storm"], "Sam")[-1] == "Storms scare Aria."
    assert character.character_book is not None
    # Disable one entry: that entry changes, everything else of the book stays as it was.
    entries = list(character.character_book.entries)
    entries[1] = dataclasses.replace(entries[1], enabled=False)
    book = dataclasses.replace(character.character_book, entries=tuple(entries))
    out = tmp_path / "out.json"
    write_card(dataclasses.replace(character, character_book=book), out)
    written = json.loads(out.read_text(encoding="utf-8"))
    card["data"]["character_book"]["entries"][1]["enabled"] = False
    assert written == card


def test_new_lore_entry_gets_required_fields() -> None:
    entry = LoreEntry(keys=("sea",), content="The sea is cold.")
    assert entry.to_dict() == {
        "keys": ["sea"],
        "content": "The sea is cold.",
        "enabled": True,
        "insertion_order": 0,
        "extensions": {},
    }
    character = Character(name="A", character_book=Lorebook(entries=(entry,)))
    data = card_dict(character)["data"]
    assert data["character_book"]["entries"][0]["keys"] == ["sea"]
    assert Lorebook.from_dict(data["character_book"]).entries[0].content == "The sea is cold."


# ----------------------------------------------------------------------- helpers


def _chunks(blob: bytes) -> list[tuple[bytes, bytes]]:
    pos, out = len(SIG), []
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        out.append((blob[pos + 4 : pos + 8], blob[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _chunk_kinds(blob: bytes) -> list[bytes]:
    return [k for k, _ in _chunks(blob)]


def _chunk_data(blob: bytes, kind: bytes) -> bytes:
    return next(d for k, d in _chunks(blob) if k == kind)


def _all_text_chunks(blob: bytes) -> list[tuple[bytes, bytes]]:
    return [tuple(d.split(b"\x00", 1)) for k, d in _chunks(blob) if k == b"tEXt"]  # type: ignore[misc]


def _text_chunks(blob: bytes) -> dict[bytes, bytes]:
    return dict(_all_text_chunks(blob))
