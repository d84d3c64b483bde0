"""Durable facts about the user, learnt from what they said, each linked to its turns.

A rule-based extractor always runs (fast, predictable, no model); an LLM extractor can run as
well when the configured model is capable. Facts are keyed by what they are about: a new fact
with the same single-valued key (their name, where they live, whether they like coffee, when
the wedding is) supersedes the old one, which is kept and marked no longer valid from that
date. Multi-valued facts (their sisters, their aches) accumulate.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Protocol

from voice_companion.engines import ChatMessage, ChatModel
from voice_companion.errors import LlmError
from voice_companion.memory.store import Fact, MemoryDb, StoredTurn

log = logging.getLogger(__name__)

KINDS: Final = (
    "name",
    "preferred_name",
    "age",
    "relation",
    "like",
    "dislike",
    "work",
    "location",
    "health",
    "event",
    "plan",
    "preference",
)

_SINGLE_RELATIONS: Final = frozenset(
    str.split("mother father wife husband partner boyfriend girlfriend fiance fiancee boss")
)


@dataclass(frozen=True)
class FactCandidate:
    """A fact an extractor found in one turn, before it is stored."""

    kind: str
    key: str
    value: str
    event_date: date | None = None


class FactExtractor(Protocol):
    name: str

    def extract(self, text: str, at: datetime) -> list[FactCandidate]: ...


def single_valued(kind: str, key: str) -> bool:
    """Whether a newer fact with this key replaces the older one."""
    if kind == "relation":
        return key.split(":", 1)[1] in _SINGLE_RELATIONS
    return kind not in ("health", "plan")


# -- the rule-based extractor ---------------------------------------------------------------

_NAME = r"([A-Z][\w'\-]*(?: [A-Z][\w'\-]*)?)"
_ANY_NAME = r"([A-Za-z][\w'\-]*)"
_NOT_NAMES: Final = frozenset(
    str.split(
        """back later tomorrow today tonight when if a an the maybe sometime anytime crazy please
    now soon again anything whatever that this it so sure not just really very"""
    )
)
_RELATION_WORDS: Final = {
    "sister": "sister", "brother": "brother", "mother": "mother", "mom": "mother",
    "mum": "mother", "father": "father", "dad": "father", "wife": "wife",
    "husband": "husband", "partner": "partner", "boyfriend": "boyfriend",
    "girlfriend": "girlfriend", "son": "son", "daughter": "daughter",
    "grandmother": "grandmother", "grandma": "grandmother", "grandfather": "grandfather",
    "grandpa": "grandfather", "aunt": "aunt", "uncle": "uncle", "cousin": "cousin",
    "niece": "niece", "nephew": "nephew", "best friend": "best friend", "friend": "friend",
    "boss": "boss", "colleague": "colleague", "roommate": "roommate", "flatmate": "flatmate",
    "dog": "dog", "cat": "cat", "neighbour": "neighbour", "neighbor": "neighbour",
    "fiance": "fiance", "fiancé": "fiance", "fiancee": "fiancee", "fiancée": "fiancee",
    "therapist": "therapist", "doctor": "doctor",
}  # fmt: skip
_REL = "|".join(sorted((re.escape(w) for w in _RELATION_WORDS), key=len, reverse=True))
_CLAUSE_END = r"(?=$|[,;:]| but | because | and then | so | although | though | since )"
_OBJECT = r"((?:(?! but | because | and then | so | although | though | since )[^,;:])+?)"
_HEALTH = (
    "headache|migraine|cramps|period pain|cold|flu|fever|cough|sore throat|back pain|"
    "toothache|covid|asthma|diabetes|allergy|allergies|anxiety|depression|insomnia|"
    "hay fever|stomach ache|stomachache|panic attacks?|infection|injury|broken \\w+"
)
_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS: Final = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_WHEN = (
    r"(today|tonight|tomorrow|next week|next month|this weekend|next weekend|"
    r"(?:on |this |next )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"(?:on )?(?:the )?\d{1,2}(?:st|nd|rd|th)? (?:of )?(?:" + "|".join(_MONTHS) + r")|"
    r"(?:on )?(?:" + "|".join(_MONTHS) + r") \d{1,2}(?:st|nd|rd|th)?|"
    r"in (?:" + "|".join(_MONTHS) + r"))"
)
_PRONOUN_OBJECTS: Final = frozenset(
    str.split("it that this them you him her those these to the idea when how what")
)


def parse_when(phrase: str, at: datetime) -> date | None:
    """The date a phrase like 'next Friday' or 'on 12 June' meant when said at ``at``."""
    p = phrase.lower().strip()
    today = at.date()
    if p in ("today", "tonight"):
        return today
    if p == "tomorrow":
        return today + timedelta(days=1)
    if p == "next week":
        return today + timedelta(days=7)
    if p in ("this weekend", "next weekend"):
        days = (5 - today.weekday()) % 7 + (7 if p.startswith("next") else 0)
        return today + timedelta(days=days)
    if p == "next month":
        return (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    words = p.replace("on ", "").replace("the ", "").replace("of ", "").split()
    for i, day_name in enumerate(_WEEKDAYS):
        if day_name in words:
            ahead = (i - today.weekday()) % 7 or 7
            if words[0] == "next" and ahead < 7:
                ahead += 7 if (i - today.weekday()) % 7 == 0 else 0
            return today + timedelta(days=ahead)
    month = next((m for m in _MONTHS if m in words), None)
    if month is None:
        return None
    number = next((re.sub(r"\D", "", w) for w in words if re.sub(r"\D", "", w)), "")
    day = int(number) if number else 1
    try:
        when = date(today.year, _MONTHS.index(month) + 1, day)
    except ValueError:
        return None
    return when if when >= today - timedelta(days=31) else when.replace(year=today.year + 1)


def _clean(value: str, max_words: int = 8) -> str:
    value = re.sub(r"^(?:a |an |the |my |some )", "", value.strip().rstrip(".!?"), flags=re.I)
    value = re.sub(
        r"\s+(?:now|anymore|any more|these days|too|a lot|so much|very much|lately|at all)$",
        "",
        value,
        flags=re.I,
    )
    words = value.split()
    return " ".join(words[:max_words])


class RuleExtractor:
    """Finds facts with patterns over what the user said: fast, predictable, always on."""

    name = "rules"

    _patterns: Final = (
        re.compile(r"\bmy name(?:'s| is) " + _ANY_NAME, re.I),
        re.compile(r"\b(?:please )?call me " + _ANY_NAME, re.I),
        re.compile(r"\bi(?:'m| am) called " + _ANY_NAME, re.I),
    )

    def extract(self, text: str, at: datetime) -> list[FactCandidate]:
        found: list[FactCandidate] = []
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
            sentence = sentence.strip()
            if sentence:
                found += self._sentence(sentence, at)
        unique: dict[tuple[str, str, str], FactCandidate] = {}
        for c in found:
            unique.setdefault((c.kind, c.key, c.value.lower()), c)
        return list(unique.values())

    def _sentence(self, s: str, at: datetime) -> list[FactCandidate]:
        out: list[FactCandidate] = []
        for kind, pattern in zip(("name", "preferred_name", "name"), self._patterns, strict=True):
            m = pattern.search(s)
            if m and m.group(1).lower() not in _NOT_NAMES:
                name = m.group(1)
                out.append(FactCandidate(kind, kind, name[:1].upper() + name[1:]))
        for m in re.finditer(
            rf"\bmy ({_REL})(?:'s name is| is called| is named| named| called)\s+{_ANY_NAME}",
            s,
            re.I,
        ):
            out.append(self._relation(m.group(1), m.group(2)))
        for m in re.finditer(rf"\b[Mm]y ({_REL}),? {_NAME}", s):
            if m.group(2).split()[0].lower() not in _NOT_NAMES:
                out.append(self._relation(m.group(1), m.group(2)))
        if m := re.search(r"\bi(?:'m| am) (\d{1,3}) years? old\b", s, re.I):
            out.append(FactCandidate("age", "age", m.group(1)))
        like = re.search(
            r"\bi (?:really |absolutely |just |also |truly )?(love|like|enjoy|adore) "
            + _OBJECT
            + _CLAUSE_END,
            s,
            re.I,
        )
        if like and not re.search(r"\bi (?:would|'d) like\b", s, re.I):
            value = _clean(like.group(2))
            if value and value.split()[0].lower() not in _PRONOUN_OBJECTS:
                out.append(FactCandidate("like", "taste:" + value.lower(), value))
        dislike = re.search(
            r"\bi (?:really |absolutely |just |also |truly )?"
            r"(hate|dislike|detest|can't stand|cannot stand|don't like|do not like|"
            r"don't enjoy|do not enjoy) " + _OBJECT + _CLAUSE_END,
            s,
            re.I,
        )
        if dislike:
            value = _clean(dislike.group(2))
            if value and value.split()[0].lower() not in _PRONOUN_OBJECTS:
                out.append(FactCandidate("dislike", "taste:" + value.lower(), value))
        if m := re.search(r"\bi(?:'m| am)? ?(?:now )?work(?:ing)? (as|at|for) " + _OBJECT
                          + _CLAUSE_END, s, re.I):  # fmt: skip
            where = " ".join(m.group(2).split()[:8]).rstrip(".!?")
            out.append(FactCandidate("work", "work", f"{m.group(1).lower()} {where}"))
        elif m := re.search(r"\bmy job is " + _OBJECT + _CLAUSE_END, s, re.I):
            out.append(FactCandidate("work", "work", _clean(m.group(1))))
        if m := re.search(
            r"\b[Ii](?: now)?(?: live in|(?: have|'ve)?(?: just)? moved to) ([A-Z][\w'\- ]*?)"
            + r"(?=$|[,;:.!?]| (?:with|for|since|because|but|and|now|last|next|this|in \d)\b)",
            s,
        ):
            out.append(FactCandidate("location", "home", _clean(m.group(1), 4)))
        having = r"(?:i(?: have| had|'ve got|'ve had| got|'ve been having|'m having)|my) "
        for m in re.finditer(rf"\b{having}(?:\w+ ){{0,3}}?({_HEALTH})\b", s, re.I):
            condition = m.group(1).lower()
            out.append(FactCandidate("health", "health:" + condition, condition, at.date()))
        if m := re.search(r"\bmy (\w+) (hurts|aches|is killing me|is sore)\b", s, re.I):
            condition = f"{m.group(1).lower()} pain"
            out.append(FactCandidate("health", "health:" + condition, condition, at.date()))
        if m := re.search(rf"\b(?:my|our) ((?:\w+'s )?\w+(?: \w+)?) is {_WHEN}\b", s, re.I):
            when = parse_when(m.group(2), at)
            what = _clean(m.group(1), 4).lower()
            if when is not None:
                out.append(FactCandidate("event", "event:" + what, what, when))
        if m := re.search(
            r"\bi(?:'m| am) (?:going to|gonna|planning to|about to) " + _OBJECT + rf" {_WHEN}\b",
            s,
            re.I,
        ):
            when = parse_when(m.group(2), at)
            what = _clean(m.group(1), 8)
            key = "plan:" + " ".join(what.lower().split()[:4])
            out.append(FactCandidate("plan", key, what, when))
        if re.search(r"\b(?:shorter|short|brief|briefer) (?:answers|replies|responses)\b|"
                     r"\bkeep it (?:short|brief)\b|\bbe (?:more )?brief\b|\btoo long\b",
                     s, re.I):  # fmt: skip
            out.append(FactCandidate("preference", "reply_length", "short"))
        elif re.search(r"\b(?:longer|more detailed) (?:answers|replies|responses)\b", s, re.I):
            out.append(FactCandidate("preference", "reply_length", "long"))
        if re.search(r"\b(?:don't|do not) be so formal\b|\bbe (?:more )?casual\b", s, re.I):
            out.append(FactCandidate("preference", "formality", "casual"))
        elif re.search(r"\bbe (?:more )?(?:formal|polite)\b", s, re.I):
            out.append(FactCandidate("preference", "formality", "formal"))
        return out

    @staticmethod
    def _relation(word: str, name: str) -> FactCandidate:
        relation = _RELATION_WORDS[word.lower()]
        name = name.strip()
        return FactCandidate("relation", "relation:" + relation, name[:1].upper() + name[1:])


# -- the LLM extractor ----------------------------------------------------------------------

LLM_PROMPT: Final = (
    "You read one message a user said and list durable facts about the user in it. "
    "Write one fact per line as: kind | about | value. "
    "kind is one of: name, relation, like, dislike, work, location, health, plan, event. "
    "about is the relation (sister, friend, dog) for relation, the thing for like and "
    "dislike, otherwise the same as kind. value copies the user's own words. "
    "If there is no such fact, write: none."
)


class LlmExtractor:
    """Asks the language model for facts; keeps only well-formed ones grounded in the text.

    Every value must appear in the user's words: a model's paraphrase or invention is dropped.
    """

    name = "llm"

    def __init__(self, model: ChatModel, max_facts: int = 5) -> None:
        self._model = model
        self._max_facts = max_facts

    def extract(self, text: str, at: datetime) -> list[FactCandidate]:
        messages = [ChatMessage("system", LLM_PROMPT), ChatMessage("user", text)]
        try:
            reply = "".join(self._model.stream(messages, threading.Event()))
        except LlmError as exc:
            log.warning("fact extraction by the language model failed: %s", exc)
            return []
        return parse_llm_facts(reply, text, at)[: self._max_facts]


def parse_llm_facts(reply: str, source: str, at: datetime) -> list[FactCandidate]:
    out: list[FactCandidate] = []
    lowered = " ".join(source.lower().split())
    for line in reply.splitlines():
        parts = [p.strip(" .-*\"'") for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            continue
        kind, about, value = parts[0].lower(), parts[1].lower(), parts[2]
        if kind not in KINDS or kind in ("preference", "preferred_name", "age"):
            continue
        if " ".join(value.lower().split()) not in lowered or len(value) > 80:
            continue  # not grounded in what the user said
        if kind == "relation":
            if about not in _RELATION_WORDS:
                continue
            key = "relation:" + _RELATION_WORDS[about]
        elif kind in ("like", "dislike"):
            key = "taste:" + _clean(value).lower()
        elif kind == "location":
            key = "home"
        elif kind in ("health", "plan", "event"):
            key = f"{kind}:{_clean(value, 4).lower()}"
        else:
            key = kind
        when = at.date() if kind == "health" else None
        out.append(FactCandidate(kind, key, _clean(value) or value, when))
    return out


# -- storing and describing -----------------------------------------------------------------


class FactBook:
    """Learns facts from stored turns and keeps them, superseding contradicted ones."""

    def __init__(self, db: MemoryDb, extractors: Sequence[FactExtractor]) -> None:
        self._db = db
        self._extractors = list(extractors)
        self._lock = threading.Lock()

    def learn(self, turn: StoredTurn, extractors: Sequence[FactExtractor] | None = None) -> int:
        """Run the extractors over a user turn and store what they found; the number stored."""
        if turn.speaker != "user":
            return 0
        stored = 0
        for extractor in self._extractors if extractors is None else extractors:
            candidates = extractor.extract(turn.text, turn.at)
            stored += self.keep(turn, candidates, extractor.name)
        return stored

    def keep(self, turn: StoredTurn, candidates: Sequence[FactCandidate], extractor: str) -> int:
        stored = 0
        with self._lock:
            for c in candidates:
                current = self._db.facts(valid_only=True, key=c.key)
                same = [
                    f
                    for f in current
                    if f.kind == c.kind
                    and f.value.lower() == c.value.lower()
                    and f.event_date == c.event_date
                ]
                if same:
                    self._db.add_fact_source(same[0].id, turn.id)
                    continue
                replaced = [f.id for f in current] if single_valued(c.kind, c.key) else []
                self._db.add_fact(
                    c.kind, c.key, c.value, turn.at, [turn.id], extractor,
                    event_date=c.event_date, supersedes=replaced,
                )  # fmt: skip
                stored += 1
        return stored


def describe(fact: Fact, you: bool = True, quote: bool = False) -> str:
    """The fact as a short sentence: second person ("your sister is Ana") for speaking to the
    user, third person ("the user's sister is Ana") for the prompt; ``quote`` puts the user's
    own words in quotes (the prompt: data, not instructions)."""
    your, they, are = ("your", "you", "are") if you else ("the user's", "the user", "is")
    like, s = ("like", "") if you else ("likes", "s")
    flat = " ".join(fact.value.replace("“", '"').replace("”", '"').split())
    value = f"“{flat}”" if quote else flat
    match fact.kind:
        case "name":
            return f"{your} name is {value}"
        case "preferred_name":
            return f"{they} like{s} to be called {value}"
        case "age":
            return f"{they} {are} {value} years old"
        case "relation":
            return f"{your} {fact.key.split(':', 1)[1]} is {value}"
        case "like":
            return f"{they} {like} {value}"
        case "dislike":
            return f"{they} {'do' if you else 'does'}n't like {value}"
        case "work":
            first = flat.split()[0] if flat else ""
            if first in ("as", "at", "for"):
                rest = flat[len(first) :].strip()
                return f"{they} work{s} {first} " + (f"“{rest}”" if quote else rest)
            return f"{your} job is {value}"
        case "location":
            return f"{they} live{s} in {value}"
        case "health":
            return f"{they} had {value} ({_day(fact.event_date or fact.valid_from.date())})"
        case "event":
            when = f" on {_day(fact.event_date)}" if fact.event_date else ""
            return f"{your} {value} is{when}"
        case "plan":
            when = f" on {_day(fact.event_date)}" if fact.event_date else ""
            return f"{they} planned to {value}{when}"
        case "preference" if fact.key == "reply_length":
            return f"{they} prefer{s} {value} replies"
        case "preference":
            return f"{they} prefer{s} a {value} tone"
        case _:
            return f"{fact.key}: {value}"


def _day(d: date | None) -> str:
    if d is None:
        return "an unknown day"
    return f"{d.day} {_MONTHS[d.month - 1].capitalize()} {d.year}"
