"""Date phrases resolved against the day they were said, never against today."""

from __future__ import annotations

from datetime import date

import pytest

from voice_companion.memory.dates import day_words, find_when, next_occurrence, parse_when

WEDNESDAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("said", "day", "precision"),
    [
        ("next friday", date(2026, 12, 11), "day"),  # the Friday of the coming week
        ("this saturday", date(2026, 12, 5), "day"),
        ("on friday", date(2026, 12, 4), "day"),
        ("wednesday", date(2026, 12, 2), "day"),  # said on a Wednesday: today
        ("next wednesday", date(2026, 12, 9), "day"),
        ("friday after next", date(2026, 12, 11), "day"),
        ("next tuesday", date(2026, 12, 8), "day"),
        ("today", date(2026, 12, 2), "day"),
        ("tonight", date(2026, 12, 2), "day"),
        ("tomorrow", date(2026, 12, 3), "day"),
        ("the day after tomorrow", date(2026, 12, 4), "day"),
        ("in two weeks", date(2026, 12, 16), "day"),
        ("in 3 days", date(2026, 12, 5), "day"),
        ("a couple of weeks from now", date(2026, 12, 16), "day"),
        ("on the 2nd of may", date(2027, 5, 2), "day"),  # May is past: next year's
        ("may 2nd", date(2027, 5, 2), "day"),
        ("the twenty first of june", date(2027, 6, 21), "day"),
        ("on the 3rd of december", date(2026, 12, 3), "day"),
        ("on the 20th of november", date(2026, 11, 20), "day"),  # days ago: the recent past
        ("12 jan", date(2027, 1, 12), "day"),
        ("on friday the 18th of december", date(2026, 12, 18), "day"),
        ("march 12, 2028", date(2028, 3, 12), "day"),
        ("this weekend", date(2026, 12, 5), "day"),
        ("next weekend", date(2026, 12, 12), "day"),
        ("next week", date(2026, 12, 7), "week"),  # its Monday
        ("next month", date(2027, 1, 1), "month"),  # its 1st
        ("in june", date(2027, 6, 1), "month"),
        ("in the spring", date(2027, 3, 1), "season"),  # the 1st of its first month
        ("this summer", date(2027, 6, 1), "season"),
        ("in the autumn", date(2027, 9, 1), "season"),
        ("this winter", date(2026, 12, 1), "season"),  # the one now
        ("next year", date(2027, 1, 1), "year"),
        ("yesterday", date(2026, 12, 1), "day"),
        ("last friday", date(2026, 11, 27), "day"),
        ("last wednesday", date(2026, 11, 25), "day"),
        ("two weeks ago", date(2026, 11, 18), "day"),
        ("last week", date(2026, 11, 23), "week"),
        ("last month", date(2026, 11, 1), "month"),
        ("on the 5th", date(2026, 12, 5), "day"),
        ("on the 1st", date(2027, 1, 1), "day"),  # this month's has passed
        ("at the end of the month", date(2026, 12, 31), "month"),
    ],
)
def test_phrases_resolve_from_the_day_they_were_said(said: str, day: date, precision: str) -> None:
    when = find_when(f"um so it's {said} i think", WEDNESDAY)
    assert when is not None, said
    assert (when.day, when.precision) == (day, precision)


@pytest.mark.parametrize(
    "said", ["may i ask", "i march on", "sure", "on fridays i swim", "the 2nd one", "in a bit"]
)
def test_words_that_are_not_dates(said: str) -> None:
    assert find_when(said, WEDNESDAY) is None


def test_the_same_words_another_day_mean_another_day() -> None:
    def day(phrase: str, said_on: date) -> date | None:
        when = parse_when(phrase, said_on)
        return when.day if when else None

    assert day("next friday", date(2026, 5, 3)) == date(2026, 5, 8)  # said on a Sunday
    assert day("this winter", date(2027, 1, 10)) == date(2026, 12, 1)
    assert day("the 31st of february", WEDNESDAY) is None
    assert day("not a date", WEDNESDAY) is None


def test_next_occurrence_of_a_birthday() -> None:
    assert next_occurrence(12, 3, WEDNESDAY) == date(2027, 3, 12)
    assert next_occurrence(25, 12, WEDNESDAY) == date(2026, 12, 25)
    assert next_occurrence(2, 12, WEDNESDAY) == date(2026, 12, 2)  # today
    assert next_occurrence(29, 2, WEDNESDAY) == date(2027, 2, 28)  # no 29th in 2027
    assert next_occurrence(31, 4, WEDNESDAY) is None


def test_days_are_said_with_their_precision() -> None:
    assert day_words(date(2026, 12, 11)) == "Friday 11 December 2026"
    assert day_words(date(2027, 1, 1), "month") == "January 2027"
    assert day_words(date(2027, 3, 1), "season") == "the spring of 2027"
    assert day_words(date(2026, 12, 7), "week") == "the week of 7 December 2026"
