"""Days from what people say: "next Friday", "on the 2nd of May", "in two weeks", "this summer".

Every phrase is resolved against the day it was said (the turn's own date), never today.
A vague period resolves to a documented approximate day, and says how precise it is:
  a week ("next week")              its Monday (precision "week")
  a month ("next month", "in June") its 1st (precision "month")
  a season ("in the spring")        the 1st of its first month: spring March, summer June,
                                    autumn/fall September, winter December (precision "season")
Past phrases ("yesterday", "last Friday", "two weeks ago", "last month") resolve backwards
the same way. "next <weekday>" is that weekday in the coming week (said on a Wednesday, "next
Friday" is the Friday nine days on); "this Friday", "on Friday" and "Friday" are the nearest
one ahead.
A day without a year ("May 2nd") is the next one on or after the day it was said, unless it
was less than a month before (then the user is speaking about the recent past).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS: Final = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_MONTH_ABBREV: Final = {m[:3]: i + 1 for i, m in enumerate(MONTHS)} | {"sept": 9}
_MONTH_OF: Final = {m: i + 1 for i, m in enumerate(MONTHS)} | _MONTH_ABBREV
_SEASONS: Final = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_NUMBERS: Final = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple of": 2,
    "a couple of": 2, "few": 3, "a few": 3,
}  # fmt: skip
_ORDINALS: Final = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "twenty first": 21, "twenty second": 22,
    "twenty third": 23, "twenty fourth": 24, "twenty fifth": 25, "twenty sixth": 26,
    "twenty seventh": 27, "twenty eighth": 28, "twenty ninth": 29, "thirtieth": 30,
    "thirty first": 31,
}  # fmt: skip

PRECISIONS: Final = ("day", "week", "month", "season", "year")


@dataclass(frozen=True)
class When:
    """A resolved date phrase: the day, how precise it is, and where it was in the text."""

    day: date
    precision: str
    phrase: str
    start: int = 0
    end: int = 0


_MONTH = r"(?:" + "|".join([*MONTHS, "sept", *sorted(_MONTH_ABBREV)]) + r")\.?"
_WEEKDAY = r"(?:" + "|".join(WEEKDAYS) + r")"
_ORD_WORDS = "|".join(sorted(_ORDINALS, key=len, reverse=True))
_DAYNUM = rf"(?:\d{{1,2}}(?:st|nd|rd|th)?|{_ORD_WORDS})"
_COUNT = (
    r"(?:\d{1,2}|a couple of|couple of|a few|few|an?|one|two|three|four|five|six|seven|"
    r"eight|nine|ten|eleven|twelve)"
)
_YEAR_DM = r"(?:,? (?P<dm_y>(?:19|20)\d\d))?"
_YEAR_MD = r"(?:,? (?P<md_y>(?:19|20)\d\d))?"

# Longest, most specific forms first; each alternative names what it is.
_PATTERN: Final = re.compile(
    r"\b(?:"
    rf"(?P<dm>(?:on )?(?:(?:{_WEEKDAY}),? )?(?:the )?(?P<dm_d>{_DAYNUM}) (?:of )?"
    rf"(?P<dm_m>{_MONTH}){_YEAR_DM})"
    rf"|(?P<md>(?:on )?(?:(?:{_WEEKDAY}),? )?(?P<md_m>{_MONTH}) (?:the )?"
    rf"(?P<md_d>{_DAYNUM})\b{_YEAR_MD})"
    r"|(?P<numeric>(?:on )?(?P<n_d>\d{1,2})/(?P<n_m>\d{1,2})(?:/(?P<n_y>\d{2,4}))?)"
    r"|(?P<dat>the day after tomorrow)"
    r"|(?P<today>today|tonight|this (?:morning|afternoon|evening))"
    r"|(?P<tomorrow>tomorrow(?: (?:morning|afternoon|evening|night))?)"
    r"|(?P<yesterday>yesterday(?: (?:morning|afternoon|evening))?|last night)"
    rf"|(?P<ago>(?P<count3>{_COUNT}) (?P<unit3>days?|weeks?|months?|years?) ago)"
    rf"|(?P<last_wd>last (?P<lwd>{_WEEKDAY}))"
    r"|(?P<last>last (?P<last_unit>week|weekend|month|year))"
    rf"|(?P<in_n>in (?P<count>{_COUNT}) (?P<unit>days?|weeks?|months?)(?: time)?)"
    rf"|(?P<a_n>(?P<count2>{_COUNT}) (?P<unit2>days?|weeks?|months?) from (?:now|today))"
    rf"|(?P<weekday>(?P<wd_which>next|this|on|this coming|coming)? ?(?P<wd>{_WEEKDAY})"
    r"(?: (?:morning|afternoon|evening|night))?(?P<wd_after> after next)?)"
    r"|(?P<weekend>(?P<we_which>this|next|on the) weekend)"
    r"|(?P<week>next week|the week after next|later this week|this week)"
    r"|(?P<month_rel>next month|this month|later this month|the month after next)"
    r"|(?P<season>(?:in |this |next |over |during )?(?:the )?(?P<season_which>next |coming )?"
    r"(?P<sname>spring|summer|autumn|fall|winter)(?: holidays?)?)"
    r"|(?P<eom>(?:at |by )?the end of (?:the |this )?month)"
    rf"|(?P<dom>on the (?P<dom_d>{_DAYNUM}))"
    r"|(?P<year_rel>next year|this year)"
    rf"|(?P<month>(?:in|this|next|early|late|mid|the end of|end of)(?:-| )(?P<m_only>{_MONTH}))"
    r")(?![\w'])",
    re.I,
)


def same_length_case(text: str) -> str:
    """``text`` with the few characters whose lower case is longer ("İ") replaced by one
    that is not, so matches found ignoring case can be looked up in lower case."""
    if text.isascii():
        return text
    return "".join(c if len(c.lower()) == 1 else c.lower()[0] for c in text)


def find_when(text: str, said_on: date) -> When | None:
    """The first date phrase in ``text``, resolved against the day it was said."""
    for m in _PATTERN.finditer(same_length_case(text)):
        when = _resolve(m, said_on)
        if when is not None:
            return when
    return None


def parse_when(phrase: str, said_on: date) -> When | None:
    """``phrase`` as a whole (after "on"/"at"): a date, or None when it is not one."""
    m = _PATTERN.fullmatch(same_length_case(phrase).strip().lower().rstrip(".!?,"))
    return _resolve(m, said_on) if m else None


def _resolve(m: re.Match[str], today: date) -> When | None:
    g = m.groupdict()
    phrase = m.group(0)

    def out(day: date, precision: str = "day") -> When:
        return When(day, precision, phrase, m.start(), m.end())

    def _on(day: date | None) -> When | None:
        return None if day is None else out(day)

    if g["dm"] or g["md"]:
        day_word = (g["dm_d"] or g["md_d"]).lower()
        month_word = (g["dm_m"] or g["md_m"]).lower().rstrip(".")
        number = _ORDINALS.get(day_word) or int(re.sub(r"\D", "", day_word))
        month = _MONTH_OF.get(month_word) or _MONTH_OF.get(month_word[:3])
        if month is None:
            return None
        if g["md"] and not re.search(r"\d|st$|nd$|rd$|th$", day_word):
            return None
        return _on(_day_of_year(number, month, today, g["dm_y"] or g["md_y"]))
    if g["numeric"]:
        # Day first (the British way); an impossible one (13/25) reads month first.
        d, mo = int(g["n_d"]), int(g["n_m"])
        if mo > 12 and d <= 12:
            d, mo = mo, d
        return _on(_day_of_year(d, mo, today, _full_year(g["n_y"])))
    if g["dat"]:
        return out(today + timedelta(days=2))
    if g["today"]:
        return out(today)
    if g["tomorrow"]:
        return out(today + timedelta(days=1))
    if g["yesterday"]:
        return out(today - timedelta(days=1))
    if g["ago"]:
        count, unit = _count(g["count3"]), g["unit3"].lower()
        if unit.startswith("day"):
            return out(today - timedelta(days=count))
        if unit.startswith("week"):
            return out(today - timedelta(weeks=count))
        if unit.startswith("month"):
            return out(_add_months(today.replace(day=1), -count), "month")
        return out(date(today.year - count, 1, 1), "year")
    if g["last_wd"]:
        back = (today.weekday() - WEEKDAYS.index(g["lwd"].lower())) % 7 or 7
        return out(today - timedelta(days=back))
    if g["last"]:
        unit = g["last_unit"].lower()
        monday = today - timedelta(days=today.weekday())
        if unit == "week":
            return out(monday - timedelta(weeks=1), "week")
        if unit == "weekend":
            return out(monday - timedelta(days=2))
        if unit == "month":
            return out(_add_months(today.replace(day=1), -1), "month")
        return out(date(today.year - 1, 1, 1), "year")
    if g["in_n"] or g["a_n"]:
        count = _count(g["count"] or g["count2"])
        unit = (g["unit"] or g["unit2"]).lower()
        if unit.startswith("day"):
            return out(today + timedelta(days=count))
        if unit.startswith("week"):
            return out(today + timedelta(weeks=count))
        return out(_add_months(today, count), "month")
    if g["weekday"]:
        target = WEEKDAYS.index(g["wd"].lower())
        which = (g["wd_which"] or "").lower()
        ahead = (target - today.weekday()) % 7
        if which == "next":
            # The weekday in the coming week (Monday to Sunday after this one).
            monday = today + timedelta(days=7 - today.weekday())
            day = monday + timedelta(days=target)
        else:
            day = today + timedelta(days=ahead or 7) if which else today + timedelta(days=ahead)
            if not which and ahead == 0:
                day = today  # "Friday", said on a Friday: today
        if g["wd_after"]:
            day += timedelta(days=7)
        return out(day)
    if g["weekend"]:
        saturday = today + timedelta(days=(5 - today.weekday()) % 7)
        if today.weekday() == 6:
            saturday = today - timedelta(days=1)  # "this weekend", said on a Sunday
        if g["we_which"].lower() == "next":
            saturday += timedelta(days=7)
        return out(saturday)
    if g["week"]:
        p = g["week"].lower()
        monday = today - timedelta(days=today.weekday())
        if p in ("this week", "later this week"):
            return out(today, "week")
        weeks = 2 if "after next" in p else 1
        return out(monday + timedelta(weeks=weeks), "week")
    if g["month_rel"]:
        p = g["month_rel"].lower()
        if "this month" in p:
            return out(today, "month")
        return out(_add_months(today.replace(day=1), 2 if "after next" in p else 1), "month")
    if g["season"]:
        first = _SEASONS[g["sname"].lower()]
        day = date(today.year, first, 1)
        upcoming = bool(g["season_which"]) or phrase.lower().startswith("next")
        if first == 12 and today.month <= 2 and not upcoming:
            day = date(today.year - 1, 12, 1)  # "this winter", said in January: the one now
        elif _add_months(day, 3) <= today or (upcoming and day <= today):
            day = day.replace(year=today.year + 1)
        return out(day, "season")
    if g["eom"]:
        return out(_add_months(today.replace(day=1), 1) - timedelta(days=1), "month")
    if g["dom"]:
        # "on the 5th": this month's, or next month's when it has passed
        word = g["dom_d"].lower()
        number = _ORDINALS.get(word) or int(re.sub(r"\D", "", word))
        for months in (0, 1, 2):
            month_start = _add_months(today.replace(day=1), months)
            try:
                that_day = month_start.replace(day=number)
            except ValueError:
                continue
            if that_day >= today:
                return out(that_day)
        return None
    if g["year_rel"]:
        year = today.year + (1 if g["year_rel"].lower().startswith("next") else 0)
        return out(date(year, 1, 1) if year > today.year else today, "year")
    if g["month"]:
        month_word = g["m_only"].lower().rstrip(".")
        month = _MONTH_OF.get(month_word) or _MONTH_OF.get(month_word[:3])
        if month is None:
            return None
        day = date(today.year, month, 1)
        if day.replace(day=28) < today - timedelta(days=31) or (
            phrase.lower().startswith("next") and day <= today
        ):
            day = day.replace(year=today.year + 1)
        return out(day, "month")
    return None


def _day_of_year(day: int, month: int, today: date, year: str | None) -> date | None:
    try:
        when = date(int(year) if year else today.year, month, day)
    except ValueError:
        return None
    if not year and when < today - timedelta(days=31):
        when = when.replace(year=today.year + 1)
    return when


def next_occurrence(day: int, month: int, said_on: date) -> date | None:
    """The next ``day``/``month`` on or after ``said_on`` (a birthday; 29 February in a
    common year is kept on 28 February)."""
    for year in (said_on.year, said_on.year + 1):
        try:
            when = date(year, month, day)
        except ValueError:
            if (day, month) != (29, 2):
                return None
            when = date(year, 2, 28)
        if when >= said_on:
            return when
    return None


def _add_months(d: date, months: int) -> date:
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    return date(year, month, 1)


def _count(word: str) -> int:
    w = word.lower()
    return int(w) if w.isdigit() else _NUMBERS.get(w, 1)


def _full_year(year: str | None) -> str | None:
    if not year:
        return None
    return year if len(year) == 4 else f"20{year[-2:]}"


def day_words(d: date, precision: str = "day") -> str:
    """How to say the day: "Friday 11 December 2026", "January 2027", "spring 2027"."""
    month = MONTHS[d.month - 1].capitalize()
    if precision == "month":
        return f"{month} {d.year}"
    if precision == "season":
        season = {3: "spring", 6: "summer", 9: "autumn", 12: "winter"}.get(d.month, month)
        return f"the {season} of {d.year}"
    if precision == "year":
        return str(d.year)
    if precision == "week":
        return f"the week of {d.day} {month} {d.year}"
    return f"{WEEKDAYS[d.weekday()].capitalize()} {d.day} {month} {d.year}"
