"""The owned volumes, embedded in the user's document as `collection` items.

Prices are stored as integer cents, so every sum is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from storage.embedded_list import EmbeddedList
from storage.outcome import WriteOutcome
from storage.paging import entries_of, page_stage, run_paged
from storage.reading import literal_pattern
from storage.records import CollectionItemRecord, SeriesRecord, VolumeRecord

# What a collection answer shows of a volume and of its series.
VOLUME_FIELDS: dict[str, int] = {
    field: 1 for field in ("name", "series_id", "language", "release_date", "pages", "nsfw", "nsfw18",
                           "aspect_ratio", "cover_path", "group_order")
}
SERIES_FIELDS: dict[str, int] = {"name": 1, "type": 1, "titles": 1}


@dataclass(frozen=True)
class CollectionRequest:
    client: int
    descending: bool
    offset: int
    limit: int
    search: str | None
    language: str


@dataclass(frozen=True)
class CollectionPage:
    items: list[tuple[CollectionItemRecord, VolumeRecord, SeriesRecord]]
    total: int


@dataclass(frozen=True)
class CollectionStats:
    total_items: int
    total_cents: int
    first_buy: str | None
    last_buy: str | None


def collection_stats(items: list[CollectionItemRecord], client: int) -> CollectionStats:
    """Computed from the items read with the session: exact, and no second round trip."""
    mine = [item for item in items if item.client == client]
    dates = sorted(item.buy_date for item in mine if item.buy_date)
    return CollectionStats(
        total_items=len(mine),
        total_cents=sum(item.price_cents or 0 for item in mine),
        first_buy=dates[0] if dates else None,
        last_buy=dates[-1] if dates else None,
    )


class CollectionStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._users = db["users"]
        self._items = EmbeddedList(self._users, "collection", key="item_id")

    async def add(self, user_id: str, volume: VolumeRecord, price_cents: int | None,
                  buy_date: str | None, now: Any) -> tuple[WriteOutcome, str | None]:
        """One conditional push: of concurrent adds of one volume, exactly one is stored."""
        item_id = str(ObjectId())
        item = {"item_id": item_id, "volume_id": volume.id, "series_id": volume.series_id,
                "client": volume.client, "price_cents": price_cents, "buy_date": buy_date, "added": now}
        if await self._items.push_unique(user_id, volume.id, item, unique_by="volume_id"):
            return WriteOutcome.DONE, item_id
        return WriteOutcome.CONFLICT, None

    async def update(self, user_id: str, item_id: str, price_cents: int | None, buy_date: str | None) -> WriteOutcome:
        changed = await self._items.set_fields(user_id, item_id, {"price_cents": price_cents, "buy_date": buy_date})
        return WriteOutcome.DONE if changed else WriteOutcome.NOT_FOUND

    async def delete(self, user_id: str, item_id: str) -> WriteOutcome:
        return WriteOutcome.DONE if await self._items.remove(user_id, item_id) else WriteOutcome.NOT_FOUND

    async def page(self, user_id: str, request: CollectionRequest) -> CollectionPage:
        """One aggregation: the client's items, joined to the sort and search keys of their
        series and volume, sorted by localized series name then volume order, and paged; only
        the page is joined to the full volume and series."""
        sort_title = f"sort_titles.{request.language}"
        pipeline: list[dict[str, Any]] = [
            *entries_of(user_id, "collection"),
            {"$match": {"client": request.client}},
            {"$lookup": {"from": "series", "localField": "series_id", "foreignField": "_id", "as": "series_key",
                         "pipeline": [{"$project": {"_id": 0, sort_title: 1, "search_text": 1}}]}},
            {"$unwind": "$series_key"},
            {"$lookup": {"from": "volumes", "localField": "volume_id", "foreignField": "_id", "as": "volume_key",
                         "pipeline": [{"$project": {"_id": 0, "group_order": 1, "search_name": 1}}]}},
            {"$unwind": "$volume_key"},
        ]
        if request.search is not None:
            pattern = literal_pattern(request.search)
            pipeline.append({"$match": {"$or": [{"series_key.search_text": {"$regex": pattern}},
                                                {"volume_key.search_name": {"$regex": pattern}}]}})
        pipeline += [
            {"$addFields": {"_no_order": {"$cond": [
                {"$eq": [{"$ifNull": ["$volume_key.group_order", None]}, None]}, 1, 0]}}},
            # Series by name in the asked direction; within a series, volumes in reading order.
            {"$sort": {f"series_key.{sort_title}": -1 if request.descending else 1, "series_id": 1,
                       "_no_order": 1, "volume_key.group_order": 1, "volume_id": 1}},
            page_stage(request.offset, request.limit, [
                {"$lookup": {"from": "volumes", "localField": "volume_id", "foreignField": "_id",
                             "as": "volume", "pipeline": [{"$project": VOLUME_FIELDS}]}},
                {"$unwind": "$volume"},
                {"$lookup": {"from": "series", "localField": "series_id", "foreignField": "_id",
                             "as": "series", "pipeline": [{"$project": SERIES_FIELDS}]}},
                {"$unwind": "$series"},
                {"$project": {"series_key": 0, "volume_key": 0, "_no_order": 0}},
            ]),
        ]
        found, total = await run_paged(self._users, pipeline, request.limit)
        return CollectionPage(items=[(CollectionItemRecord.of(item), VolumeRecord.of(item["volume"]),
                                      SeriesRecord.of(item["series"])) for item in found], total=total)
