"""printable() and the log filter on their own (the corpus runs them through the CLI)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from voice_companion.cli.private_logs import PrivateErrorsFilter, summary
from voice_companion.cli.safe_text import PrintableStream, printable
from voice_companion.errors import LlmError

UNSAFE = [chr(c) for c in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]]
UNSAFE += ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068"]
UNSAFE += ["\u2069", "\udcff", "\ud800"]


@pytest.mark.parametrize("char", UNSAFE, ids=[f"U+{ord(c):04X}" for c in UNSAFE])
def test_each_unsafe_character_is_shown_as_an_escape(char: str) -> None:
    assert printable(f"a{char}b") == f"a\\u{ord(char):04x}b"


def test_text_newlines_tabs_and_other_scripts_are_kept() -> None:
    text = "Grüße, 你好 🌞 — «ok»\n\tnext line\u200b"
    assert printable(text) == text
    assert printable("a\nb\tc", one_line=True) == "a\\u000ab\\u0009c"


def test_json_stays_json_with_the_same_meaning() -> None:
    value = {"name": "".join(UNSAFE) + " plain", "n": [1, "\u202eevil"]}
    shown = printable(json.dumps(value, ensure_ascii=False))
    assert json.loads(shown) == value
    assert shown.isprintable()


def test_the_stream_escapes_every_write() -> None:
    out = io.StringIO()
    stream = PrintableStream(out)
    print("title \x1b]0;owned\x07", file=stream)  # type: ignore[arg-type]
    stream.writelines(["\x9b2J", "\n"])
    assert out.getvalue() == "title \\u001b]0;owned\\u0007\n\\u009b2J\n"


WORDS = "my sister Philomena"


def test_summaries_keep_what_failed_and_drop_what_was_quoted() -> None:
    quoting = LlmError(f"the LLM server at http://h:1/v1 answered HTTP 400 Bad Request: {WORDS}")
    assert summary(quoting) == (
        "the LLM server at http://h:1/v1 answered HTTP 400 Bad Request (-vv shows the details)"
    )
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as cause:
            raise LlmError(f"cannot reach the LLM server: {WORDS}") from cause
    except LlmError as exc:
        assert summary(exc) == (
            "cannot reach the LLM server (Connection refused; -vv shows the details)"
        )
    assert summary(LlmError("the prompt is too long")) == "the prompt is too long"
    assert summary(RuntimeError(WORDS)) == "RuntimeError"
    assert summary(OSError(28, "No space left on device")) == "OSError: No space left on device"


def _logged(level: int, emit: object) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(level)
    if level > logging.DEBUG:
        handler.addFilter(PrivateErrorsFilter())
    log = logging.Logger("test-private", logging.DEBUG)
    log.addHandler(handler)
    assert callable(emit)
    emit(log)
    return out.getvalue()


def _emit(log: logging.Logger) -> None:
    log.warning("the language model failed: %s", LlmError(f"it said: {WORDS}"))
    log.debug("what was said: %s", WORDS)
    try:
        raise KeyError(WORDS)
    except KeyError:
        log.exception("a turn failed")


def test_logs_above_debug_hold_no_quoted_words() -> None:
    shown = _logged(logging.INFO, _emit)
    assert "Philomena" not in shown
    assert "the language model failed: it said (-vv shows the details)" in shown
    assert "a turn failed (KeyError; -vv shows the details)" in shown
    assert "Traceback" not in shown
    # At -vv everything is there, the traceback too.
    everything = _logged(logging.DEBUG, _emit)
    assert everything.count("Philomena") == 3 and "Traceback" in everything
