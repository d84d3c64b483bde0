"""The control socket's wire format: JSON lines, UTF-8, one request and one reply per line.

Requests::

    {"cmd": "status"}
    {"cmd": "ptt", "action": "press" | "release" | "toggle"}
    {"cmd": "mute"}        {"cmd": "unmute"}
    {"cmd": "say", "text": "..."}
    {"cmd": "stop"}        {"cmd": "quit"}
    {"cmd": "persona", "name": "..."}
    {"cmd": "forgotten"}   (sent by `memory forget`: drop what was forgotten now)

Replies: ``{"ok": true, ...fields}`` or ``{"ok": false, "error": "one line"}``.

A line is at most ``MAX_LINE_BYTES`` bytes, not counting its newline. Unknown fields are
refused (a typo must not pass silently), and so is a field given twice: JSON parsers disagree
on which copy wins, so ``{"cmd": "status", "cmd": "quit"}`` must not mean anything.
"""

from __future__ import annotations

import json
from typing import Any

from voice_companion.errors import ControlError
from voice_companion.events import (
    Command,
    MemoryForgotten,
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

MAX_LINE_BYTES = 64 * 1024
"""Longest request line accepted, in bytes, newline not counted."""
MAX_SAY_CHARS = 4000
"""Longest text ``say`` accepts, in characters."""
MAX_PERSONA_NAME_CHARS = 200
"""Longest persona name accepted, in characters."""

_PTT_ACTIONS: dict[str, Command] = {
    "press": PttPress(),
    "release": PttRelease(),
    "toggle": PttToggle(),
}
_NO_FIELDS: dict[str, Command] = {
    "status": ReportStatus(),
    "mute": Mute(),
    "unmute": Unmute(),
    "stop": StopSpeaking(),
    "quit": Quit(),
    "forgotten": MemoryForgotten(),
}
COMMAND_NAMES = ("status", "ptt", "mute", "unmute", "say", "stop", "quit", "persona", "forgotten")


def parse_request(line: bytes) -> Command:
    """One request line (trailing newline optional) → its command.

    Raises ``ControlError`` with a one-line message when the line is not a valid request.
    """
    body = line.removesuffix(b"\n").removesuffix(b"\r")
    if len(body) > MAX_LINE_BYTES:
        raise ControlError(f"request too long: more than {MAX_LINE_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ControlError("request is not valid UTF-8") from None
    if not text.strip():
        raise ControlError('empty request: expected a JSON object such as {"cmd": "status"}')
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise ControlError(f"request is not JSON ({_json_problem(exc)})") from None
    if not isinstance(obj, dict):
        raise ControlError(f"request must be a JSON object, not {_json_type(obj)}")
    return _command(obj)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ControlError(f"request has the field {_short(key)} more than once")
        obj[key] = value
    return obj


def _json_problem(exc: ValueError | RecursionError) -> str:
    """What is wrong with a line ``json.loads`` refused, in a few words."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    # int() refuses more than sys.get_int_max_str_digits() digits (4300) with a ValueError.
    return "a number has too many digits"


def _command(obj: dict[str, Any]) -> Command:
    if "cmd" not in obj:
        raise ControlError("request has no 'cmd' field")
    cmd = obj["cmd"]
    if not isinstance(cmd, str):
        raise ControlError(f"'cmd' must be a string, not {_json_type(cmd)}")
    if cmd in _NO_FIELDS:
        _only_fields(obj, cmd)
        return _NO_FIELDS[cmd]
    if cmd == "ptt":
        _only_fields(obj, cmd, "action")
        action = _string_field(obj, cmd, "action")
        if action not in _PTT_ACTIONS:
            raise ControlError(
                f"unknown ptt action {_short(action)}: expected press, release or toggle"
            )
        return _PTT_ACTIONS[action]
    if cmd == "say":
        _only_fields(obj, cmd, "text")
        text = _string_field(obj, cmd, "text")
        if not text.strip():
            raise ControlError("say: 'text' is empty")
        if len(text) > MAX_SAY_CHARS:
            raise ControlError(
                f"say: 'text' is too long ({len(text)} characters, at most {MAX_SAY_CHARS})"
            )
        return Say(text)
    if cmd == "persona":
        _only_fields(obj, cmd, "name")
        name = _string_field(obj, cmd, "name").strip()
        if not name:
            raise ControlError("persona: 'name' is empty")
        if len(name) > MAX_PERSONA_NAME_CHARS:
            raise ControlError(
                f"persona: 'name' is too long (at most {MAX_PERSONA_NAME_CHARS} characters)"
            )
        if not name.isprintable():
            raise ControlError("persona: 'name' contains control characters")
        return SwitchPersona(name)
    raise ControlError(f"unknown cmd {_short(cmd)}: expected one of {', '.join(COMMAND_NAMES)}")


def _only_fields(obj: dict[str, Any], cmd: str, *fields: str) -> None:
    extra = sorted(set(obj) - {"cmd", *fields})
    if extra:
        names = ", ".join(_short(name) for name in extra[:3])
        raise ControlError(f"{cmd}: unexpected field{'s' if len(extra) > 1 else ''} {names}")


def _string_field(obj: dict[str, Any], cmd: str, field: str) -> str:
    if field not in obj:
        raise ControlError(f"{cmd}: missing field '{field}'")
    value = obj[field]
    if not isinstance(value, str):
        raise ControlError(f"{cmd}: '{field}' must be a string, not {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case _:
            return "an object"


def _short(text: str, limit: int = 40) -> str:
    """Quote a client-supplied string for an error message: one line, bounded length."""
    if len(text) <= limit:
        return json.dumps(text)
    return json.dumps(text[:limit])[:-1] + '..."'


def to_request(command: Command) -> dict[str, Any]:
    """The request object for ``command`` (the inverse of ``parse_request``)."""
    match command:
        case ReportStatus():
            return {"cmd": "status"}
        case PttPress():
            return {"cmd": "ptt", "action": "press"}
        case PttRelease():
            return {"cmd": "ptt", "action": "release"}
        case PttToggle():
            return {"cmd": "ptt", "action": "toggle"}
        case Mute():
            return {"cmd": "mute"}
        case Unmute():
            return {"cmd": "unmute"}
        case Say(text=text):
            return {"cmd": "say", "text": text}
        case StopSpeaking():
            return {"cmd": "stop"}
        case Quit():
            return {"cmd": "quit"}
        case SwitchPersona(name=name):
            return {"cmd": "persona", "name": name}
        case MemoryForgotten():
            return {"cmd": "forgotten"}


def encode_line(obj: dict[str, Any]) -> bytes:
    """One JSON object as one UTF-8 line (newline included; JSON escapes inner newlines)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def ok_reply(fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"ok": true, **fields}``; ``fields`` may not set ``ok`` or ``error``."""
    fields = fields or {}
    if "ok" in fields or "error" in fields:
        raise ValueError("reply fields may not be named 'ok' or 'error'")
    return {"ok": True, **fields}


def error_reply(message: str) -> dict[str, Any]:
    """``{"ok": false, "error": message}`` with the message folded onto one line."""
    return {"ok": False, "error": " ".join(message.split()) or "error"}


def parse_reply(line: bytes) -> dict[str, Any]:
    """A reply line → its object; ``ControlError`` if it is not a JSON object with ``ok``."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError, digits
        raise ControlError("the companion sent a reply that is not JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("ok"), bool):
        raise ControlError("the companion sent a reply without a boolean 'ok' field")
    if obj["ok"] is False and not isinstance(obj.get("error"), str):
        raise ControlError("the companion sent a failure reply without an 'error' message")
    return obj
