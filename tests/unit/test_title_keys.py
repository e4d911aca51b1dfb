"""The key a title is matched by (storage.title_keys): what counts as the same title, and the
bound on a key's length the catalog's limits rely on."""

from __future__ import annotations

import sys

import pytest

from storage.title_keys import MAX_KEY_CHARACTERS, MAX_TITLE_CHARACTERS, title_key, title_keys


@pytest.mark.parametrize("title", ["Yotsuba&!", "YOTSUBA & !", "ｙｏｔｓｕｂａ＆！", "yotsuba", " Yotsuba\t&\n! "])
def test_case_punctuation_spacing_and_full_width_letters_do_not_matter(title: str) -> None:
    assert title_key(title) == "yotsuba"


def test_a_symbol_is_part_of_the_name() -> None:
    assert title_key("Hunter × Hunter") == "hunter×hunter"
    assert title_key("Hunter × Hunter") != title_key("Hunter Hunter")


def test_digits_stay_so_that_sequels_differ() -> None:
    assert title_key("Naruto 2") == "naruto2"
    assert title_key("Naruto 2") != title_key("Naruto 3")


def test_ligatures_and_sharp_s_match_their_spelled_out_forms() -> None:
    assert title_key("ﬁre") == title_key("fire")
    assert title_key("Straße") == title_key("STRASSE") == "strasse"


def test_control_and_invisible_characters_are_dropped() -> None:
    assert title_key("Ber\x00ser\u200bk\x7f") == "berserk"


def test_half_width_kana_match_full_width_and_other_scripts_are_kept() -> None:
    assert title_key("ﾅﾙﾄ") == "ナルト"
    assert title_key("進撃の巨人") == "進撃の巨人"


def test_a_title_of_only_punctuation_has_an_empty_key() -> None:
    assert title_key("!?… -") == ""


def test_title_keys_are_distinct_non_empty_and_sorted() -> None:
    assert title_keys("Berserk", "berserk!", "...", "Alpha", "ALPHA") == ["alpha", "berserk"]
    assert title_keys() == []


def test_no_character_makes_a_key_longer_than_the_bound_allows() -> None:
    # MAX_KEY_CHARACTERS assumes at most 18 characters of key for one character of title.
    per_character = MAX_KEY_CHARACTERS // MAX_TITLE_CHARACTERS
    longest = max(len(title_key(chr(c))) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert 1 < longest <= per_character
    assert len(title_key("\ufdfa" * MAX_TITLE_CHARACTERS)) <= MAX_KEY_CHARACTERS
