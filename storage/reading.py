"""Reading statuses, embedded in the user's document, and the reading-history query over them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from storage.embedded_list import EmbeddedList
from storage.outcome import WriteOutcome
from storage.paging import entries_of, page_stage, run_paged
from storage.records import SeriesRecord, StatusRecord, StoredList

PRIORITY_RANK = {"low": 1, "mid": 2, "high": 3}
STATUS_FIELD_OF_ORDER = {"update": "last_update", "start-date": "start", "end-date": "end"}
# Where each order's value comes from, as an aggregation expression over one status entry.
STATUS_SORT_VALUES: dict[str, Any] = {
    "update": "$last_update",
    "priority": {"$switch": {"branches": [{"case": {"$eq": ["$priority", name]}, "then": rank}
                                          for name, rank in PRIORITY_RANK.items()], "default": None}},
    # 0 means unscored: it sorts with the entries that have no score.
    "score": {"$cond": [{"$gt": ["$score", 0]}, "$score", None]},
    "start-date": "$start",
    "end-date": "$end",
}
NAME_ORDER = "name"
# What a list item shows of a series; never the derived sort and search fields.
SERIES_CARD_FIELDS: dict[str, int] = {
    field: 1 for field in ("name", "type", "slug", "origin", "client", "titles", "descriptions", "first_volume",
                           "rating_count", "rating_half_points")
}



@dataclass(frozen=True)
class HistoryRequest:
    order: str  # a key of STATUS_SORT_VALUES, or NAME_ORDER
    descending: bool
    offset: int
    limit: int
    search: str | None
    language: str  # a language code; name orders sort by the title shown in it
    client: int | None

    @property
    def needs_series(self) -> bool:
        """Whether filtering or ordering needs catalog fields, not only the statuses."""
        return self.order == NAME_ORDER or self.search is not None


@dataclass(frozen=True)
class HistoryPage:
    entries: list[tuple[StatusRecord, SeriesRecord]]
    total: int


def literal_pattern(text: str) -> str:
    """A search term as a regular expression that matches only the text itself."""
    return re.escape(text.casefold())


class ReadingStatusStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._users = db["users"]
        self._series = db["series"]
        self._statuses = EmbeddedList(self._users, "statuses", key="series_id")

    async def add(self, user_id: str, series_id: int, client: int, fields: dict[str, Any], now: Any) -> WriteOutcome:
        """One conditional push: of concurrent adds for one series, exactly one succeeds."""
        entry = {"series_id": series_id, "client": client, **fields, "last_update": now}
        added = await self._statuses.push_unique(user_id, series_id, entry)
        return WriteOutcome.DONE if added else WriteOutcome.CONFLICT

    async def update(self, user_id: str, series_id: int, client: int, fields: dict[str, Any], now: Any) -> WriteOutcome:
        """Replaces the entry's fields in place, atomically."""
        entry = {"series_id": series_id, "client": client, **fields, "last_update": now}
        replaced = await self._statuses.replace(user_id, series_id, entry)
        return WriteOutcome.DONE if replaced else WriteOutcome.NOT_FOUND

    async def delete(self, user_id: str, series_id: int) -> WriteOutcome:
        removed = await self._statuses.remove(user_id, series_id)
        return WriteOutcome.DONE if removed else WriteOutcome.NOT_FOUND

    async def history(self, user_id: str, request: HistoryRequest,
                      entries: StoredList | None = None) -> HistoryPage:
        """One round trip either way. When the order and filter need only the statuses, the
        caller passes the user's `entries` (read with the session) and they are ordered here,
        so only the page's series are read. Otherwise one aggregation joins the catalog."""
        if request.needs_series:
            return await self._history_joined(user_id, request)
        return await self._history_of_entries(entries.stored if entries else [], request)

    async def _history_of_entries(self, entries: list[dict[str, Any]], request: HistoryRequest) -> HistoryPage:
        if request.client is not None:
            entries = [e for e in entries if e.get("client") == request.client]
        ordered = order_by_status_field(entries, request.order, request.descending)
        page = ordered[request.offset: request.offset + request.limit]
        found: dict[int, SeriesRecord] = {}
        if page:
            # At most 100 ids: SecantusDB's $in grows with the square of the list, so never more.
            cursor = self._series.find({"_id": {"$in": [e["series_id"] for e in page]}}, SERIES_CARD_FIELDS)
            found = {series["_id"]: SeriesRecord.of(series) async for series in cursor}
        return HistoryPage(
            entries=[(StatusRecord.of(entry), found[entry["series_id"]]) for entry in page
                     if entry["series_id"] in found],
            total=len(ordered),
        )

    async def _history_joined(self, user_id: str, request: HistoryRequest) -> HistoryPage:
        sort_field = f"sort_titles.{request.language}"
        pipeline: list[dict[str, Any]] = [
            *entries_of(user_id, "statuses"),
        ]
        if request.client is not None:
            pipeline.append({"$match": {"client": request.client}})
        # Only what filtering and sorting need is joined for every entry; the page joins the rest.
        ordered: list[dict[str, Any]] = [
            {"$lookup": {"from": "series", "localField": "series_id", "foreignField": "_id", "as": "key",
                         "pipeline": [{"$project": {"_id": 0, sort_field: 1, "search_text": 1}}]}},
            {"$unwind": "$key"},
        ]
        if request.search is not None:
            ordered.append({"$match": {"key.search_text": {"$regex": literal_pattern(request.search)}}})
        direction = -1 if request.descending else 1
        if request.order == NAME_ORDER:
            # Every series has a sort title in every language (fallbacks are applied at import).
            ordered.append({"$sort": {f"key.{sort_field}": direction, "series_id": 1}})
        else:
            ordered += [
                {"$addFields": {"_sort_value": STATUS_SORT_VALUES[request.order]}},
                # Entries without the value come last in both directions.
                {"$addFields": {"_sort_missing": {"$cond": [{"$eq": [{"$ifNull": ["$_sort_value", None]}, None]}, 1, 0]}}},
                {"$sort": {"_sort_missing": 1, "_sort_value": direction, "series_id": 1}},
            ]
        page_joins = [
            {"$lookup": {"from": "series", "localField": "series_id", "foreignField": "_id", "as": "series",
                         "pipeline": [{"$project": SERIES_CARD_FIELDS}]}},
            {"$unwind": "$series"},
            {"$project": {"key": 0, "_sort_value": 0, "_sort_missing": 0}},
        ]
        if request.search is None:
            # One rule with ordering the statuses alone (`_history_of_entries`): `max` counts every
            # status, also one whose series has left the catalog; a page lists only those with a
            # series. So the count is taken before the join, which drops them.
            pipeline.append(page_stage(request.offset, request.limit, page_joins, ordered_first=ordered))
        else:  # a search matches only series that exist: counted after it
            pipeline += [*ordered, page_stage(request.offset, request.limit, page_joins)]
        found, total = await run_paged(self._users, pipeline, request.limit)
        entries = [(StatusRecord.of(item), SeriesRecord.of(item["series"])) for item in found]
        return HistoryPage(entries=entries, total=total)


def _status_sort_value(entry: dict[str, Any], order: str) -> Any:
    if order == "priority":
        return PRIORITY_RANK.get(entry.get("priority") or "")
    if order == "score":
        score = entry.get("score")
        return score if score else None
    return entry.get(STATUS_FIELD_OF_ORDER[order])


def order_by_status_field(entries: list[dict[str, Any]], order: str, descending: bool) -> list[dict[str, Any]]:
    """The same order as the aggregation: by value, ties by series id, missing values last."""
    by_id = sorted(((_status_sort_value(e, order), e) for e in entries), key=lambda pair: pair[1]["series_id"])
    valued = [(v, e) for v, e in by_id if v is not None]
    missing = [e for v, e in by_id if v is None]
    # Python's sort is stable with reverse=True too, so ties keep the series id order.
    valued.sort(key=lambda pair: pair[0], reverse=descending)
    return [e for _, e in valued] + missing
