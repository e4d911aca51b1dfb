"""Reading statuses, embedded in the user's document, and the reading-history query over them."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

# Where each order's value comes from, as an aggregation expression over one status entry.
_PRIORITY_RANK = {"$switch": {"branches": [
    {"case": {"$eq": ["$priority", "low"]}, "then": 1},
    {"case": {"$eq": ["$priority", "mid"]}, "then": 2},
    {"case": {"$eq": ["$priority", "high"]}, "then": 3},
], "default": None}}
STATUS_SORT_VALUES: dict[str, Any] = {
    "update": "$last_update",
    "priority": _PRIORITY_RANK,
    # 0 means unscored: it sorts with the entries that have no score.
    "score": {"$cond": [{"$gt": ["$score", 0]}, "$score", None]},
    "start-date": "$start",
    "end-date": "$end",
}
NAME_ORDER = "name"


class WriteOutcome(enum.Enum):
    DONE = "done"
    CONFLICT = "conflict"
    NOT_FOUND = "not found"


@dataclass(frozen=True)
class HistoryRequest:
    order: str  # a key of STATUS_SORT_VALUES, or NAME_ORDER
    descending: bool
    offset: int
    limit: int
    search: str | None
    language: str  # a language code; name orders sort by the title shown in it
    client: int | None


@dataclass(frozen=True)
class HistoryPage:
    entries: list[tuple[dict[str, Any], dict[str, Any]]]  # (status entry, series)
    total: int


def literal_pattern(text: str) -> str:
    """A search term as a regular expression that matches only the text itself."""
    return re.escape(text.casefold())


_LOOKUP_SERIES = [
    {"$lookup": {"from": "series", "localField": "series_id", "foreignField": "_id", "as": "series"}},
    {"$unwind": "$series"},
]


class ReadingStatusStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._users = db["users"]

    async def add(self, user_id: str, series_id: int, client: int, fields: dict[str, Any], now: Any) -> WriteOutcome:
        """One conditional push: of concurrent adds for one series, exactly one succeeds."""
        entry = {"series_id": series_id, "client": client, **fields, "last_update": now}
        result = await self._users.update_one(
            {"_id": user_id, "statuses.series_id": {"$ne": series_id}},
            {"$push": {"statuses": entry}},
        )
        return WriteOutcome.DONE if result.matched_count else WriteOutcome.CONFLICT

    async def update(self, user_id: str, series_id: int, client: int, fields: dict[str, Any], now: Any) -> WriteOutcome:
        """Replaces the entry's fields in place, atomically."""
        entry = {"series_id": series_id, "client": client, **fields, "last_update": now}
        result = await self._users.update_one(
            {"_id": user_id, "statuses.series_id": series_id},
            {"$set": {"statuses.$": entry}},
        )
        return WriteOutcome.DONE if result.matched_count else WriteOutcome.NOT_FOUND

    async def delete(self, user_id: str, series_id: int) -> WriteOutcome:
        result = await self._users.update_one(
            {"_id": user_id, "statuses.series_id": series_id},
            {"$pull": {"statuses": {"series_id": series_id}}},
        )
        return WriteOutcome.DONE if result.matched_count else WriteOutcome.NOT_FOUND

    async def history(self, user_id: str, request: HistoryRequest) -> HistoryPage:
        """One aggregation: the user's statuses, filtered, sorted and paged on the server.
        The catalog is joined before paging only when the filter or order needs series fields;
        otherwise only the page's series are looked up."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id": user_id}},
            {"$project": {"_id": 0, "statuses": 1}},
            {"$unwind": "$statuses"},
            {"$replaceRoot": {"newRoot": "$statuses"}},
        ]
        if request.client is not None:
            pipeline.append({"$match": {"client": request.client}})
        needs_series = request.order == NAME_ORDER or request.search is not None
        if needs_series:
            pipeline += _LOOKUP_SERIES
        if request.search is not None:
            pipeline.append({"$match": {"series.search_text": {"$regex": literal_pattern(request.search)}}})
        sort_value = (f"$series.sort_titles.{request.language}" if request.order == NAME_ORDER
                      else STATUS_SORT_VALUES[request.order])
        pipeline += [
            {"$addFields": {"_sort_value": sort_value}},
            # Entries without the value come last in both directions.
            {"$addFields": {"_sort_missing": {"$cond": [{"$eq": [{"$ifNull": ["$_sort_value", None]}, None]}, 1, 0]}}},
            {"$sort": {"_sort_missing": 1, "_sort_value": -1 if request.descending else 1, "series_id": 1}},
        ]
        # $limit must be positive; a zero limit still runs the count.
        page: list[dict[str, Any]] = [{"$skip": request.offset}, {"$limit": max(request.limit, 1)}]
        if not needs_series:
            page += _LOOKUP_SERIES
        pipeline.append({"$facet": {"items": page, "total": [{"$count": "n"}]}})
        result = await (await self._users.aggregate(pipeline)).to_list(length=1)
        facet = result[0] if result else {"items": [], "total": []}
        items = facet["items"][: request.limit]
        entries = []
        for item in items:
            series = item.pop("series")
            item.pop("_sort_value", None)
            item.pop("_sort_missing", None)
            entries.append((item, series))
        # SecantusDB answers [{"n": 0}] and mongod [] for an empty count: read both as 0.
        total = facet["total"][0]["n"] if facet["total"] else 0
        return HistoryPage(entries=entries, total=total)
