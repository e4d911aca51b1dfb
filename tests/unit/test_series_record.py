"""What a series record keeps of a stored series document."""

from __future__ import annotations

from storage.records import SeriesRecord


def test_aliases_are_the_distinct_titles_in_their_order() -> None:
    record = SeriesRecord.of({"_id": 1, "name": "One Piece", "aliases": [
        {"title": "One Piece", "language": "English"}, {"title": "One Piece", "language": "German"},
        {"title": "ワンピース", "language": "Japanese"}]})
    assert record.aliases == ("One Piece", "ワンピース")
