"""Text from outside (cards, memories, model replies, transcripts, file names) made safe to
print on a terminal.

A terminal obeys what it is sent: ESC and C1 sequences set titles, move the cursor, rewrite
the screen or colour it, a carriage return overwrites the line, and bidi overrides reorder
what is shown. ``printable`` replaces every such character with a visible ``\\u001b``-style
escape. The escape is JSON's own, and JSON keeps every other character outside strings
ASCII, so a JSON document stays valid and means the same once passed through it.

``PrintableStream`` applies it to everything the command line writes (``main`` wraps stdout
and stderr with it), so no printer can forget.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

# C0 controls but tab and newline, DEL and C1, the bidi embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069), and lone surrogates (file names or arguments that were not
# UTF-8, kept by surrogateescape: printed raw they would end the program).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_ONE_LINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"  # newline and tab too
)


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control character, bidi control and lone surrogate shown as a
    visible ``\\uXXXX`` escape; newlines and tabs are kept unless ``one_line``."""
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_escape, text)


class PrintableStream:
    """A text stream whose writes go through ``printable`` on their way to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(printable(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, ...
        return getattr(self.stream, name)
