"""The series listing a process holds (storage.series_listing): its orders, filters, words and
counts, and its stored form."""

from __future__ import annotations

from typing import Any

import pytest

from storage import series_listing
from storage.series_listing import ListingBuilder, ListingFilter, SeriesListing

EVERYONE = ListingFilter(client=1, nsfw18=False)


def document(id: int, name: str, *, client: int = 1, type: str = "Manga", origin: str = "Japanese",
             nsfw18: int = 0, **sort_titles: str) -> dict[str, Any]:
    return {"_id": id, "name": name, "aliases": [{"title": t, "language": "x"} for t in sort_titles.values()],
            "sort_titles": {"en": name.casefold(), **{code: t.casefold() for code, t in sort_titles.items()}},
            "type": type, "origin": origin, "client": client, "nsfw18": nsfw18}


def listing_of(*documents: dict[str, Any]) -> SeriesListing:
    builder = ListingBuilder()
    for entry in documents:
        builder.add(entry)
    return builder.build("b1")


LISTING = listing_of(
    # Added in any order: series are numbered by id.
    document(30, "Berserk", de="Zerberus"),
    document(10, "Dragon Ball"),
    document(20, "Adult Title", nsfw18=1),
    document(40, "A Dragon's Tale", type="Light Novel"),
    document(50, "Asterix", client=2, type="Comic", origin="French"),
    document(60, "Solo Leveling", type="Manhwa", origin="Korean"),
)


def page(listing: SeriesListing, shown: ListingFilter = EVERYONE, words: list[str] | None = None,
         language: str = "en", by_name: bool = True, descending: bool = False, offset: int = 0,
         limit: int = 20) -> tuple[list[int], int]:
    found = listing.page(shown, words, language, by_name, descending, offset, limit)
    return found.ids, found.total


def test_orders_by_name_per_language_and_by_id() -> None:
    assert page(LISTING) == ([40, 30, 10, 60], 4)
    assert page(LISTING, descending=True) == ([60, 10, 30, 40], 4)
    assert page(LISTING, language="de")[0] == [40, 10, 60, 30]  # Berserk sorts as "Zerberus"
    assert page(LISTING, language="xx")[0] == [40, 30, 10, 60]  # an unknown code: English
    assert page(LISTING, by_name=False) == ([10, 30, 40, 60], 4)
    assert page(LISTING, by_name=False, descending=True, offset=1, limit=2) == ([40, 30], 4)


def test_ties_in_name_go_to_the_lower_id() -> None:
    twins = listing_of(document(7, "Same"), document(3, "Same"), document(5, "Same"))
    assert page(twins) == ([3, 5, 7], 3)
    assert page(twins, descending=True) == ([7, 5, 3], 3)


def test_filters_select_cells_and_count_them() -> None:
    assert page(LISTING, ListingFilter(client=1, nsfw18=True)) == ([40, 20, 30, 10, 60], 5)
    assert page(LISTING, ListingFilter(client=2, nsfw18=False)) == ([50], 1)
    assert page(LISTING, ListingFilter(client=1, nsfw18=False, types=frozenset({"manga", "manhwa"}))) == \
        ([30, 10, 60], 3)
    assert page(LISTING, ListingFilter(client=1, nsfw18=False, origins=frozenset({"korean"}))) == ([60], 1)
    assert page(LISTING, ListingFilter(client=1, nsfw18=False, origins=frozenset({"french"}))) == ([], 0)
    assert LISTING.has_nsfw18(1) and LISTING.has_nsfw18(None) and not LISTING.has_nsfw18(2)


def test_words_match_title_word_beginnings_all_of_them() -> None:
    assert page(LISTING, words=["drag"]) == ([40, 10], 2)
    assert page(LISTING, words=["drag", "ball"]) == ([10], 1)
    assert page(LISTING, words=["zer"]) == ([30], 1)  # an alias
    assert page(LISTING, words=["agon"]) == ([], 0)
    assert page(LISTING, words=[]) == ([], 0)
    assert page(LISTING, words=["adult"]) == ([], 0)  # 18+, not shown
    assert page(LISTING, ListingFilter(client=1, nsfw18=True), words=["adult"]) == ([20], 1)
    assert page(LISTING, words=["drag"], by_name=False, descending=True) == ([40, 10], 2)


def test_quick_search_puts_titles_that_begin_with_the_first_word_first() -> None:
    anyone = ListingFilter(client=None, nsfw18=False)
    assert LISTING.quick_search(anyone, ["drag"], 10) == [10, 40]
    assert LISTING.quick_search(anyone, ["drag"], 1) == [10]
    assert LISTING.quick_search(anyone, ["a"], 10) == [40, 50]  # every client; not the 18+ "Adult Title"
    assert LISTING.quick_search(anyone, [], 10) == []


def test_the_stored_form_reads_back_the_same_listing() -> None:
    again = SeriesListing.from_bytes(LISTING.to_bytes())
    assert again.build == "b1" and len(again) == len(LISTING)
    shown = ListingFilter(client=1, nsfw18=True)
    for words in (None, ["drag"], ["zer"]):
        for language in ("en", "de"):
            assert page(again, shown, words, language) == page(LISTING, shown, words, language)
    # Languages that order alike share one order.
    assert len({id(order) for order in again.orders.values()}) == 2


def test_an_empty_listing_lists_nothing() -> None:
    empty = SeriesListing.from_bytes(SeriesListing.empty("b0").to_bytes())
    assert page(empty) == ([], 0) and page(empty, words=["a"]) == ([], 0)
    assert empty.quick_search(EVERYONE, ["a"], 5) == [] and not empty.has_nsfw18(None)


def test_another_format_is_refused() -> None:
    data = bytearray(LISTING.to_bytes())
    data[4:4 + len(b'{"format": 1')] = b'{"format": 9'
    with pytest.raises(ValueError, match="format 9"):
        SeriesListing.from_bytes(bytes(data))


@pytest.mark.parametrize("sort_at_most", [0, 10_000])
def test_many_found_are_walked_out_of_the_order_as_few_are_sorted(monkeypatch: pytest.MonkeyPatch,
                                                                    sort_at_most: int) -> None:
    monkeypatch.setattr(series_listing, "SORT_AT_MOST", sort_at_most)
    names = ["Moon", "Moon Star", "Star Moon", "Sun"]
    many = listing_of(*(document(n, f"{names[n % 4]} {n:04}", nsfw18=int(n % 7 == 0)) for n in range(1, 5001)))
    # "Moon 0004", "Moon 0008", ... then "Moon Star ...": every series with a word that begins "moon".
    moon = sorted((n for n in range(1, 5001) if n % 4 != 3 and n % 7), key=lambda n: (names[n % 4], n))
    assert page(many, words=["moo"], limit=5) == (moon[:5], len(moon))
    assert page(many, words=["moo"], descending=True, offset=3, limit=4)[0] == moon[::-1][3:7]
    assert page(many, words=["moo"], by_name=False, descending=True, limit=3)[0] == sorted(moon)[::-1][:3]
    assert many.quick_search(EVERYONE, ["moon"], 3) == moon[:3]
    star_first = sorted((n for n in moon if n % 4 == 2), key=lambda n: (names[n % 4], n))
    assert many.quick_search(EVERYONE, ["star", "moo"], 3) == star_first[:3]


@pytest.mark.parametrize("descending", [False, True])
def test_deep_pages_skip_blocks_and_land_where_a_walk_does(monkeypatch: pytest.MonkeyPatch, descending: bool) -> None:
    monkeypatch.setattr(series_listing, "BLOCK", 8)
    types = ["Manga", "Manhwa", "Comic"]
    listing = listing_of(*(document(n, f"Title {(n * 37) % 301:03}", type=types[n % 3], nsfw18=int(n % 11 == 0),
                                    client=1 + (n % 5 == 0)) for n in range(1, 301)))
    for shown in (EVERYONE, ListingFilter(client=1, nsfw18=True, types=frozenset({"manhwa"})),
                  ListingFilter(client=2, nsfw18=False)):
        for by_name in (True, False):
            everything = page(listing, shown, by_name=by_name, descending=descending, limit=1000)[0]
            for offset in range(0, len(everything) + 10, 7):
                assert page(listing, shown, by_name=by_name, descending=descending, offset=offset, limit=5) == \
                    (everything[offset:offset + 5], len(everything)), (shown, by_name, offset)
