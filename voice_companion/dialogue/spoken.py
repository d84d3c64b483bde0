"""The last look at a model sentence before it is spoken: no prompt framing reaches the voice.

The prompt is written so that a small model's natural continuation speaks to the person
(dialogue/prompt.py); this catches what still slips through, sentence by sentence: a leading
role label ("User:", "Assistant:", the persona's or the user's name and a colon), "the user"
where "you" was meant ("The user grew up in Cork" becomes "You grew up in Cork"), a bracketed
aside that recites the per-turn hints, and a sentence that recites the prompt's framing (its
headers, its rules, a dated "On 3 May 2026 ... said:" prefix). Ordinary speech passes as it
came. Each check counts how often it changed or dropped a sentence, so a turn can report it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Final

from voice_companion.engines import ChatMessage
from voice_companion.persona.values import Persona

log = logging.getLogger(__name__)

RECITAL_WORDS: Final = 6
"""A run of this many words copied from the framing makes a sentence a recital."""

_MONTH: Final = (
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*"  # a month name, any length
)
FRAMING_PATTERNS: Final = (
    r"\bdata points?\b",
    r"\bnot (?:an? )?instructions?\b",
    r"\b(?:as|is|are) data\b",
    r"\bfrom (?:the |our )?earlier conversations\b",
    r"\bnotes about\b",
    r"\bthe (?:user|assistant)'?s? (?:message|prompt|notes?)\b",
    r"\b(?:system|user) (?:prompt|message|role)\b",
    rf"\bon \d{{1,2}} {_MONTH},? \d{{4}},? (?:the user|you|i|they|\w+) (?:said|told)\b",
    r"\bwhat you remember and can say\b",
)
"""What only the prompt's framing says: a sentence with one of these is not spoken."""
_FRAMING: Final = re.compile("|".join(FRAMING_PATTERNS), re.I)
_ASIDE: Final = re.compile(r"\(([^()]*)\)")
_AFTER_USER: Final = {
    "is": "are",
    "was": "were",
    "has": "have",
    "does": "do",
    "doesn't": "don't",
    "isn't": "aren't",
    "wasn't": "weren't",
    "hasn't": "haven't",
    "says": "say",
    "goes": "go",
}
_NOT_VERBS: Final = frozenset(str.split("this his its us thus yes plus as always perhaps"))
_THE_USER: Final = re.compile(r"\b(the|this|our) user('s|s'|s)?\b(\s+([A-Za-z']+))?", re.I)
_WORD: Final = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _label(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted({n.strip() for n in names} - {""}))
    return re.compile(r"^\s*[*_\"“]*(?:" + alternatives + r")[*_]*\s*:[*_]*\s*[\"“]?", re.I)


class SpokenCheck:
    """Checks one reply's sentences against ``framing`` (the texts the prompt told the model
    and that are not the person's: the system message's rules, headers, hints), and against
    role labels: the companion's (``names``: its label goes, its words stay) and the user's
    (``user_names``: a sentence labelled as theirs is the model writing their part, and goes).
    ``fired`` counts the sentences it rewrote or dropped."""

    def __init__(
        self,
        framing: Iterable[str] = (),
        names: Iterable[str] = (),
        user_names: Iterable[str] = (),
    ) -> None:
        self.fired = 0
        self._runs: set[tuple[str, ...]] = set()
        # The bracketed hints whole: an aside that repeats one ("(Tomorrow: your driving
        # test)") is shorter than a recital run, and still not speech.
        self._hints: list[str] = []
        for text in framing:
            words = _words(text)
            for i in range(len(words) - RECITAL_WORDS + 1):
                self._runs.add(tuple(words[i : i + RECITAL_WORDS]))
            if text.lstrip()[:1] == "(":
                self._hints.append(" " + " ".join(words) + " ")
        # "You say:" / "They say:": the labels of the system prompt's example exchanges.
        self._own_label = _label(["assistant", "system", "companion", "ai", "bot", "you say",
                                  *names])  # fmt: skip
        self._user_label = _label(["user", "human", "they say", *user_names])

    @classmethod
    def for_prompt(cls, messages: Sequence[ChatMessage], persona: Persona) -> SpokenCheck:
        """The check for a reply to ``messages``: the framing is the system message's own
        words (not its example exchanges, which are speech) and the bracketed hints of the
        messages before the user's words."""
        framing: list[str] = []
        for message in messages[:-1]:
            if message.role == "system":
                framing.append(message.content.replace(persona.example_text(), ""))
            elif message.role == "user":
                framing += [line for line in message.content.splitlines() if line[:1] == "("]
        return cls(framing, [persona.name])

    def __call__(self, sentence: str) -> str | None:
        """The sentence to speak (``sentence`` itself when nothing is wrong with it), or None
        when nothing of it should be spoken."""
        text, rule = self._checked(sentence)
        if rule is not None:
            self.fired += 1
            log.debug("spoken check: %s (%s)", "dropped" if text is None else "rewrote", rule)
        return text

    def _checked(self, sentence: str) -> tuple[str | None, str | None]:
        if self._user_label.match(sentence):
            return None, "user label"
        text, rule = sentence, None
        label = self._own_label.match(text)
        if label is not None:
            text, rule = text[label.end() :], "label"
            if label.group(0).rstrip()[-1:] in ('"', "“"):  # the quote it opened goes too
                text = text.rstrip().removesuffix('"').removesuffix("”")
        kept = _ASIDE.sub(lambda m: "" if self._aside(m.group(1)) else m.group(0), text)
        if kept != text:
            text, rule = " ".join(kept.split()), "aside"
        if not _words(text):
            # Nothing left to say once the label or aside went; no words at all (emoji) is
            # not framing, and is for ``speakable`` to deal with.
            return (None, rule) if rule is not None else (sentence, None)
        if _FRAMING.search(text) or self._recites(text):
            return None, "framing"
        spoken = _THE_USER.sub(_you, text)
        if spoken != text:
            text, rule = _capitalised(spoken, text), "the user"
        return (text if rule is not None else sentence), rule

    def _aside(self, text: str) -> bool:
        """A bracketed aside spoken of "the user", or reciting the framing (the hints)."""
        words = _words(text)
        return (
            bool(_THE_USER.search(text))
            or _FRAMING.search(text) is not None
            or self._recites(text)
            or (len(words) >= 2 and any(f" {' '.join(words)} " in hint for hint in self._hints))
        )

    def _recites(self, text: str) -> bool:
        words = _words(text)
        return any(
            tuple(words[i : i + RECITAL_WORDS]) in self._runs
            for i in range(len(words) - RECITAL_WORDS + 1)
        )


def _you(match: re.Match[str]) -> str:
    """ "the user" as "you", "the user's" as "your", with the verb that follows agreeing."""
    possessive = match.group(2)
    after = match.group(3) or ""
    verb = match.group(4)
    if possessive:
        if possessive.lower() == "s":  # "the users": several people, not the one spoken to
            return match.group(0)
        return "your" + after
    if verb is None:
        return "you"
    return "you" + after.replace(verb, _agree(verb), 1)


def _agree(verb: str) -> str:
    """The verb after "you" instead of after "the user": "likes" → "like"."""
    lower = verb.lower()
    if lower in _AFTER_USER:
        return _AFTER_USER[lower]
    if lower in _NOT_VERBS or len(lower) <= 3 or not lower.endswith("s") or lower.endswith("ss"):
        return verb
    if lower.endswith("ies") and len(lower) > 4:
        return verb[:-3] + "y"
    if lower.endswith(("ches", "shes", "xes", "sses", "zes")):
        return verb[:-2]
    return verb[:-1]


def _capitalised(text: str, original: str) -> str:
    """Keep the sentence's first letter upper case when it was."""
    stripped = text.lstrip()
    lead = text[: len(text) - len(stripped)]
    if stripped and original.lstrip()[:1].isupper():
        return lead + stripped[:1].upper() + stripped[1:]
    return text
