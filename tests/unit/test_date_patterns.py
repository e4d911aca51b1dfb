"""The date rules, said twice: as the service checks them (partial_dates.date_range, the
collection's calendar_date) and as the document's JSON Schema patterns publish them. Held to the
same answer on every day of some years and on texts made of a date's pieces."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.schemas.collection import calendar_date
from partial_dates import FULL_DATE_PATTERN, PARTIAL_DATE_PATTERN, date_range


def takes(check: object, text: str) -> bool:
    try:
        check(text)  # type: ignore[operator]
    except ValueError:
        return False
    return True


def published(pattern: str, text: str) -> bool:
    # The document's patterns are anchored (^...$) and read as JSON Schema reads them (ECMA 262),
    # where `$` is the end of the text: Python's fullmatch, not its search (whose `$` also matches
    # before a final newline).
    return re.fullmatch(pattern, text) is not None


def test_every_day_of_leap_and_common_years_and_nothing_else() -> None:
    for year in (1, 4, 100, 400, 1900, 2000, 2023, 2024, 9999):
        for month in range(0, 14):
            for day in range(0, 33):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                assert published(FULL_DATE_PATTERN, text) == takes(calendar_date, text), text
                assert published(PARTIAL_DATE_PATTERN, text) == takes(date_range, text), text
            month_text = f"{year:04d}-{month:02d}"
            assert published(PARTIAL_DATE_PATTERN, month_text) == takes(date_range, month_text), month_text
    for text in ("0000", "0000-01", "0000-01-01", "0001", "9999", "2024-1-5", "20240105", "٢٠٢٤"):
        assert published(PARTIAL_DATE_PATTERN, text) == takes(date_range, text), text
        assert published(FULL_DATE_PATTERN, text) == takes(calendar_date, text), text


PIECES = st.sampled_from(["0", "1", "2", "9", "00", "02", "12", "29", "30", "31", "-", "2024", "1900", "0000",
                          "\n", " ", "T", "٢"])


@settings(max_examples=3000)
@given(st.lists(PIECES, max_size=8).map("".join))
def test_the_patterns_take_exactly_what_the_service_takes(text: str) -> None:
    assert published(FULL_DATE_PATTERN, text) == takes(calendar_date, text), repr(text)
    assert published(PARTIAL_DATE_PATTERN, text) == takes(date_range, text), repr(text)


def test_a_date_the_calendar_knows_is_published() -> None:
    day = dt.date(2024, 2, 29)
    assert published(FULL_DATE_PATTERN, day.isoformat()) and published(PARTIAL_DATE_PATTERN, day.isoformat())
