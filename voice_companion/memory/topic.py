"""What is "about" a topic: one matcher for memory.db, the in-RAM history and the CLI.

A text is about a topic when every content word of the topic is one of its words, in any
order ("Cornelius Fudgeworth" matches "Fudgeworth Cornelius is what his passport says."),
compared without case, accents, a possessive "'s" or a plural "s" ("Biscuit's bowl" and
"the biscuits" are about "Biscuit"); whole words only ("cat" is not in "category"). A topic
of only common words ("the one") uses all of its words.

``redact`` takes out of a text the parts about a topic: sentences, and within a sentence the
clauses (split at commas, semicolons, "and", "but", "because" ...) that match; the rest is
kept as the user said it. A sentence whose topic words span clauses goes whole, and so does a
turn with nothing of substance left.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

STOPWORDS: Final = frozenset(
    str.split(
        """a about above after again against all am an and any are as at be because been before
        being below between both but by can could did do does doing down during each few for from
        further had has have having he her here hers herself him himself his how i if in into is
        it its itself just me more most my myself no nor not now of off on once only or other our
        ours ourselves out over own same she should so some such than that the their theirs them
        themselves then there these they this those through to too under until up very was we were
        what when where which while who whom why will with would you your yours yourself
        yourselves i'm im you're it's that's don't didn't doesn't what's ever really also got get
        remember tell said say told know think like oh yeah okay ok well"""
    )
)
"""Words too common to say what a text is about (search and topics alike)."""

_WORD: Final = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+")
# A new clause: after a semicolon, a conjunction ("and", "but", "because" ...), or a comma
# or colon followed by a new subject ("..., I work at Acme"). Not " so " or " or " (more often
# "so tall", "two or three"), nor a bare comma before anything else ("Tom, my ex, called"):
# a part left behind would still be about the topic.
_CLAUSE_SEP: Final = re.compile(
    r"(\s*;\s*(?:(?:and|but|so|or|because|while)\s+)?"
    r"|\s*,?\s+(?:and|but|because|although|though|whereas)\s+"
    r"|\s*[,:]\s+(?=(?:i|i'm|i've|i'd|i'll|we|we're|you|he|she|they|it's|there)\b))",
    re.IGNORECASE,
)


def _norm(word: str) -> str:
    """A word as compared: lower case, no accents, no possessive, no plural s."""
    word = unicodedata.normalize("NFKD", word.lower().replace("’", "'"))
    word = "".join(c for c in word if not unicodedata.combining(c))
    for suffix in ("'s", "'"):
        if word.endswith(suffix):
            word = word[: -len(suffix)]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


def words(text: str) -> set[str]:
    """The compared forms of the words of ``text``."""
    return {_norm(w) for w in _WORD.findall(text)}


@dataclass(frozen=True)
class Topic:
    """A topic to match texts against (``Topic.of("my dog Biscuit")``)."""

    phrase: str
    needed: frozenset[str]

    @classmethod
    def of(cls, phrase: str) -> Topic:
        found = [w for w in _WORD.findall(phrase)]
        content = [w for w in found if w.lower() not in STOPWORDS and len(w) > 1]
        return cls(" ".join(phrase.split()), frozenset(_norm(w) for w in content or found))

    def __bool__(self) -> bool:
        return bool(self.needed)

    def matches(self, text: str) -> bool:
        """Whether ``text`` is about this topic."""
        if not self.needed:
            return False
        if text.isascii():
            # A quick no, exact for ASCII text: a matching word starts with the needed form.
            low = text.lower()
            if any(w not in low for w in self.needed):
                return False
        return self.needed <= words(text)

    def redact(self, text: str) -> str:
        """``text`` without what is about the topic ("" when nothing else is left)."""
        if not self.matches(text):
            return text
        kept: list[str] = []
        for sentence in _SENTENCE_END.split(text.strip()):
            if not self.matches(sentence):
                kept.append(sentence)
                continue
            rest = self._without_clauses(sentence)
            if rest:
                kept.append(rest)
        out = " ".join(kept).strip()
        # Nothing of substance left (a stray "and", punctuation): the whole turn goes.
        if self.matches(out) or not any(w not in STOPWORDS for w in words(out)):
            return ""
        return out

    def _without_clauses(self, sentence: str) -> str:
        """The sentence without its clauses about the topic; "" when no clause is about it
        on its own (the words span clauses: the sentence goes as a whole)."""
        ending = sentence[-1] if sentence[-1:] in ".!?" else ""
        body = sentence[:-1] if ending else sentence
        parts = _CLAUSE_SEP.split(body)
        clauses, seps = parts[0::2], parts[1::2]
        about = [self.matches(c) for c in clauses]
        if not any(about):
            return ""
        pieces: list[str] = []
        for i, clause in enumerate(clauses):
            if about[i] or not clause.strip():
                continue
            if pieces:
                pieces.append(seps[i - 1])
            pieces.append(clause.strip())
        if not pieces:
            return ""
        text = "".join(pieces).strip()
        return text[:1].upper() + text[1:] + ending
