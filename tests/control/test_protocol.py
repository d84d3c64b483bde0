"""The wire format: every command, every malformed request, replies."""

from __future__ import annotations

import json

import pytest

from voice_companion.control.protocol import (
    MAX_LINE_BYTES,
    MAX_PERSONA_NAME_CHARS,
    MAX_SAY_CHARS,
    encode_line,
    error_reply,
    ok_reply,
    parse_reply,
    parse_request,
    to_request,
)
from voice_companion.errors import CompanionError, ControlError
from voice_companion.events import (
    Command,
    Mute,
    PttPress,
    PttRelease,
    PttToggle,
    Quit,
    ReportStatus,
    Say,
    StopSpeaking,
    SwitchPersona,
    Unmute,
)

VALID: list[tuple[str, Command]] = [
    ('{"cmd": "status"}', ReportStatus()),
    ('{"cmd": "ptt", "action": "press"}', PttPress()),
    ('{"cmd": "ptt", "action": "release"}', PttRelease()),
    ('{"cmd": "ptt", "action": "toggle"}', PttToggle()),
    ('{"cmd": "mute"}', Mute()),
    ('{"cmd": "unmute"}', Unmute()),
    ('{"cmd": "say", "text": "Hello there."}', Say("Hello there.")),
    ('{"cmd": "say", "text": "Grüße, 你好\\nzwei Zeilen"}', Say("Grüße, 你好\nzwei Zeilen")),
    ('{"cmd": "stop"}', StopSpeaking()),
    ('{"cmd": "quit"}', Quit()),
    ('{"cmd": "persona", "name": "Ada"}', SwitchPersona("Ada")),
    ('{"action": "toggle", "cmd": "ptt"}', PttToggle()),
]


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_every_command_parses(line: str, expected: Command) -> None:
    assert parse_request(line.encode()) == expected
    assert parse_request(line.encode() + b"\n") == expected
    assert parse_request(line.encode() + b"\r\n") == expected


@pytest.mark.parametrize(("line", "expected"), VALID)
def test_to_request_round_trips(line: str, expected: Command) -> None:
    assert parse_request(encode_line(to_request(expected))) == expected


MALFORMED: list[tuple[bytes, str]] = [
    (b"", "empty request"),
    (b"   \n", "empty request"),
    (b"not json", "not JSON"),
    (b'{"cmd": "status"', "not JSON"),
    (b'{"cmd": "status"} {"cmd": "mute"}', "not JSON"),
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b"[" * 50_000, "not JSON (nested too deeply)"),
    (b'["status"]', "must be a JSON object, not an array"),
    (b'"status"', "must be a JSON object, not a string"),
    (b"42", "must be a JSON object, not a number"),
    (b"null", "must be a JSON object, not null"),
    (b"{}", "no 'cmd' field"),
    (b'{"command": "status"}', "no 'cmd' field"),
    (b'{"cmd": 3}', "'cmd' must be a string, not a number"),
    (b'{"cmd": null}', "'cmd' must be a string, not null"),
    (b'{"cmd": "dance"}', 'unknown cmd "dance"'),
    (b'{"cmd": "STATUS"}', 'unknown cmd "STATUS"'),
    (b'{"cmd": "status", "verbose": true}', 'status: unexpected field "verbose"'),
    (b'{"cmd": "mute", "a": 1, "b": 2}', 'mute: unexpected fields "a", "b"'),
    (b'{"cmd": "ptt"}', "ptt: missing field 'action'"),
    (b'{"cmd": "ptt", "action": true}', "ptt: 'action' must be a string, not a boolean"),
    (b'{"cmd": "ptt", "action": "hold"}', 'unknown ptt action "hold"'),
    (b'{"cmd": "ptt", "action": "press", "key": "f9"}', "ptt: unexpected field"),
    (b'{"cmd": "say"}', "say: missing field 'text'"),
    (b'{"cmd": "say", "text": 5}', "say: 'text' must be a string, not a number"),
    (b'{"cmd": "say", "text": ["a"]}', "say: 'text' must be a string, not an array"),
    (b'{"cmd": "say", "text": "  \\n "}', "say: 'text' is empty"),
    (b'{"cmd": "persona"}', "persona: missing field 'name'"),
    (b'{"cmd": "persona", "name": {}}', "persona: 'name' must be a string, not an object"),
    (b'{"cmd": "persona", "name": " "}', "persona: 'name' is empty"),
    (b'{"cmd": "persona", "name": "a\\nb"}', "persona: 'name' contains control characters"),
    # int() refuses more than 4300 digits with a plain ValueError, not a JSONDecodeError.
    (b'{"cmd": "status", "n": ' + b"7" * 5000 + b"}", "a number has too many digits"),
    (b'{"cmd": "say", "text": ' + b"1" * 5000 + b"}", "a number has too many digits"),
    # Which copy wins differs between parsers: a request with a key twice means nothing.
    (b'{"cmd": "status", "cmd": "quit"}', 'field "cmd" more than once'),
    (b'{"cmd": "say", "text": "a", "text": "b"}', 'field "text" more than once'),
    (b'{"cmd": "ptt", "action": {"x": 1, "x": 2}}', 'field "x" more than once'),
]


@pytest.mark.parametrize(("line", "message"), MALFORMED)
def test_malformed_requests_are_refused_in_one_line(line: bytes, message: str) -> None:
    with pytest.raises(ControlError) as caught:
        parse_request(line)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert len(text) < 200
    assert isinstance(caught.value, CompanionError)


def test_say_text_length_limit() -> None:
    assert parse_request(encode_line(to_request(Say("a" * MAX_SAY_CHARS)))) == Say(
        "a" * MAX_SAY_CHARS
    )
    with pytest.raises(ControlError, match=r"say: 'text' is too long \(4001 characters"):
        parse_request(encode_line({"cmd": "say", "text": "a" * (MAX_SAY_CHARS + 1)}))


def test_persona_name_length_limit() -> None:
    name = "n" * MAX_PERSONA_NAME_CHARS
    assert parse_request(encode_line({"cmd": "persona", "name": name})) == SwitchPersona(name)
    with pytest.raises(ControlError, match="persona: 'name' is too long"):
        parse_request(encode_line({"cmd": "persona", "name": name + "n"}))


def test_line_length_limit_is_exact() -> None:
    request = b'{"cmd":"status"}'
    longest = request + b" " * (MAX_LINE_BYTES - len(request))
    assert len(longest) == MAX_LINE_BYTES
    assert parse_request(longest + b"\n") == ReportStatus()
    with pytest.raises(ControlError, match="request too long: more than 65536 bytes"):
        parse_request(longest + b" ")


def test_unknown_cmd_message_is_bounded() -> None:
    with pytest.raises(ControlError) as caught:
        parse_request(json.dumps({"cmd": "x" * 10_000 + "\n"}).encode())
    assert len(str(caught.value)) < 200
    assert "\n" not in str(caught.value)


def test_encode_line_is_one_utf8_line() -> None:
    line = encode_line({"ok": True, "text": "zwei\nZeilen, 你好"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line.decode("utf-8")) == {"ok": True, "text": "zwei\nZeilen, 你好"}


def test_replies() -> None:
    assert ok_reply() == {"ok": True}
    assert ok_reply({"state": "idle"}) == {"ok": True, "state": "idle"}
    with pytest.raises(ValueError):
        ok_reply({"ok": False})
    assert error_reply("bad\nthing  here") == {"ok": False, "error": "bad thing here"}
    assert parse_reply(b'{"ok": true, "state": "idle"}') == {"ok": True, "state": "idle"}
    assert parse_reply(b'{"ok": false, "error": "no"}\n') == {"ok": False, "error": "no"}
    for bad, message in [
        (b"hello", "not JSON"),
        (b"\xff", "not JSON"),
        (b"[]", "boolean 'ok'"),
        (b'{"ok": 1}', "boolean 'ok'"),
        (b'{"ok": false}', "without an 'error'"),
        (b'{"ok": true, "turns": ' + b"9" * 5000 + b"}", "not JSON"),
    ]:
        with pytest.raises(ControlError, match=message):
            parse_reply(bad)
