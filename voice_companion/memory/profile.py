"""The user's profile: what adapts the companion to this person.

Built from their facts and their recent words, by plain counting (no model): the name they
like to be called, how long they like replies, how formal and in what tone they talk, the
topics they keep coming back to, and their mood over the last days. It is rebuilt when asked,
never stored, so forgetting a turn or a fact also forgets what the profile drew from it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal

from voice_companion.memory.retrieval import STOPWORDS
from voice_companion.memory.store import Fact, StoredTurn

ReplyLength = Literal["short", "medium", "long"]
Formality = Literal["casual", "neutral", "formal"]
Mood = Literal["low", "mixed", "good"]

RECENT_TURNS: Final = 60
"""User turns the style estimates look at."""
TOPIC_DAYS: Final = 30
MOOD_DAYS: Final = 7

_CASUAL: Final = frozenset(
    str.split(
        "lol haha hahaha hey yeah yep nope gonna wanna gotta kinda dude cool omg btw ya yo nah "
        "awesome stuff ok okay"
    )
)
_FORMAL: Final = frozenset(
    str.split("please thank thanks kindly would could shall indeed certainly regards appreciate")
)
_LAUGH: Final = re.compile(r"\b(?:ha(?:ha)+|lol|lmao|hehe)\b|😂|😄", re.I)
_POSITIVE: Final = frozenset(
    str.split(
        """good great happy glad love loved lovely excited fun nice wonderful amazing better relaxed
    proud grateful calm enjoyed fantastic awesome brilliant cheerful hopeful thrilled"""
    )
)
_NEGATIVE: Final = frozenset(
    str.split(
        """sad tired bad awful terrible lonely stressed anxious worried upset angry hurt pain sick
    exhausted depressed miserable cramps cry cried crying scared afraid bored frustrated
    annoyed horrible worse headache ill"""
    )
)
_GENERIC: Final = frozenset(
    str.split(
        """today yesterday tomorrow time thing things something anything much going want need
    good great sure maybe right still even back make made feel feeling day week going doing
    lot bit little work-day"""
    )
)


@dataclass(frozen=True)
class Profile:
    """How to talk to this user. ``mood`` is (day, mood) for recent days with words."""

    call_them: str | None
    reply_length: ReplyLength
    formality: Formality
    tone: str
    topics: tuple[str, ...]
    mood: tuple[tuple[date, Mood], ...]

    def notes(self) -> list[str]:
        """The profile as short third-person notes for the prompt (names quoted as said)."""
        lines: list[str] = []
        if self.call_them:
            lines.append(f"The user likes to be called “{_flat(self.call_them)}”.")
        lines.append(
            {
                "short": "The user prefers short replies: one sentence.",
                "medium": "The user likes replies of one or two sentences.",
                "long": "The user enjoys fuller replies of a few sentences.",
            }[self.reply_length]
        )
        if self.formality != "neutral":
            lines.append(f"The user talks in a {self.formality} way; match it.")
        if self.tone != "warm":
            lines.append(f"A {self.tone} tone suits the user.")
        if self.topics:
            quoted = ", ".join(f"“{_flat(t)}”" for t in self.topics)
            lines.append(f"Topics the user often talks about: {quoted}.")
        if self.mood:
            recent = "; ".join(f"{d.day} {d.strftime('%b')}: {m}" for d, m in self.mood[-3:])
            lines.append(f"The user's mood on recent days: {recent}.")
        return lines


def build_profile(
    facts: Sequence[Fact], user_turns: Sequence[StoredTurn], now: datetime
) -> Profile:
    """``user_turns`` are the user's recent turns, oldest first."""
    valid = {f.key: f for f in facts if f.valid}
    name = valid.get("preferred_name") or valid.get("name")
    recent = list(user_turns)[-RECENT_TURNS:]
    return Profile(
        call_them=name.value if name else None,
        reply_length=_reply_length(valid.get("reply_length"), recent),
        formality=_formality(valid.get("formality"), recent),
        tone=_tone(recent),
        topics=_topics(user_turns, now),
        mood=_mood(user_turns, now),
    )


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _reply_length(preference: Fact | None, turns: Sequence[StoredTurn]) -> ReplyLength:
    if preference is not None and preference.value in ("short", "long"):
        return "short" if preference.value == "short" else "long"
    if len(turns) < 3:
        return "medium"
    average = sum(len(t.text.split()) for t in turns) / len(turns)
    return "short" if average < 6 else "long" if average > 30 else "medium"


def _formality(preference: Fact | None, turns: Sequence[StoredTurn]) -> Formality:
    if preference is not None and preference.value in ("casual", "formal"):
        return "casual" if preference.value == "casual" else "formal"
    casual = formal = 0
    for t in turns:
        words = _words(t.text)
        casual += sum(w in _CASUAL for w in words) + t.text.count("!") // 2
        formal += sum(w in _FORMAL for w in words)
    if casual >= 3 and casual > 2 * formal:
        return "casual"
    if formal >= 3 and formal > 2 * casual:
        return "formal"
    return "neutral"


def _tone(turns: Sequence[StoredTurn]) -> str:
    laughs = sum(bool(_LAUGH.search(t.text)) for t in turns)
    if laughs >= 2 and laughs * 5 >= len(turns):
        return "playful"
    return "warm"


def _topics(turns: Sequence[StoredTurn], now: datetime, top: int = 5) -> tuple[str, ...]:
    since = now - timedelta(days=TOPIC_DAYS)
    counts: Counter[str] = Counter()
    for t in turns:
        if t.at.timestamp() < since.timestamp():
            continue
        counts.update(
            {
                w
                for w in _words(t.text)
                if len(w) >= 4 and w not in STOPWORDS and w not in _GENERIC and "'" not in w
            }
        )
    return tuple(w for w, n in counts.most_common(top) if n >= 3)


def _mood(turns: Sequence[StoredTurn], now: datetime) -> tuple[tuple[date, Mood], ...]:
    since = (now - timedelta(days=MOOD_DAYS)).date()
    days: dict[date, list[int]] = {}
    for t in turns:
        day = t.at.date()
        if day < since:
            continue
        words = _words(t.text)
        tally = days.setdefault(day, [0, 0])
        tally[0] += sum(w in _POSITIVE for w in words)
        tally[1] += sum(w in _NEGATIVE for w in words)
    out: list[tuple[date, Mood]] = []
    for day in sorted(days):
        pos, neg = days[day]
        if pos + neg == 0:
            continue
        score = (pos - neg) / (pos + neg)
        out.append((day, "low" if score <= -0.3 else "good" if score >= 0.3 else "mixed"))
    return tuple(out)


def _flat(text: str) -> str:
    return " ".join(text.replace("“", '"').replace("”", '"').split())
