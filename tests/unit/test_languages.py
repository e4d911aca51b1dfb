"""Language codes and names (languages): what a code or name means, and which title a list shows."""

from __future__ import annotations

import pytest

from languages import FALLBACK, LANGUAGES, language_code, localized, requested_language


@pytest.mark.parametrize("value", ["de", "ger", "deu", "German", "GERMAN", "german", " de ", "De"])
def test_codes_iso_639_2_codes_and_english_names_all_mean_the_code(value: str) -> None:
    assert language_code(value) == "de"


@pytest.mark.parametrize(("value", "code"), [("jpn", "ja"), ("kor", "ko"), ("zho", "zh"), ("chi", "zh"),
                                             ("nld", "nl"), ("fra", "fr"), ("Japanese", "ja")])
def test_the_three_letter_codes_the_settings_use(value: str, code: str) -> None:
    assert language_code(value) == code


@pytest.mark.parametrize("value", [None, "", "xx", "klingon", "en-US", "de_DE"])
def test_anything_unknown_is_none(value: str | None) -> None:
    assert language_code(value) is None


def test_every_catalog_language_is_known_by_code_and_by_name() -> None:
    for code, name in LANGUAGES.items():
        assert language_code(code) == code
        assert language_code(name) == code


def test_a_list_shows_the_requested_language_if_known_else_english() -> None:
    assert FALLBACK == "en"
    assert requested_language("Korean") == "ko"
    assert requested_language("xx") == "en"
    assert requested_language(None) == "en"


def test_a_title_in_the_requested_language_then_english_then_the_default() -> None:
    texts = {"en": "Attack on Titan", "de": "Angriff auf Titan", "fr": ""}
    assert localized(texts, "de", "Shingeki") == "Angriff auf Titan"
    assert localized(texts, "ja", "Shingeki") == "Attack on Titan"
    assert localized(texts, "fr", "Shingeki") == "Attack on Titan"  # an empty title is none
    assert localized(texts, None, "Shingeki") == "Attack on Titan"
    assert localized({"de": "Angriff"}, "ja", "Shingeki") == "Shingeki"
    assert localized(None, "de", "Shingeki") == "Shingeki"
    assert localized({}, "de", None) is None
