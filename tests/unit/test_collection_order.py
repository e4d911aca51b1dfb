"""The order of a collection page (storage.collection.order_collection): series by title in the
request's language, volumes in reading order within a series, search, and items the catalog lacks."""

from __future__ import annotations

from typing import Any

from storage.catalog_keys import Keys, SeriesKeys, VolumeKeys
from storage.collection import CollectionRequest, order_collection

# Series 1 "Berserk"; series 2 "Detective Conan" ("Meitantei Konan" in German, alias "Case Closed");
# series 3 "Attack on Titan".
SERIES = Keys({
    1: SeriesKeys({"en": "Berserk"}, ["berserk"]),
    2: SeriesKeys({"en": "Detective Conan", "de": "Meitantei Konan"}, ["detective conan", "case closed"]),
    3: SeriesKeys({"en": "Attack on Titan"}, ["attack on titan"]),
}, version=1)
# Volume ids are not in reading order: 12 is read before 11; 13 has no reading order.
VOLUMES = Keys({
    11: VolumeKeys(2, "berserk 2"),
    12: VolumeKeys(1, "berserk 1"),
    13: VolumeKeys(None, "berserk deluxe"),
    21: VolumeKeys(1, "conan 1"),
    31: VolumeKeys(1, "titan 1"),
    32: VolumeKeys(2, "titan 2"),
}, version=1)


def item(series_id: int, volume_id: int) -> dict[str, Any]:
    return {"series_id": series_id, "volume_id": volume_id}


ITEMS = [item(1, 13), item(2, 21), item(1, 11), item(3, 32), item(1, 12), item(3, 31)]


def order(items: list[dict[str, Any]] = ITEMS, *, descending: bool = False, search: str | None = None,
          language: str = "en") -> list[int]:
    request = CollectionRequest(client=1, descending=descending, offset=0, limit=100, search=search, language=language)
    return [entry["volume_id"] for entry in order_collection(items, SERIES, VOLUMES, request)]


def test_series_by_title_and_volumes_in_reading_order_then_those_without_one() -> None:
    assert order() == [31, 32, 12, 11, 13, 21]


def test_descending_reverses_the_series_but_not_the_volumes_within_one() -> None:
    assert order(descending=True) == [21, 12, 11, 13, 31, 32]


def test_the_title_is_the_one_of_the_requests_language_or_the_english_one() -> None:
    assert order(language="de") == [31, 32, 12, 11, 13, 21]  # "Meitantei Konan" still after "Berserk"
    assert SERIES.of[2].sort_title("de") == "Meitantei Konan" and SERIES.of[2].sort_title("fr") == "Detective Conan"
    retitled = Keys({**SERIES.of, 3: SeriesKeys({"en": "Attack on Titan", "de": "Titan-Angriff"}, [])}, 1)
    request = CollectionRequest(client=1, descending=False, offset=0, limit=100, search=None, language="de")
    assert [e["volume_id"] for e in order_collection(ITEMS, retitled, VOLUMES, request)] == [12, 11, 13, 21, 31, 32]


def test_volumes_of_equal_reading_order_are_ordered_by_id() -> None:
    volumes = Keys({**VOLUMES.of, 14: VolumeKeys(1, "berserk 1 variant")}, 1)
    request = CollectionRequest(client=1, descending=False, offset=0, limit=100, search=None, language="en")
    ordered = order_collection([item(1, 14), item(1, 12)], SERIES, volumes, request)
    assert [e["volume_id"] for e in ordered] == [12, 14]


def test_an_item_whose_series_or_volume_left_the_catalog_is_left_out() -> None:
    series = Keys({**SERIES.of, 4: None}, 1)
    request = CollectionRequest(client=1, descending=False, offset=0, limit=100, search=None, language="en")
    items = [item(1, 12), item(4, 41), item(1, 99), item(5, 12)]
    assert [e["volume_id"] for e in order_collection(items, series, VOLUMES, request)] == [12]


def test_search_matches_the_series_name_or_alias_or_the_volume_name() -> None:
    assert order(search="case closed") == [21]  # an alias: the series' volumes
    assert order(search="BERSERK") == [12, 11, 13]  # the term is casefolded
    assert order(search="deluxe") == [13]  # a volume's own name
    assert order(search="titan 2") == [32]
    assert order(search="one piece") == []
