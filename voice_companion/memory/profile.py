"""The user's profile: what adapts the companion to this person.

Built from their facts and their recent words, by plain counting (no model): the name they
like to be called, how long they like replies, how formal and in what tone they talk, the
topics they keep coming back to, and their mood over the last days (from the mood estimate
stored with each of their turns). It is rebuilt when asked, never stored, so forgetting a turn
or a fact also forgets what the profile drew from it.

The notes go ahead of the history in the prompt, where a change costs the model's cached
prefix: they speak of past days only, so they stay the same all day. How the user feels right
now reaches the model with their message instead.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal

from voice_companion.dialogue.mood import NEGATIVE_LABELS, MoodLabel, describe
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
_GENERIC: Final = frozenset(
    str.split(
        """today yesterday tomorrow time thing things something anything much going want need
    good great sure maybe right still even back make made feel feeling day week going doing
    lot bit little work-day"""
    )
)


MOOD_LOW: Final = -0.2
MOOD_GOOD: Final = 0.2
"""A day's mean valence at or past these is a low or a good day."""
MIN_VALENCE: Final = 0.05
"""Turns with |valence| below this (VADER's own neutral band) do not sway the day."""
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class DayMood:
    """How the user seemed on one day: ``level`` from the mean valence of their turns,
    ``label`` the most frequent notable mood (None when nothing stood out), ``spoken`` when
    that was heard in their voice at least once."""

    day: date
    level: Mood
    label: MoodLabel | None = None
    spoken: bool = False

    def felt(self) -> str:
        """How they seemed, as said to them after "you seemed": "tired", "in good spirits"."""
        if self.label:
            return describe(self.label)
        return {"low": "low", "mixed": "up and down", "good": "in good spirits"}[self.level]


@dataclass(frozen=True)
class Profile:
    """How to talk to this user. ``mood`` holds recent days with a mood, oldest first."""

    call_them: str | None
    reply_length: ReplyLength
    formality: Formality
    tone: str
    topics: tuple[str, ...]
    mood: tuple[DayMood, ...]
    today: date | None = None
    """Days from this one on are left out of the notes (they are still being lived)."""

    def notes(self) -> list[str]:
        """The profile as short notes for the prompt: ``about`` them, then ``style``."""
        return [*self.about(), *self.style()]

    def about(self) -> list[str]:
        """What the profile knows of them, written as the companion would say it to them
        ("You like to be called “Jo”.", names quoted as said). No "the user", no dates: a
        small model reads such framing aloud."""
        lines: list[str] = []
        if self.call_them:
            lines.append(f"You like to be called “{_flat(self.call_them)}”.")
        if self.topics:
            quoted = ", ".join(f"“{_flat(t)}”" for t in self.topics)
            lines.append(f"You often talk about {quoted}.")
        past = [d for d in self.mood if self.today is None or d.day < self.today]
        if past:
            # Weekday names: the notes stay the same all day, and no date is read aloud.
            days = [f"{d.felt()} on {_WEEKDAYS[d.day.weekday()]}" for d in past[-3:]]
            said = days[0] if len(days) == 1 else ", ".join(days[:-1]) + " and " + days[-1]
            lines.append(f"Lately you seemed {said}.")
        return lines

    def style(self) -> list[str]:
        """How to talk with them (reply length, formality, tone), said to the companion."""
        lines: list[str] = []
        lines.append(
            {
                "short": "Give short replies: one sentence.",
                "medium": "Give replies of one or two sentences.",
                "long": "Give fuller replies of a few sentences.",
            }[self.reply_length]
        )
        if self.formality != "neutral":
            lines.append(
                "Talk casually, like a friend."
                if self.formality == "casual"
                else "Talk politely, a little formally."
            )
        if self.tone != "warm":
            lines.append(f"Be {self.tone}.")
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
        today=now.date(),
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


def _mood(turns: Sequence[StoredTurn], now: datetime) -> tuple[DayMood, ...]:
    since = (now - timedelta(days=MOOD_DAYS)).date()
    days: dict[date, list[StoredTurn]] = {}
    for t in turns:
        if t.mood is not None and t.at.date() >= since:
            days.setdefault(t.at.date(), []).append(t)
    out: list[DayMood] = []
    for day in sorted(days):
        moods = [t.mood for t in days[day] if t.mood is not None]
        swaying = [m.valence for m in moods if abs(m.valence) >= MIN_VALENCE]
        mean = sum(swaying) / len(swaying) if swaying else 0.0
        notable = [m for m in moods if m.label not in ("neutral", "calm")]
        # A hard moment outweighs the pleasantries around it ("thanks, you're kind").
        notable = [m for m in notable if m.label in NEGATIVE_LABELS] or notable
        label: MoodLabel | None = None
        if notable:
            counts = Counter(m.label for m in notable)
            top = max(counts.values())
            # Ties go to the latest of them: how the day ended.
            label = next(m.label for m in reversed(notable) if counts[m.label] == top)
        if not swaying and label is None:
            continue
        level: Mood = "low" if mean <= MOOD_LOW else "good" if mean >= MOOD_GOOD else "mixed"
        if not swaying:  # plain words, telling voice: the voice decides
            level = "low" if label in NEGATIVE_LABELS else "good"
        elif label in NEGATIVE_LABELS and level == "good":
            level = "mixed"
        spoken = any(m.spoken for m in notable if m.label == label) if label else False
        out.append(DayMood(day, level, label, spoken))
    return tuple(out)


def recent_mood_line(user_turns: Sequence[StoredTurn], now: datetime) -> str | None:
    """The latest notable mood of the last days, to be said aloud: "you sounded tired on
    Sunday", "you seemed happy today"; None when nothing stood out."""
    for day in reversed(_mood(user_turns, now)):
        if day.label is None:
            continue
        ago = (now.date() - day.day).days
        weekday = _WEEKDAYS[day.day.weekday()]
        when = "today" if ago == 0 else "yesterday" if ago == 1 else f"on {weekday}"
        verb = "sounded" if day.spoken else "seemed"
        return f"you {verb} {describe(day.label)} {when}"
    return None


def _flat(text: str) -> str:
    return " ".join(text.replace("“", '"').replace("”", '"').split())
