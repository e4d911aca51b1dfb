"""The catalog's `filters` rule, said twice: as parse_filters enforces it and as the document's
JSON Schema pattern publishes it. A client generator's data and the service must agree on every
text, so the two are held to the same answer on texts made of the grammar's own pieces."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.schemas.catalog_list import FILTERS_PATTERN, MAX_FILTERS, parse_filters

PIECES = st.sampled_from(["type", "TyPe", "origin", "ORIGIN", "typo", "orig", ":", ";", " ", "\t", "\n", "\x1f",
                          "\u3000", "Manga", "a", "İ", "é", ":x"])


def service_takes(text: str) -> bool:
    try:
        parse_filters(text)
    except ValueError:
        return False
    return True


def document_takes(text: str) -> bool:
    # The pattern is anchored (^...$) and read as JSON Schema reads it (ECMA 262), where `$` is the
    # end of the text: Python's fullmatch, not its search (whose `$` also matches before a final newline).
    return re.fullmatch(FILTERS_PATTERN, text) is not None


@settings(max_examples=3000)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_the_pattern_takes_exactly_what_the_service_takes(text: str) -> None:
    assert document_takes(text) == service_takes(text), repr(text)


def test_the_limit_on_filters_is_in_the_pattern() -> None:
    most = ";".join(["type:Manga"] * MAX_FILTERS)
    assert document_takes(most) and service_takes(most)
    assert not document_takes(most + ";origin:x") and not service_takes(most + ";origin:x")
    # Blank parts are not filters.
    assert document_takes(most + ";;  ;") and service_takes(most + ";;  ;")


def test_long_texts_get_the_same_answer() -> None:
    # The longest texts the route takes (1,000 characters), shaped to make a backtracking pattern
    # try every split: each is decided at once here (under a millisecond when measured).
    for text in ("type:" + "a" * 995, ";" * 1000, " ;" * 500, "type: " + " " * 994, "type" * 250,
                 ("type:a" + ";" * 40) * 20 + "origin", ("type:a" + " ;" * 20) * 21):
        assert document_takes(text) == service_takes(text), text[:40]
