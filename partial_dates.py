"""Reading dates that may be partial (`2020`, `2020-05`, `2020-05-17`): what range of days each
means. Shared by the status routes' validation, the merge of imported entries and MAL files."""

from __future__ import annotations

import calendar
import datetime as dt
import re

# [0-9], not \d: \d takes any Unicode digit (Arabic-Indic, full-width), which no date is written in.
_PARTIAL_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$")

# The same rules as JSON Schema patterns, for the document: a year from 0001, a month that exists,
# a day that exists in its month (February 29 in leap years only). tests/unit/test_date_patterns.py
# holds each to date_range and the calendar.
_MONTH_AND_DAY = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
                  "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
FULL_DATE_PATTERN = rf"^(?!0000)(?:[0-9]{{4}}-{_MONTH_AND_DAY}|{_LEAP_YEAR}-02-29)$"
PARTIAL_DATE_PATTERN = (rf"^(?!0000)(?:[0-9]{{4}}(?:-(?:0[1-9]|1[0-2]))?|[0-9]{{4}}-{_MONTH_AND_DAY}"
                        rf"|{_LEAP_YEAR}-02-29)$")


def date_range(value: str) -> tuple[dt.date, dt.date]:
    """The first and last day a (partial) date can mean: `2020-05` is May 1 to May 31.
    ValueError for anything that is not one."""
    match = _PARTIAL_DATE.fullmatch(value)
    if match is None:
        raise ValueError("must be YYYY-MM-DD, YYYY-MM or YYYY")
    year, month, day = (int(part) if part else None for part in match.groups())
    assert year is not None
    if year < 1:
        raise ValueError("is not a real date")
    try:
        if day is not None:
            assert month is not None  # the pattern has no day without a month
            exact = dt.date(year, month, day)  # month 00 with a day is no date (a ValueError)
            return exact, exact
        if month is not None:
            return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:
        raise ValueError("is not a real date") from None
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def ends_before_start(start: str | None, end: str | None) -> bool:
    """Partial dates compare as ranges: end 2020 is not before start 2020-05."""
    if not (start and end):
        return False
    return date_range(end)[1] < date_range(start)[0]
