"""Cutting a streamed LLM reply into speakable sentences, and cleaning text for TTS.

The LLM streams text in pieces with arbitrary boundaries (even mid-word). Text-to-speech wants
whole sentences: one at a time, as early as possible, so the first one can play while the next
is synthesised. ``SentenceSplitter`` decides a boundary only from text that has arrived, and
only once the character after a terminal mark is known, so the same reply cut into different
pieces always yields the same sentences.

``speakable`` turns a sentence into what a voice should say: no markdown, emoji or control
characters.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

# Pictographs: emoji and the symbol blocks LLMs decorate with. Kept to explicit ranges because
# the broad Unicode category "So" also holds things a voice must say (such as the degree sign).
_PICTOGRAPH_RANGES: Final = (
    (0x2190, 0x21FF),  # arrows
    (0x2300, 0x23FF),  # miscellaneous technical (watch, hourglass, alarm clock)
    (0x25A0, 0x25FF),  # geometric shapes (play buttons)
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats (sun, heart, check marks)
    (0x2B00, 0x2BFF),  # symbols and arrows (star, squares)
    (0x3030, 0x3030),  # wavy dash
    (0x303D, 0x303D),  # part alternation mark
    (0x3297, 0x3297),  # circled ideograph congratulation
    (0x3299, 0x3299),  # circled ideograph secret
    (0x200D, 0x200D),  # zero-width joiner inside emoji sequences
    (0x20E3, 0x20E3),  # combining keycap
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
    (0x1F000, 0x1FAFF),  # mahjong .. emoticons, transport, skin tones, flags, pictographs
    (0xE0020, 0xE007F),  # tag characters (subdivision flags)
)
_PICTOGRAPH_CLASS: Final = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _PICTOGRAPH_RANGES)
_PICTOGRAPHS: Final = re.compile(f"[{_PICTOGRAPH_CLASS}]+")


def is_pictograph(ch: str) -> bool:
    """True for an emoji or other pictograph code point (including emoji joiners/modifiers)."""
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _PICTOGRAPH_RANGES)


_TERMINALS: Final = frozenset(".!?…")
# Closing quotes, brackets and markdown emphasis after a stop stay with the sentence.
_CLOSERS: Final = frozenset("\"'”’»)]}*_`")
_OPENERS: Final = frozenset("\"'“‘«([{*_`")
_CLAUSE_MARKS: Final = frozenset(",;:")
_DASHES: Final = frozenset("—–")
_WORD_ENDS: Final = _TERMINALS | _CLAUSE_MARKS | _DASHES
# Words a speaker may pause before: the first piece of a reply can end ahead of one.
_CONJUNCTIONS: Final = frozenset(
    {
        "and", "but", "or", "so", "because", "when", "while", "if", "though", "although",
        "which", "who", "where", "since", "until", "unless", "then",
    }
)  # fmt: skip

# Abbreviations after which a period never ends a sentence: a name or example always follows.
_NEVER_FINAL: Final = frozenset(
    {
        "mr", "mrs", "ms", "dr", "st", "prof", "mt", "vs", "e.g", "i.e", "rev", "gen", "col",
        "capt", "lt", "sgt", "gov", "sen", "rep", "hon", "fr", "approx", "cf", "fig", "ft",
    }
)  # fmt: skip
# Abbreviations that may also end a sentence: it ends there when a capitalised word follows.
_MAYBE_FINAL: Final = frozenset(
    {
        "etc", "a.m", "p.m", "u.s", "u.k", "u.s.a", "jr", "sr", "inc", "ltd", "co", "corp",
        "al", "ph.d", "jan", "feb", "aug", "sept", "oct", "nov", "dec",
    }
)  # fmt: skip
_DOTTED: Final = re.compile(r"(?:[a-z]\.)+[a-z]")  # u.s, a.m, n.b: letters joined by dots


@dataclass(frozen=True)
class _Cut:
    """A boundary: the piece is ``buf[:end]``, the rest starts at ``buf[resume]``."""

    end: int
    resume: int


@dataclass(frozen=True)
class _Wait:
    """Undecided until more text arrives; the pending piece would end at ``end``."""

    end: int


_Verdict = _Cut | _Wait | None  # None: not a boundary here, keep scanning


class SentenceSplitter:
    """Turns streamed text pieces into sentences, in order, as soon as each is certain.

    ``max_chars`` bounds every piece: a run that reaches it without a sentence end is cut at
    the last clause mark (comma, semicolon, colon, dash) or else the last space before the
    bound, so speech never waits for a full stop that does not come. ``first_clause_chars``
    (0 = off) lets the first piece of a reply end at a clause mark, or before a conjunction
    ("and", "because", ...), once it is at least that long, so speaking starts early.
    ``first_max_chars`` (0 = ``max_chars``) bounds the first piece the same way: the voice
    synthesises a piece whole, so a long first sentence would be heard late. ``flush`` ends
    the stream and readies the splitter for the next reply.
    """

    def __init__(
        self, max_chars: int = 160, first_clause_chars: int = 0, first_max_chars: int = 0
    ) -> None:
        if max_chars < 2:
            raise ValueError(f"max_chars must be at least 2, got {max_chars}")
        if first_clause_chars < 0:
            raise ValueError(f"first_clause_chars must be 0 or more, got {first_clause_chars}")
        if first_max_chars < 0:
            raise ValueError(f"first_max_chars must be 0 or more, got {first_max_chars}")
        self._max_chars = max_chars
        self._first_clause_chars = first_clause_chars
        self._first_max_chars = min(
            max(first_max_chars, 2) if first_max_chars else max_chars, max_chars
        )
        self._buf = ""
        self._emitted = False

    def feed(self, text: str) -> list[str]:
        """Add a streamed piece; return the sentences it completed (possibly none)."""
        self._buf += text
        out: list[str] = []
        while True:
            self._buf = self._buf.lstrip()
            verdict = self._scan(self._buf)
            limit = self._limit()
            if isinstance(verdict, _Cut) and len(self._buf[: verdict.end].rstrip()) > limit:
                verdict = self._forced_cut(self._buf, limit)
            elif isinstance(verdict, _Wait):
                if verdict.end <= limit:
                    break
                verdict = self._forced_cut(self._buf, limit)
            elif verdict is None:
                if len(self._buf.rstrip()) <= limit:
                    break
                verdict = self._forced_cut(self._buf, limit)
            piece = self._buf[: verdict.end].strip()
            self._buf = self._buf[verdict.resume :]
            if piece:
                out.append(piece)
                self._emitted = True
        return out

    @property
    def pending(self) -> bool:
        """Whether text is waiting for a sentence end."""
        return bool(self._buf.strip())

    def take_words(self) -> str | None:
        """The pending text up to its last complete word, removed (None if no whole word).

        For a reply that stalls mid-sentence (a slow model, a broken stream): what has come
        is spoken rather than held for a full stop. The last word counts as complete only
        when a space or punctuation follows it, since the next piece may still extend it.
        """
        buf = self._buf.lstrip()
        if not buf:
            return None
        if buf[-1].isspace() or buf[-1] in _WORD_ENDS:
            cut = len(buf)
        else:
            cut = max((p for p in range(len(buf)) if buf[p].isspace()), default=0)
        piece = buf[:cut].strip()
        if not piece:
            return None
        self._buf = buf[cut:]
        self._emitted = True
        return piece

    def flush(self) -> str | None:
        """End of stream: return what is left (None when nothing is) and reset."""
        rest = self._buf.strip()
        self._buf = ""
        self._emitted = False
        return rest or None

    def _limit(self) -> int:
        """The longest the next piece may be."""
        return self._max_chars if self._emitted else self._first_max_chars

    # -- boundary finding -------------------------------------------------------------------

    def _scan(self, buf: str) -> _Verdict:
        """The first boundary in ``buf`` (which starts with a non-space), in text order."""
        clause_from = 0 if self._emitted else self._first_clause_chars
        n = len(buf)
        i = 0
        while i < n:
            ch = buf[i]
            if ch == "\n":
                return _Cut(i, i + 1)
            if ch in _TERMINALS:
                run_end = i
                while run_end < n and buf[run_end] in _TERMINALS:
                    run_end += 1
                verdict = self._judge_terminal(buf, i, run_end)
                if verdict is not None:
                    return verdict
                i = run_end
                continue
            if clause_from and i + 1 >= clause_from:
                verdict = _judge_clause(buf, i)
                if verdict is None and i >= clause_from:
                    verdict = _judge_conjunction(buf, i)
                if verdict is not None:
                    return verdict
            i += 1
        return None

    def _judge_terminal(self, buf: str, start: int, run_end: int) -> _Verdict:
        """Decide whether the terminal run ``buf[start:run_end]`` ends a sentence."""
        n = len(buf)
        k = run_end
        while k < n and buf[k] in _CLOSERS:
            k += 1
        if k >= n:
            return _Wait(k)
        if not (buf[k].isspace() or is_pictograph(buf[k])):
            return None  # "3.14", "v2.0", "e.g", "example.com": the text goes on
        # Emoji after the mark belong to the sentence they follow ("Great! 😊"); to know where
        # they stop we need the next visible character.
        end = k
        m = k
        while True:
            while m < n and buf[m].isspace() and buf[m] != "\n":
                m += 1
            if m >= n:
                return _Wait(end)
            if buf[m] == "\n":
                return None  # the newline itself is the boundary; the scan reaches it next
            if not is_pictograph(buf[m]):
                break
            while m < n and is_pictograph(buf[m]):
                m += 1
            end = m
        decision = self._ends_sentence(buf, start, run_end, quoted=k > run_end, nxt=m)
        if isinstance(decision, _Wait):
            return _Wait(end)
        return _Cut(end, end) if decision else None

    def _ends_sentence(
        self, buf: str, start: int, run_end: int, quoted: bool, nxt: int
    ) -> bool | _Wait:
        """The rules for a terminal run followed by a space; ``nxt`` is the next visible char."""
        run = buf[start:run_end]
        following = buf[nxt]
        if "?" in run or "!" in run:
            # '"Really?" she asked.' goes on; 'Really?! Wow.' does not.
            return not (quoted and following.islower())
        if len(run) > 1 or run == "…":
            return _ellipsis_ends(buf, nxt)
        word_start = start
        while word_start > 0 and not buf[word_start - 1].isspace():
            word_start -= 1
        while word_start < start and buf[word_start] in _OPENERS:
            word_start += 1
        word = buf[word_start:start]
        if word_start == 0 and ((word.isdigit() and len(word) <= 3) or len(word) == 1):
            return False  # a list marker opening the line: "1. Do this", "a. First"
        lowered = word.lower()
        if lowered in _NEVER_FINAL or (len(word) == 1 and word.isupper()):
            return False  # "Mr. Smith", "e.g. tea", initials "J. K. Rowling"
        if lowered in _MAYBE_FINAL or _DOTTED.fullmatch(lowered):
            return _starts_sentence(following)
        # A lowercase word after a lone period means an abbreviation we do not know ("min.
        # wait") or a list number ("thing 2. second"); replies start sentences capitalised.
        return not following.islower()

    @staticmethod
    def _forced_cut(buf: str, limit: int) -> _Cut:
        """Cut a run longer than ``limit``: clause mark, else space, else mid-word."""
        window = buf[: limit + 1]
        for p in range(min(limit, len(window) - 1) - 1, 0, -1):
            ch = window[p]
            after = window[p + 1]
            if (ch in _CLAUSE_MARKS and after.isspace()) or ch in _DASHES:
                return _Cut(p + 1, p + 1)
            if ch == "-" and after.isspace() and window[p - 1].isspace():
                return _Cut(p + 1, p + 1)  # a spaced hyphen used as a dash
        space = max((p for p in range(1, len(window)) if window[p].isspace()), default=0)
        if space:
            return _Cut(space, space + 1)
        return _Cut(limit, limit)  # a single word longer than the bound


def _judge_clause(buf: str, i: int) -> _Verdict:
    """First-piece early cut after a clause mark; needs the next character to be known."""
    ch = buf[i]
    is_mark = ch in _CLAUSE_MARKS or ch in _DASHES or (ch == "-" and i > 0 and buf[i - 1] == " ")
    if not is_mark:
        return None
    if i + 1 >= len(buf):
        return _Wait(i + 1)
    if ch in _DASHES or buf[i + 1].isspace():
        return _Cut(i + 1, i + 1)
    return None  # "3,000", "10:30", "well-known"


def _judge_conjunction(buf: str, i: int) -> _Verdict:
    """First-piece early cut at the space before a conjunction; needs the whole next word."""
    if buf[i] != " ":
        return None
    end = i + 1
    while end < len(buf) and buf[end].isalpha():
        end += 1
    if end >= len(buf):
        return _Wait(i)  # the next word may still grow (into "and", or past it)
    if buf[end].isspace() and buf[i + 1 : end].lower() in _CONJUNCTIONS:
        return _Cut(i, i + 1)
    return None


def _starts_sentence(ch: str) -> bool:
    """Whether a word starting with ``ch`` looks like the start of a new sentence."""
    return ch.isupper() or ch in _OPENERS


def _ellipsis_ends(buf: str, nxt: int) -> bool | _Wait:
    """An ellipsis ends a sentence only before a capitalised word other than the pronoun I.

    "Well... I think so." stays whole; "I don't know... Maybe tomorrow." is two sentences.
    """
    ch = buf[nxt]
    if ch != "I":
        return _starts_sentence(ch)
    if nxt + 1 >= len(buf):
        return _Wait(nxt)
    return buf[nxt + 1].isalpha()  # "It", "If" start a sentence; "I", "I'm" carry on


# -- speakable text -----------------------------------------------------------------------

_CODE_FENCE: Final = re.compile(r"^[ \t]*(```|~~~).*$", re.M)
_HEADING: Final = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M)
_BULLET: Final = re.compile(r"^[ \t]*[-*+•][ \t]+", re.M)
_BLOCKQUOTE: Final = re.compile(r"^[ \t]*>+[ \t]?", re.M)
_RULE: Final = re.compile(r"^[ \t]*([-*_])([ \t]*\1){2,}[ \t]*$", re.M)
_IMAGE: Final = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK: Final = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_INLINE_CODE: Final = re.compile(r"`+([^`]*)`+")
_STRONG: Final = re.compile(r"(\*\*|__)(.+?)\1")
# HTML/SSML/XML tags (<b>, </speak>, <br/>, <break time="1s"/>): a voice reads them out as
# "less than b slash". Attributes must be name=value, so "if x<y and y>z" is not a tag.
_TAG: Final = re.compile(
    r"</?[A-Za-z][\w:.-]*(?:\s+[\w:.-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'<>/=]+))*\s*/?>"
)
# Terminal escape sequences (colours, titles) pasted or piped in: "\x1b[31m" is not "31m".
_ANSI: Final = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_ENTITY: Final = re.compile(r"&(?:#\d{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_STRIKE: Final = re.compile(r"~~(.+?)~~")
_EM_STAR: Final = re.compile(r"\*(?!\s)([^*]+?)(?<!\s)\*")
_EM_UNDERSCORE: Final = re.compile(r"(?<!\w)_(?!\s)([^_]+?)(?<!\s)_(?!\w)")
# Emphasis markers left unpaired when a bold span crosses a sentence cut ("**Hello." ...).
_STRAY_STARS: Final = re.compile(r"\*+(?=\S)|(?<=\S)\*+")
_SPACE_BEFORE_PUNCT: Final = re.compile(r"\s+([,.!?;:…])")
_SPACES: Final = re.compile(r"\s+")
_SPOKEN_AS_SPACE: Final = frozenset("\n\r\t\v\f\x85\u2028\u2029")


def speakable(text: str) -> str:
    """Text fit for a TTS voice: markdown, markup tags, pictographs and control characters
    removed (HTML entities such as ``&amp;`` become their characters).

    Returns "" when nothing speakable (no letter or digit) is left.
    """
    text = text.replace("\r\n", "\n")
    text = _ANSI.sub("", text)
    text = _TAG.sub(" ", text)
    text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    for pattern in (_CODE_FENCE, _RULE):
        text = pattern.sub("", text)
    for pattern in (_HEADING, _BULLET, _BLOCKQUOTE):
        text = pattern.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _STRIKE.sub(r"\1", text)
    text = _EM_STAR.sub(r"\1", text)
    text = _EM_UNDERSCORE.sub(r"\1", text)
    text = _STRAY_STARS.sub("", text).replace("`", "")
    text = _PICTOGRAPHS.sub(" ", text)
    text = "".join(_speakable_char(ch) for ch in text)
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if not any(ch.isalnum() for ch in text):
        return ""
    return text


def _speakable_char(ch: str) -> str:
    if ch in _SPOKEN_AS_SPACE:
        return " "
    # Cc control, Cf format (zero-width, bidi), Co private use, Cs surrogates, Cn unassigned.
    if unicodedata.category(ch).startswith("C"):
        return ""
    return ch
