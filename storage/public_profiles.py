"""Public profiles: a user found by slug, with what others may see of their lists.

One read of the user (from `usernames`, by the slug, which is the lower-cased name). Private entries are dropped here, in the service,
before anything counts or orders them: a `$filter` in a find projection measured six times
slower on SecantusDB than the whole list (docs/design.md, "What we measured on SecantusDB"). Notes and prices are dropped
too. Which series and volumes are 18+ comes from the catalog keys the process holds."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from auth.permissions import is_banned
from storage.catalog_keys import CatalogKeys
from storage.reading_stats import ReadingStats, reading_stats, types_from
from storage.records import StoredList, UserRecord
from workers import off_the_loop

_PROFILE = {"username": 1, "slug": 1, "registered": 1, "age_verified": 1, "roles": 1, "settings": 1,
            "profile_image": 1}


@dataclass(frozen=True)
class PublicLists:
    user: UserRecord
    statuses: StoredList  # the public ones, without notes
    collection: StoredList  # every item, without prices; empty unless asked for
    nsfw18_series: frozenset[int]  # of those, the series and volumes flagged 18+
    nsfw18_volumes: frozenset[int]

    @property
    def has_nsfw18(self) -> bool:
        """Whether any entry is 18+: only then does the viewer matter."""
        return bool(self.nsfw18_series or self.nsfw18_volumes)

    def without_nsfw18(self) -> PublicLists:
        """The lists an anonymous viewer (or one who has not chosen to see 18+) may see."""
        if not self.has_nsfw18:
            return self
        return PublicLists(
            self.user, StoredList("statuses", [e for e in self.statuses.stored
                                               if e["series_id"] not in self.nsfw18_series]),
            StoredList("collection", [i for i in self.collection.stored if i["series_id"] not in self.nsfw18_series
                                      and i["volume_id"] not in self.nsfw18_volumes]),
            frozenset(), frozenset())


class PublicProfiles:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], keys: CatalogKeys) -> None:
        self._usernames = db["usernames"]
        self._keys = keys

    async def find(self, slug: str, *, collection: bool = False) -> PublicLists | None:
        """None for no such user, and for a banned one (their profile is gone while banned)."""
        projection = {**_PROFILE, "statuses": 1, **({"collection": 1} if collection else {})}
        # A slug is the lower-cased name, which `usernames` is keyed by: one aggregation from the
        # name to its user, targeted by `_id` at each step, so that it stays one round trip and
        # touches one shard of each collection (docs/scale-out.md).
        found = await (await self._usernames.aggregate([
            {"$match": {"_id": slug}},
            {"$lookup": {"from": "users", "localField": "user_id", "foreignField": "_id", "as": "user"}},
            {"$unwind": "$user"},
            {"$replaceRoot": {"newRoot": "$user"}},
            {"$project": projection},
        ])).to_list(length=1)
        document = found[0] if found else None
        if document is None or is_banned(document.get("roles") or ()):
            return None
        statuses = [{key: value for key, value in entry.items() if key != "notes"}
                    for entry in document.get("statuses") or [] if entry.get("visibility") == "public"]
        items = [{key: value for key, value in item.items() if key != "price_cents"}
                 for item in document.get("collection") or []] if collection else []
        series_ids = {e["series_id"] for e in statuses} | {i["series_id"] for i in items}
        volume_ids = {i["volume_id"] for i in items}
        # `Keys.of` is the process's whole table: only these lists' ids are looked at.
        series, volumes = await self._keys.series(series_ids), await self._keys.volumes(volume_ids)
        return PublicLists(UserRecord.of(document), StoredList("statuses", statuses), StoredList("collection", items),
                           frozenset(i for i in series_ids if getattr(series.of.get(i), "nsfw18", False)),
                           frozenset(i for i in volume_ids if getattr(volumes.of.get(i), "nsfw18", False)))

    async def stats(self, lists: PublicLists, pool: Executor) -> ReadingStats:
        """The statistics of the public statuses `lists` holds, each series' type from the
        catalog keys the process holds. Counted in `pool`: 18 ms for 20,000 statuses."""
        keys = await self._keys.series(lists.statuses.series_ids())
        return await off_the_loop(pool, reading_stats, lists.statuses.stored, types_from(keys))
