"""Partial reading dates (partial_dates): the range of days each means, and the one comparison."""

from __future__ import annotations

import datetime as dt

import pytest

from partial_dates import date_range, ends_before_start


def test_a_day_is_one_day() -> None:
    assert date_range("2020-05-17") == (dt.date(2020, 5, 17), dt.date(2020, 5, 17))


def test_a_month_runs_from_its_first_to_its_last_day() -> None:
    assert date_range("2020-05") == (dt.date(2020, 5, 1), dt.date(2020, 5, 31))
    assert date_range("2021-04") == (dt.date(2021, 4, 1), dt.date(2021, 4, 30))


def test_february_knows_leap_years() -> None:
    assert date_range("2020-02")[1] == dt.date(2020, 2, 29)
    assert date_range("2021-02")[1] == dt.date(2021, 2, 28)
    assert date_range("1900-02")[1] == dt.date(1900, 2, 28)
    assert date_range("2000-02-29") == (dt.date(2000, 2, 29),) * 2


def test_a_year_runs_from_january_1_to_december_31() -> None:
    assert date_range("2020") == (dt.date(2020, 1, 1), dt.date(2020, 12, 31))
    assert date_range("0001") == (dt.date(1, 1, 1), dt.date(1, 12, 31))


@pytest.mark.parametrize("text", ["", "20", "2020-5", "2020-05-7", "20200517", "2020/05/17", "2020-05-17T00:00",
                                  " 2020", "2020 ", "2020\n", "2020-", "2020-05-", "-2020", "12345", "May 2020"])
def test_what_is_not_shaped_like_a_date_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="must be YYYY-MM-DD, YYYY-MM or YYYY"):
        date_range(text)


@pytest.mark.parametrize("text", ["0000", "0000-05", "2020-00", "2020-13", "2020-02-30", "2021-02-29", "2020-04-31",
                                  "2020-05-00", "2020-05-32"])
def test_a_date_that_does_not_exist_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a real date"):
        date_range(text)


def test_a_day_of_month_00_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a real date"):
        date_range("2020-00-10")


@pytest.mark.parametrize("text", ["٢٠٢٠", "２０２０-０５"])
def test_only_ascii_digits_make_a_date(text: str) -> None:
    with pytest.raises(ValueError):
        date_range(text)


@pytest.mark.parametrize(("start", "end"), [(None, None), ("2020", None), (None, "2020"), ("", "2020")])
def test_a_missing_date_is_never_out_of_order(start: str | None, end: str | None) -> None:
    assert ends_before_start(start, end) is False


@pytest.mark.parametrize(("start", "end", "before"), [
    ("2020-05-18", "2020-05-17", True),
    ("2020-05-17", "2020-05-17", False),
    ("2020-05-17", "2020-05-18", False),
    ("2020-05", "2020", False),  # end 2020 can be December 31
    ("2020", "2020-05", False),
    ("2020-05-17", "2020-05", False),  # end May can be May 31
    ("2020-06", "2020-05-31", True),
    ("2020", "2019-12-31", True),
    ("2020-01-01", "2019", True),
])
def test_partial_dates_compare_as_ranges(start: str, end: str, before: bool) -> None:
    assert ends_before_start(start, end) is before
