"""The owned volumes, embedded in the user's document as `collection` items.

Prices are stored as integer cents, so every sum is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from storage import collection_stats
from storage.catalog_keys import ORDER_ATTEMPTS, CatalogKeys, Keys
from storage.changes import COLLECTION_ITEM, ChangeFeed
from storage.embedded_list import Derived, EmbeddedList, Feed, stored_fields
from storage.outcome import WriteOutcome
from storage.records import CollectionItemRecord, SeriesRecord, StoredList, VolumeRecord

# What a collection answer shows of a volume and (as `series`, copied at import) of its series.
VOLUME_FIELDS: dict[str, int] = {
    field: 1 for field in ("name", "series_id", "language", "release_date", "pages", "nsfw", "nsfw18",
                           "aspect_ratio", "cover_path", "group_order", "series")
}


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
class Toggled:
    """What a toggle left: the volume in the collection (as the new item `item_id`) or not."""

    in_collection: bool
    item_id: str | None = None


# A toggle removes the volume's item or, if there was none, adds one; another write of the same
# volume between the two makes it start over, this many times at most (then `toggle` gives up).
TOGGLE_ATTEMPTS = 3


@dataclass(frozen=True)
class CollectionStats:
    total_items: int
    total_cents: int
    first_buy: str | None
    last_buy: str | None


def stats_expression(client: int) -> dict[str, Any]:
    """The four figures of `client`'s items, as the user's document keeps them
    (storage.collection_stats); for a document that keeps none yet, computed by the database
    from its items (the expression is lazy: a kept one costs a read of top-level fields)."""
    return {"$cond": [{"$eq": [{"$type": f"${collection_stats.FIELD}"}, "missing"]},
                      computed_stats_expression(client),
                      {"kept": f"${collection_stats.client_field(client)}"}]}


def client_items_expression(client: int, but: str | None = None) -> dict[str, Any]:
    """`client`'s items in the user's document (all but the item `but`), as a database expression."""
    mine: dict[str, Any] = {"$eq": ["$$this.client", client]}
    condition = mine if but is None else {"$and": [mine, {"$ne": ["$$this.item_id", but]}]}
    return {"$filter": {"input": {"$ifNull": ["$collection", []]}, "cond": condition}}


def computed_stats_expression(client: int) -> dict[str, Any]:
    """The four figures of `client`'s items, computed by the database from the user's document
    (read with the session): no item travels to the service."""
    mine = client_items_expression(client)

    def each(field: str) -> dict[str, Any]:
        return {"$map": {"input": "$$mine", "in": f"$$this.{field}"}}

    return {"$let": {"vars": {"mine": mine}, "in": {
        "total_items": {"$size": "$$mine"},
        "total_cents": {"$sum": each("price_cents")},
        # $min and $max of an array skip nulls: items without a date do not count.
        "first_buy": {"$min": each("buy_date")},
        "last_buy": {"$max": each("buy_date")},
    }}}


def stats_of(computed: dict[str, Any] | None) -> CollectionStats:
    """The figures as `stats_expression` brought them: kept (`{"kept": ...}`, None when the
    client has no item) or computed."""
    figures = computed or {}
    if "kept" in figures:
        kept = figures["kept"] or {}
        return CollectionStats(total_items=int(kept.get("items") or 0), total_cents=int(kept.get("cents") or 0),
                               first_buy=kept.get("first"), last_buy=kept.get("last"))
    return CollectionStats(total_items=int(figures.get("total_items") or 0),
                           total_cents=int(figures.get("total_cents") or 0),
                           first_buy=figures.get("first_buy"), last_buy=figures.get("last_buy"))


class CollectionStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], keys: CatalogKeys, changes: ChangeFeed) -> None:
        self._users = db["users"]
        self._volumes = db["volumes"]
        self._keys = keys
        self._items = EmbeddedList(db, "collection", key="item_id", feed=Feed(changes, COLLECTION_ITEM),
                                   derived=Derived({collection_stats.FIELD: 1}, self._stats_moved))

    async def _stats_moved(self, user_id: str, document: dict[str, Any], before: dict[str, Any] | None,
                           after: dict[str, Any] | None, session: AsyncClientSession) -> dict[str, dict[str, Any]]:
        """What an item's write does to the kept figures (storage.collection_stats)."""

        async def read_bounds(client: int, item_id: str) -> tuple[str | None, str | None]:
            # Computed by the database: no item travels to the service.
            dates = {"$map": {"input": client_items_expression(client, but=item_id), "in": "$$this.buy_date"}}
            found = await self._users.find_one({"_id": user_id}, {"_id": 0, "first": {"$min": dates},
                                                                 "last": {"$max": dates}}, session=session)
            return (found or {}).get("first"), (found or {}).get("last")

        return await collection_stats.moved(document.get(collection_stats.FIELD), before, after, read_bounds)

    async def add(self, user_id: str, volume: VolumeRecord, price_cents: int | None,
                  buy_date: str | None, now: Any) -> tuple[WriteOutcome, str | None]:
        """One conditional push: of concurrent adds of one volume, exactly one is stored."""
        item_id = str(ObjectId())
        item = {"item_id": item_id, "volume_id": volume.id, "series_id": volume.series_id,
                "client": volume.client, "price_cents": price_cents, "buy_date": buy_date, "added": now}
        if await self._items.push_unique(user_id, volume.id, item, now, unique_by="volume_id"):
            return WriteOutcome.DONE, item_id
        return WriteOutcome.CONFLICT, None

    async def toggle(self, user_id: str, volume: VolumeRecord, now: Any) -> Toggled | None:
        """Removes the volume's item if the user has one, else adds one as `add` does (no price,
        no date). Each step is one conditional write: of two toggles at once, one adds and the
        other removes, never two items. None if other writes of the volume kept coming between
        the two steps (each attempt lost a race)."""
        for _ in range(TOGGLE_ATTEMPTS):
            if await self._items.remove(user_id, volume.id, now, by="volume_id"):
                return Toggled(in_collection=False)
            outcome, item_id = await self.add(user_id, volume, None, None, now)
            if outcome is WriteOutcome.DONE:
                return Toggled(in_collection=True, item_id=item_id)
        return None

    async def is_18_plus(self, volume: VolumeRecord) -> bool:
        """Whether the volume or its series is flagged 18+; the series' flag from the catalog keys
        the process holds, as the public lists take it (no round trip once the series is known)."""
        if volume.nsfw18:
            return True
        keys = await self._keys.series([volume.series_id])
        return bool(getattr(keys.of.get(volume.series_id), "nsfw18", False))

    async def update(self, user_id: str, item_id: str, price_cents: int | None, buy_date: str | None,
                     now: Any, unchanged: CollectionItemRecord | None = None) -> WriteOutcome:
        """With `unchanged`, only if the item is still exactly that (else CHANGED)."""
        changed = await self._items.set_fields(user_id, item_id, {"price_cents": price_cents, "buy_date": buy_date},
                                               now, unchanged=stored_fields(unchanged))
        return WriteOutcome.DONE if changed else await self._items.why_missed(user_id, item_id, unchanged)

    async def delete(self, user_id: str, item_id: str, now: Any,
                     unchanged: CollectionItemRecord | None = None) -> WriteOutcome:
        if await self._items.remove(user_id, item_id, now, unchanged=stored_fields(unchanged)):
            return WriteOutcome.DONE
        return await self._items.why_missed(user_id, item_id, unchanged)

    async def item(self, user_id: str, item_id: str) -> CollectionItemRecord | None:
        """The user's item as stored now, or None."""
        found = await self._items.entry(user_id, item_id)
        return CollectionItemRecord.of(found) if found is not None else None

    async def page(self, user_id: str, request: CollectionRequest, items: StoredList) -> CollectionPage:
        """The client's `items` (read with the session), searched and ordered here with the
        catalog's keys from the process; then one read of the page's volumes.
        An item whose volume or series has left the catalog is neither counted nor shown."""
        mine = [item for item in items.stored if item.get("client") == request.client]
        for _ in range(ORDER_ATTEMPTS):
            series_keys = await self._keys.series(item["series_id"] for item in mine)
            volume_keys = await self._keys.volumes(item["volume_id"] for item in mine)
            ordered = order_collection(mine, series_keys, volume_keys, request)
            page = ordered[request.offset: request.offset + request.limit]
            # Each volume carries its series' card (copied at import): no join.
            found, current = await self._keys.read_current(self._volumes, [
                {"$match": {"_id": {"$in": [item["volume_id"] for item in page]}}},
                {"$project": VOLUME_FIELDS},
            ], min(series_keys.version, volume_keys.version))
            if current:
                break  # else an import changed the catalog since the keys were read: order again
        volumes = {d["_id"]: d for d in found}
        return CollectionPage(
            items=[(CollectionItemRecord.of(item), VolumeRecord.of(volumes[item["volume_id"]]),
                    SeriesRecord.of({"_id": item["series_id"], **volumes[item["volume_id"]]["series"]}))
                   for item in page if item["volume_id"] in volumes],
            total=len(ordered),
        )


def order_collection(items: list[dict[str, Any]], series_keys: Keys, volume_keys: Keys,
                     request: CollectionRequest) -> list[dict[str, Any]]:
    """Series by the title shown in the request's language, in its direction; within a series,
    volumes in reading order (those without one after), then by id. Searched: the series' name
    and aliases, and the volume's name."""
    known = [(item, series, volume) for item in items
             if (series := series_keys.of.get(item["series_id"])) is not None
             and (volume := volume_keys.of.get(item["volume_id"])) is not None]
    if request.search is not None:
        term = request.search.casefold()
        known = [entry for entry in known if entry[1].matches(term) or entry[2].matches(term)]
    known.sort(key=lambda entry: (entry[0]["series_id"], entry[2].group_order is None, entry[2].group_order or 0,
                                  entry[0]["volume_id"]))
    # Stable: within one title, the order above stays, in both directions.
    known.sort(key=lambda entry: entry[1].sort_title(request.language), reverse=request.descending)
    return [item for item, _, _ in known]
