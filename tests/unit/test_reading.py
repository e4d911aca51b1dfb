"""The reading history's filter and orders (storage.reading): the client and status an entry must
have; by a status field or by name, ties by series id and missing values last, in both directions."""

from __future__ import annotations

from typing import Any

import pytest

from storage.catalog_keys import Keys, SeriesKeys
from storage.reading import HistoryRequest, filtered, order_by_name, order_by_status_field


def entry(series_id: int, **fields: Any) -> dict[str, Any]:
    return {"series_id": series_id, **fields}


def ids(entries: list[dict[str, Any]]) -> list[int]:
    return [e["series_id"] for e in entries]


def request(client: int | None = None, status: str | None = None) -> HistoryRequest:
    return HistoryRequest(order="update", descending=True, offset=0, limit=20, search=None, language="en",
                          client=client, status=status)


# The filter.

def test_a_status_keeps_the_entries_of_that_status_in_their_stored_order() -> None:
    entries = [entry(3, status="paused"), entry(1, status="started"), entry(2, status="paused"), entry(4)]
    assert ids(filtered(entries, request(status="paused"))) == [3, 2]
    assert filtered(entries, request(status="dropped")) == []


def test_client_and_status_must_both_match() -> None:
    entries = [entry(1, status="started", client=1), entry(2, status="started", client=2),
               entry(3, status="completed", client=1)]
    assert ids(filtered(entries, request(client=1, status="started"))) == [1]
    assert ids(filtered(entries, request(client=1))) == [1, 3]


def test_no_filter_answers_the_list_as_it_is() -> None:
    entries = [entry(2, status="started"), entry(1, status="planned")]
    assert filtered(entries, request()) is entries


# By a status field.

@pytest.mark.parametrize(("order", "field"), [("update", "last_update"), ("start-date", "start"),
                                              ("end-date", "end")])
def test_a_field_order_sorts_by_that_field(order: str, field: str) -> None:
    entries = [entry(1, **{field: "2021"}), entry(2, **{field: "2019"}), entry(3, **{field: "2020"})]
    assert ids(order_by_status_field(entries, order, descending=False)) == [2, 3, 1]
    assert ids(order_by_status_field(entries, order, descending=True)) == [1, 3, 2]


def test_priority_orders_by_rank_not_by_name() -> None:
    entries = [entry(1, priority="mid"), entry(2, priority="high"), entry(3, priority="low")]
    assert ids(order_by_status_field(entries, "priority", descending=False)) == [3, 1, 2]
    assert ids(order_by_status_field(entries, "priority", descending=True)) == [2, 1, 3]


def test_score_orders_by_value_and_a_score_of_0_counts_as_none() -> None:
    entries = [entry(1, score=7.5), entry(2, score=0), entry(3, score=2.0), entry(4, score=None)]
    assert ids(order_by_status_field(entries, "score", descending=False)) == [3, 1, 2, 4]
    assert ids(order_by_status_field(entries, "score", descending=True)) == [1, 3, 2, 4]


@pytest.mark.parametrize("descending", [False, True])
def test_ties_go_by_ascending_series_id_in_both_directions(descending: bool) -> None:
    entries = [entry(9, score=5.0), entry(3, score=5.0), entry(7, score=5.0), entry(1, score=8.0)]
    ordered = ids(order_by_status_field(entries, "score", descending))
    assert ordered == ([1, 3, 7, 9] if descending else [3, 7, 9, 1])


@pytest.mark.parametrize("descending", [False, True])
def test_missing_values_come_last_by_series_id_in_both_directions(descending: bool) -> None:
    entries = [entry(8), entry(2, start="2020"), entry(5, start=None), entry(1), entry(4, start="2021")]
    ordered = ids(order_by_status_field(entries, "start-date", descending))
    assert ordered[-3:] == [1, 5, 8]
    assert ordered[:2] == ([4, 2] if descending else [2, 4])


def test_an_unknown_priority_counts_as_missing() -> None:
    entries = [entry(1, priority="urgent"), entry(2, priority="low"), entry(3)]
    assert ids(order_by_status_field(entries, "priority", descending=True)) == [2, 1, 3]


def test_the_entries_given_are_not_reordered_in_place() -> None:
    entries = [entry(2, score=1.0), entry(1, score=2.0)]
    order_by_status_field(entries, "score", descending=True)
    assert ids(entries) == [2, 1]


def test_an_empty_list_orders_to_an_empty_list() -> None:
    assert order_by_status_field([], "update", descending=True) == []


# By name.

def keys(titles: dict[int, dict[str, str] | None]) -> Keys:
    """Catalog keys of these series (sort titles by language; None: not in the catalog)."""
    return Keys({series_id: None if sort_titles is None else SeriesKeys(sort_titles, [])
                 for series_id, sort_titles in titles.items()}, version=1)


def test_name_order_sorts_by_the_sort_title() -> None:
    catalog = keys({1: {"en": "naruto"}, 2: {"en": "berserk"}, 3: {"en": "monster"}})
    entries = [entry(1), entry(2), entry(3)]
    assert ids(order_by_name(entries, catalog, "en", descending=False)) == [2, 3, 1]
    assert ids(order_by_name(entries, catalog, "en", descending=True)) == [1, 3, 2]


def test_name_order_uses_the_requested_languages_title_then_english() -> None:
    catalog = keys({1: {"en": "attack on titan", "de": "angriff auf titan"}, 2: {"en": "berserk"},
                    3: {"en": "zelda", "de": "abenteuer"}})
    entries = [entry(1), entry(2), entry(3)]
    assert ids(order_by_name(entries, catalog, "en", descending=False)) == [1, 2, 3]
    assert ids(order_by_name(entries, catalog, "de", descending=False)) == [3, 1, 2]


@pytest.mark.parametrize("descending", [False, True])
def test_name_ties_go_by_ascending_series_id_in_both_directions(descending: bool) -> None:
    catalog = keys({4: {"en": "same"}, 2: {"en": "same"}, 9: {"en": "same"}, 1: {"en": "zzz"}})
    ordered = ids(order_by_name([entry(4), entry(1), entry(9), entry(2)], catalog, "en", descending))
    assert ordered == ([1, 2, 4, 9] if descending else [2, 4, 9, 1])


@pytest.mark.parametrize("descending", [False, True])
def test_a_series_the_catalog_lacks_comes_last_by_series_id_in_both_directions(descending: bool) -> None:
    catalog = keys({1: {"en": "b"}, 2: {"en": "a"}, 6: None})  # 5 was never read, 6 left the catalog
    ordered = ids(order_by_name([entry(6), entry(1), entry(5), entry(2)], catalog, "en", descending))
    assert ordered == ([1, 2, 5, 6] if descending else [2, 1, 5, 6])
