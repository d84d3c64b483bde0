"""The period a question names, as a span of days: "last summer", "in May", "two weeks ago".

Retrieval favours turns said inside it (``retrieval.RankWeights.time``). Read from what the user
says, so lower case, no punctuation and filler words are the normal case. Relative phrases
resolve against the moment of the question. A month name that is also an ordinary word
("may", "march", "june", "august") counts only beside a preposition or a year ("in may",
"march 2023"), so "may I ask" names no period. Seasons are the northern meteorological ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

__all__ = ["Period", "period_named"]


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last``, both included."""

    first: date
    last: date

    def holds(self, moment: datetime) -> bool:
        return self.first <= moment.date() <= self.last


MONTHS: Final = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_AMBIGUOUS: Final = frozenset({"may", "march", "june", "august"})
_SEASONS: Final = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
"""Each season's first month; it lasts three."""
_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS: Final = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple": 2,
}  # fmt: skip
_PREPOSITIONS: Final = (
    "in",
    "during",
    "last",
    "this",
    "since",
    "of",
    "early",
    "late",
    "mid",
    "back",
)

_MONTH_RE: Final = re.compile(
    r"\b(?:(?P<prep>" + "|".join(_PREPOSITIONS) + r")\s+(?:(?:of|in)\s+)?)?"
    r"(?P<month>" + "|".join(MONTHS) + r")\b(?:\s*,?\s*(?P<year>(?:19|20)\d\d)\b)?"
)
_SEASON_RE: Final = re.compile(
    r"\b(?P<which>last|this|past|previous)?\s*(?P<season>" + "|".join(_SEASONS) + r")\b"
    r"(?:\s*(?:of\s+)?(?P<year>(?:19|20)\d\d)\b)?"
)
_AGO_RE: Final = re.compile(
    r"\b(?P<n>\d{1,3}|" + "|".join(_NUMBERS) + r")\s+(?:of\s+)?(?:few\s+)?"
    r"(?P<unit>day|week|month|year)s?\s+ago\b"
)
_LAST_RE: Final = re.compile(r"\b(?:last|past|previous)\s+(?P<unit>week|weekend|month|year)\b")
_WEEKDAY_RE: Final = re.compile(
    r"\b(?:last|on|this|past)\s+(?P<day>" + "|".join(_WEEKDAYS) + r")\b"
)
_YEAR_RE: Final = re.compile(r"\b(?:in|during|back in|of)\s+(?P<year>(?:19|20)\d\d)\b")


def period_named(text: str, now: datetime) -> Period | None:
    """The period ``text`` names, resolved against ``now``; None when it names none."""
    said = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
    today = now.date()
    if re.search(r"\byesterday\b", said):
        return _day(today - timedelta(days=1))
    if m := _AGO_RE.search(said):
        n = int(m["n"]) if m["n"].isdigit() else _NUMBERS[m["n"]]
        return _ago(today, n, m["unit"])
    if m := _LAST_RE.search(said):
        return _last(today, m["unit"])
    if m := _SEASON_RE.search(said):
        return _season(today, m["season"], m["which"], m["year"])
    for m in _MONTH_RE.finditer(said):
        if m["month"] in _AMBIGUOUS and not (m["prep"] or m["year"]):
            continue
        return _month(today, MONTHS.index(m["month"]) + 1, m["year"], m["prep"] == "this")
    if m := _WEEKDAY_RE.search(said):
        back = (today.weekday() - _WEEKDAYS.index(m["day"])) % 7 or 7
        return _day(today - timedelta(days=back))
    if m := _YEAR_RE.search(said):
        year = int(m["year"])
        return Period(date(year, 1, 1), date(year, 12, 31))
    return None


def _day(day: date) -> Period:
    return Period(day, day)


def _ago(today: date, n: int, unit: str) -> Period:
    """Around the moment meant: "two weeks ago" is not to the day."""
    days = {"day": 1, "week": 7, "month": 30, "year": 365}[unit] * n
    slack = {"day": 0, "week": 3, "month": 10, "year": 90}[unit]
    centre = today - timedelta(days=days)
    return Period(centre - timedelta(days=slack), min(today, centre + timedelta(days=slack)))


def _last(today: date, unit: str) -> Period:
    if unit == "week":
        monday = today - timedelta(days=today.weekday() + 7)
        return Period(monday, monday + timedelta(days=6))
    if unit == "weekend":
        saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
        return Period(saturday, saturday + timedelta(days=1))
    if unit == "month":
        first_this = today.replace(day=1)
        last_prev = first_this - timedelta(days=1)
        return Period(last_prev.replace(day=1), last_prev)
    return Period(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))


def _season(today: date, season: str, which: str | None, year_text: str | None) -> Period:
    start_month = _SEASONS[season]
    if year_text:
        year = int(year_text)
    else:
        year = today.year
        start = _month_start(year, start_month)
        # "last summer" is the most recent one that is over; "this summer" or a bare
        # "summer" the one now, or else the last one that began.
        if which in ("last", "past", "previous"):
            while _month_start(year, start_month + 3) > today:
                year -= 1
        elif start > today:
            year -= 1
    first = _month_start(year, start_month)
    return Period(first, _month_start(year, start_month + 3) - timedelta(days=1))


def _month(today: date, month: int, year_text: str | None, this: bool) -> Period:
    if year_text:
        year = int(year_text)
    else:  # the most recent such month that has begun ("in May" said in March: last May)
        year = today.year if month <= today.month or this else today.year - 1
    first = date(year, month, 1)
    return Period(first, _month_start(year, month + 1) - timedelta(days=1))


def _month_start(year: int, month: int) -> date:
    """The first day of ``month`` of ``year``; months past 12 run into the next year."""
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
