"""The rules of entity tags and the conditional request headers (web.conditional, RFC 9110 13.1)."""

from __future__ import annotations

import pytest

from handlers.schemas.collection import CollectionEntry
from web.conditional import asks_any, entity_tag, if_match_holds, none_match_fails, tag_of_answer

TAG = '"0123456789abcdef0123456789abcdef"'
OTHER = '"fedcba9876543210fedcba9876543210"'


def test_a_tag_is_a_quoted_hash_of_the_bytes_however_they_are_split() -> None:
    whole = entity_tag([b"hello world"])
    assert whole == entity_tag([b"hello", b" ", b"world"])
    assert whole.startswith('"') and whole.endswith('"') and len(whole) == 34
    assert entity_tag([b"hello world!"]) != whole


def test_the_tag_of_an_answer_is_the_tag_of_its_compact_json() -> None:
    entry = CollectionEntry(item_id="a", buy_date=None, price=6.5)
    assert tag_of_answer(entry) == entity_tag([b'{"item_id":"a","buy_date":null,"price":6.5}'])


@pytest.mark.parametrize("header", [TAG, f"W/{TAG}", f"{OTHER}, {TAG}", f"{OTHER},{TAG}", f" {OTHER} ,  W/{TAG} ",
                                    "*", " * "])
def test_if_none_match_names_the_tag_by_the_weak_comparison(header: str) -> None:
    assert none_match_fails(header, TAG)
    assert none_match_fails(header, f"W/{TAG}")


@pytest.mark.parametrize("header", [None, "", OTHER, TAG.strip('"'), f"W/{OTHER}", "W/", '"', "**", f"x{OTHER}",
                                    "0123456789abcdef0123456789abcdef"])
def test_if_none_match_that_names_another_tag_or_none_is_true(header: str | None) -> None:
    assert not none_match_fails(header, TAG)


def test_if_none_match_without_a_current_answer_is_true() -> None:
    assert not none_match_fails("*", None)


@pytest.mark.parametrize("header", [None, TAG, f"{OTHER}, {TAG}", "*", f'{OTHER},{TAG}'])
def test_if_match_holds_for_the_current_tag_a_list_holding_it_star_or_no_header(header: str | None) -> None:
    assert if_match_holds(header, TAG)


@pytest.mark.parametrize("header", [OTHER, f"W/{TAG}", f"{OTHER}, W/{TAG}", "", TAG.strip('"'), "W/*"])
def test_if_match_fails_for_another_tag_and_for_a_weak_one(header: str) -> None:
    assert not if_match_holds(header, TAG)


@pytest.mark.parametrize("header", ["*", TAG])
def test_if_match_fails_without_an_entry(header: str) -> None:
    assert not if_match_holds(header, None)


def test_if_match_holds_without_the_header_even_without_an_entry() -> None:
    assert if_match_holds(None, None)


def test_only_star_asks_just_that_the_entry_exist() -> None:
    assert asks_any("*") and asks_any(" * ")
    assert not asks_any(None) and not asks_any(TAG) and not asks_any(f"*, {TAG}")


def test_a_tag_with_a_comma_inside_is_one_tag() -> None:
    # etagc takes a comma (RFC 9110, 8.8.3): a list is split by tags, not by commas.
    assert none_match_fails('"a,b"', '"a,b"')
    assert not none_match_fails('"a,b"', '"a"')


def test_a_long_malformed_header_is_read_in_one_pass() -> None:
    # Quotes that never close, and prefixes that never lead to a tag: no tag, and no backtracking
    # over what was read (a count of characters, not a time, is what bounds it).
    for header in ['"' + "a" * 60_000, 'W/' * 30_000, '"a ' * 20_000, '""' * 30_000]:
        assert not if_match_holds(header, TAG)
        assert not none_match_fails(header, TAG)
