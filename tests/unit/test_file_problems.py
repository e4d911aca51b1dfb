"""A file its format refuses (formats.problems) and the route's answer to it
(web.errors.file_refusal): pure rules, tested without a service."""

from __future__ import annotations

import json

import pytest

from formats.account_file import INVALID_FILE, read_account_file
from formats.json_reading import JsonRefused
from formats.problems import FileProblem, NotThisKind, TooLarge, Unreadable
from web.errors import file_refusal


@pytest.mark.parametrize("problem, status", [(NotThisKind("not XML"), 415), (TooLarge("too large"), 413),
                                             (JsonRefused("too many values"), 413), (Unreadable("bad"), 400)])
def test_each_kind_of_problem_has_its_status_and_its_message(problem: FileProblem, status: int) -> None:
    answer = file_refusal(problem)
    assert (answer.status, answer.message, answer.errors) == (status, str(problem), None)


def test_a_problem_that_names_a_field_answers_it() -> None:
    answer = file_refusal(Unreadable("Invalid account file at line 3", "ratings.0.rating", "too high"))
    assert [(error.field, error.message) for error in answer.errors or []] == [("ratings.0.rating", "too high")]


def test_a_file_problem_is_no_value_error() -> None:
    # A parser's own `except ValueError` must not swallow a refusal on its way to the route.
    assert not issubclass(FileProblem, ValueError)


def test_the_account_file_names_the_line_and_field_of_its_first_problem() -> None:
    body = json.dumps({"format": "tsundoku-export", "version": 1,
                       "ratings": [{"series_id": 1, "rating": 5, "last_update": "2024-01-01T00:00:00Z"},
                                   {"series_id": 2, "rating": 99, "last_update": "2024-01-01T00:00:00Z"}]},
                      indent=1).encode()
    with pytest.raises(Unreadable) as refused:
        read_account_file([body[:10], body[10:]])
    line = body.decode().splitlines().index('   "rating": 99,') + 1
    assert str(refused.value) == f"{INVALID_FILE} at line {line}"
    assert refused.value.field == "ratings.1.rating"


def test_a_second_entry_for_one_series_is_refused_at_its_line() -> None:
    rating = {"series_id": 1, "rating": 5, "last_update": "2024-01-01T00:00:00Z"}
    body = json.dumps({"format": "tsundoku-export", "version": 1, "ratings": [rating, rating]}, indent=1).encode()
    with pytest.raises(Unreadable) as refused:
        read_account_file([body])
    assert (refused.value.field, refused.value.reason) == ("ratings.1.series_id", "a second entry for series_id 1")


@pytest.mark.parametrize("body, kind", [(b"[" + b"0," * 1_200_001 + b"0]", TooLarge), (b"{", Unreadable),
                                        (b'{"format": NaN}', Unreadable), ("{}".encode("utf-16"), Unreadable)])
def test_what_is_not_an_account_file_is_refused_as_such(body: bytes, kind: type[FileProblem]) -> None:
    with pytest.raises(kind) as refused:
        read_account_file([body])
    assert str(refused.value).startswith(INVALID_FILE)
