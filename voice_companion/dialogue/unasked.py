"""What the companion brings up unasked: what is coming up in the next few days, when the
person's words relate to it, and now and then the name they like to be called.

Per turn, so these go in the context message just before the words, never in the cached
notes (prompt.py). Plain word matching over the facts, no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # memory.store imports dialogue.mood: only the type is needed here
    from voice_companion.memory.store import Fact

_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_STOPWORDS: Final = frozenset(
    str.split(
        """the and for are but not you your yours with this that have has had was were will
    what when where who how why can could would should about from they them their there then
    than just really very some any all our out get got its it's i'm i've i'll my me mine so"""
    )
)


UPCOMING_DAYS: Final = 3
"""Dated events and plans this many days ahead (or today) can be brought up unasked."""
NAME_EVERY_TURNS: Final = 4
"""The name they like is suggested for one reply in this many: now and then, not every turn."""
DATED_KINDS: Final = ("event", "plan", "birthday", "anniversary")
_FEELING: Final = re.compile(
    r"\b(?:nervous|anxious|worried|worry|worrying|scared|afraid|terrified|excited|stress(?:ed|ing)?|"
    r"dread(?:ing)?|ready|prepared|butterflies|freaking|panic(?:king)?|can'?t sleep|"
    r"tomorrow|tonight|this week|weekend|coming up|soon|big day|plans?)\b",
    re.I,
)
"""Words that make what is coming up worth a mention: feelings about it, or time ahead."""
_KIN: Final = {
    "mother": ("mum", "mom", "mam", "mummy", "mommy", "mother", "ma"),
    "father": ("dad", "daddy", "father", "pa", "papa"),
}
_DETERMINERS: Final = frozenset(str.split("my your his her their our the a an"))


def upcoming(facts: Sequence[Fact], now: datetime, words: str, feeling: bool = False) -> list[str]:
    """What is coming up in the next few days that the person's ``words`` relate to, as
    context lines for this turn ("(Tomorrow: your “driving test”.)"), soonest first.

    Related: the words name it ("my exam", "mum's birthday"), or tell a feeling or a time
    ahead ("I'm so nervous", "tomorrow"), or the turn's mood was notable (``feeling``)."""
    today = now.date()
    ahead = sorted(
        (f for f in facts if f.valid and f.kind in DATED_KINDS and f.event_date is not None),
        key=lambda f: (f.event_date or today, f.key),
    )
    soon = [f for f in ahead if 0 <= ((f.event_date or today) - today).days <= UPCOMING_DAYS]
    if not soon:
        return []
    said = {_stem(w) for w in _words(words) if len(w) >= 3 and w not in _STOPWORDS}
    named = [f for f in soon if said & _fact_words(f)]
    chosen = named or (soon if feeling or _FEELING.search(words) else [])
    return [_upcoming_line(f, today) for f in chosen[:2]]


def name_hint(call_them: str | None, turn_number: int) -> str | None:
    """Now and then (one turn in ``NAME_EVERY_TURNS``, from the second), a nudge to use the
    name they like; None on the other turns. Per turn, so never in the cached notes."""
    if not call_them or turn_number % NAME_EVERY_TURNS != 2 % NAME_EVERY_TURNS:
        return None
    return f"(Use their name, “{_flat(call_them)}”, in this reply.)"


def preferred_name(facts: Sequence[Fact]) -> str | None:
    valid = {f.key: f for f in facts if f.valid}
    name = valid.get("preferred_name") or valid.get("name")
    return name.value if name else None


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _fact_words(fact: Fact) -> set[str]:
    subject = fact.key.split(":", 1)[1] if ":" in fact.key else ""
    found = {_stem(w) for w in _words(f"{subject} {fact.value}") if w not in _STOPWORDS}
    for kin, names in _KIN.items():
        if kin in found:
            found |= set(names)
    if fact.kind in ("birthday", "anniversary"):
        found.add(fact.kind)
    return {w for w in found if len(w) >= 2}


def _upcoming_line(fact: Fact, today: date) -> str:
    day = fact.event_date or today
    ago = (day - today).days
    when = "Today" if ago == 0 else "Tomorrow" if ago == 1 else f"On {_WEEKDAYS[day.weekday()]}"
    if fact.kind in ("birthday", "anniversary"):
        whose = fact.key.split(":", 1)[1] if ":" in fact.key else "self"
        if whose == "self":
            what = f"your {fact.kind}"
        elif whose in _KIN or whose in _RELATION_WORDS:
            what = f"your {_flat(whose)}'s {fact.kind}"
        else:
            what = f"“{_flat(whose).title()}”'s {fact.kind}"
        return f"({when}: {what}.)"
    value = _flat(fact.value)
    first = value.split(" ", 1)[0] if value else ""
    if first.lower() == "my":
        value = value[3:]
    elif first.lower() in _DETERMINERS or first[:1].isupper():
        return f"({when}: “{value}”.)"
    return f"({when}: your “{value}”.)"


_RELATION_WORDS: Final = frozenset(
    str.split(
        "brother sister son daughter wife husband partner boyfriend girlfriend fiance fiancee "
        "grandmother grandfather grandma grandpa aunt uncle cousin niece nephew friend boss dog "
        "cat best"
    )
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower().replace("’", "'"))


def _flat(text: str) -> str:
    return " ".join(text.replace("“", '"').replace("”", '"').split())
