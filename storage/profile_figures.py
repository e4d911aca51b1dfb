"""The overview figures of the signed-in user's own profile (`GET /user/me`): how many entries
the reading list and the collection hold, counted by the database in the session query, so that
neither list travels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EntryCounts:
    reading_entries: int  # every status, public and private, of every client
    collection_entries: int  # every collection item

    @classmethod
    def of(cls, computed: dict[str, Any] | None) -> EntryCounts:
        figures = computed or {}
        return cls(reading_entries=int(figures.get("reading_entries") or 0),
                   collection_entries=int(figures.get("collection_entries") or 0))


def entry_counts_expression() -> dict[str, Any]:
    """What the session query computes from the user's document for EntryCounts."""
    return {"reading_entries": {"$size": {"$ifNull": ["$statuses", []]}},
            "collection_entries": {"$size": {"$ifNull": ["$collection", []]}}}
