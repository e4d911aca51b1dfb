"""What a request can ask the session query to bring along in its one round trip, as typed
requests, and the one place each becomes part of that query (a projection) and comes back as
a record. The HTTP layer names what it needs; it never writes a projection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.collection import CollectionStats, stats_expression, stats_of
from storage.profile_figures import EntryCounts, entry_counts_expression
from storage.reading_stats import OwnFigures, own_stats_expression


@dataclass(frozen=True)
class ListRead:
    """The user's list `list_field` (`statuses`, `ratings`, `collection`): every entry, or with
    `series_id` only that series' entry (zero or one)."""

    list_field: str
    series_id: int | None = None


@dataclass(frozen=True)
class CatalogRead:
    """The catalog document `catalog_id` of `collection` (`series` or `volumes`)."""

    collection: str
    catalog_id: int


@dataclass(frozen=True)
class CollectionStatsRead:
    """The four figures of `client`'s collection items, computed by the database."""

    client: int


@dataclass(frozen=True)
class ReadingStatsRead:
    """The owner's statuses (of `client`, or all) with the fields that count, and the
    collection's two figures, computed by the database."""

    client: int | None


@dataclass(frozen=True)
class EntryCountsRead:
    """How many entries the user's reading list and collection hold, counted by the database."""


FiguresRead = CollectionStatsRead | ReadingStatsRead | EntryCountsRead
SessionRead = ListRead | CatalogRead | FiguresRead
Figures = CollectionStats | OwnFigures | EntryCounts
# The name the session query gives a computed figure in the user's document it returns.
FIGURES = "figures"


def extra_fields(read: SessionRead | None) -> dict[str, Any]:
    """What `read` adds to the projection of the session query on `users` (a CatalogRead adds
    nothing: it is a lookup, see UserStore.find_by_session)."""
    if isinstance(read, ListRead):
        if read.series_id is None:
            return {read.list_field: 1}
        return {read.list_field: {"$elemMatch": {"series_id": read.series_id}}}
    if isinstance(read, CollectionStatsRead):
        return {FIGURES: stats_expression(read.client)}
    if isinstance(read, ReadingStatsRead):
        return {FIGURES: own_stats_expression(read.client)}
    if isinstance(read, EntryCountsRead):
        return {FIGURES: entry_counts_expression()}
    return {}


def figures_of(read: SessionRead | None, document: dict[str, Any]) -> Figures | None:
    """The record of the figures `read` asked for, from the document the query returned."""
    if isinstance(read, CollectionStatsRead):
        return stats_of(document.get(FIGURES))
    if isinstance(read, ReadingStatsRead):
        return OwnFigures.of(document.get(FIGURES))
    if isinstance(read, EntryCountsRead):
        return EntryCounts.of(document.get(FIGURES))
    return None
