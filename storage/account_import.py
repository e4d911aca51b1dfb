"""Importing an account file into the signed-in user's lists: planned against what the account
holds (a dry run stops there), applied in one transaction.

Entries are matched by series (statuses, ratings) and by volume (the collection). An entry the
account lacks is added; one it has with other values is replaced (`replace`) or left alone
(`keep`); entries only the account has stay. An entry whose series or volume is not in the
catalog is reported and skipped. Series and client of a collection item, and the client of a
status, are taken from the catalog, not from the file.

Applying reads the lists and writes them back, and moves the rating aggregates of the series
whose rating it adds or changes, in one transaction: all of it or none of it, and a concurrent
write to the user's document makes the transaction run again on the new lists.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from storage import collection_stats
from storage.changes import (
    COLLECTION_ITEM,
    HISTORY_FIELD,
    RATING,
    READING_STATUS,
    SEQ_FIELD,
    SETTINGS,
    Change,
    ChangeFeed,
    first_number,
    history_counters,
    numbered,
)
from storage.database import in_transaction
from storage.embedded_list import revision_field, too_full_to_add
from storage.list_merge import ListOutcome, Merged, MergeRule, merge_entries
from storage.outcome import ListsFull
from storage.ratings import half_points
from storage.records import CollectionItemRecord, RatingRecord, StatusRecord
from workers import off_the_loop


@dataclass(frozen=True)
class IncomingAccount:
    statuses: list[StatusRecord]
    ratings: list[RatingRecord]
    collection: list[CollectionItemRecord]
    settings: dict[str, Any]  # stored keys and values, already valid
    may_rate: bool
    # A setting this user may not choose (the 18+ mode without age verification), by key.
    refused_setting: Callable[[str, Any, bool], bool] = lambda key, value, age_verified: False


@dataclass
class ImportOutcome:
    statuses: ListOutcome
    ratings: ListOutcome
    collection: ListOutcome
    settings: ListOutcome


class AccountImport:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], pool: Executor, changes: ChangeFeed) -> None:
        self._db = db
        self._changes = changes
        self._pool = pool  # the merges and the size check grow with the lists: the service's input pool
        self._users = db["users"]
        self._series = db["series"]
        self._volumes = db["volumes"]

    async def run(self, user_id: str, incoming: IncomingAccount, *, rule: MergeRule,
                  apply: bool) -> ImportOutcome | None:
        """None when the user does not exist. Catalog entries are never removed by the service,
        so the catalog is read once, outside the transaction."""
        series_clients = await self._known(self._series, {s.series_id for s in incoming.statuses}
                                           | {r.series_id for r in incoming.ratings}, "client")
        volumes = await self._known(self._volumes, {i.volume_id for i in incoming.collection}, "series_id", "client")

        async def plan_and_write(session: AsyncClientSession | None) -> ImportOutcome | None:
            # The whole document: the size check of `_write` measures what the lists are added to.
            stored = await self._users.find_one({"_id": user_id}, session=session)
            if stored is None:
                return None
            # Three lists of up to 20,000 entries merged, and the result measured: off the loop.
            plan = await off_the_loop(self._pool, self._plan, stored, incoming, series_clients, volumes, rule, apply)
            if apply:
                await self._write(user_id, stored, plan, utc_now(), session)
            return plan.outcome

        if not apply:
            return await plan_and_write(None)
        return await in_transaction(self._db, plan_and_write, user_id=user_id)

    async def _known(self, collection: Any, ids: set[int], *fields: str) -> dict[int, tuple[Any, ...]]:
        found: dict[int, tuple[Any, ...]] = {}
        ordered = sorted(ids)
        for start in range(0, len(ordered), 1000):
            cursor = collection.find({"_id": {"$in": ordered[start:start + 1000]}}, dict.fromkeys(fields, 1))
            async for document in cursor:
                found[document["_id"]] = tuple(document.get(name) for name in fields)
        return found

    def _plan(self, stored: dict[str, Any], incoming: IncomingAccount, series_clients: dict[int, tuple[Any, ...]],
              volumes: dict[int, tuple[Any, ...]], rule: MergeRule, measure: bool) -> _Plan:
        """Pure, for a worker. `measure`: whether the document with the merged lists is too large
        to store (for an apply; a dry run does not pay for encoding it)."""
        statuses = [{**asdict(s), "client": series_clients[s.series_id][0]} for s in incoming.statuses
                    if s.series_id in series_clients]
        merged_statuses = merge_entries(stored.get("statuses") or [], statuses, "series_id", rule)
        merged_statuses.outcome.unknown = sorted({s.series_id for s in incoming.statuses} - set(series_clients))

        rateable = [r for r in incoming.ratings if r.series_id in series_clients] if incoming.may_rate else []
        merged_ratings = merge_entries(stored.get("ratings") or [], (asdict(r) for r in rateable), "series_id", rule)
        merged_ratings.outcome.unknown = sorted({r.series_id for r in incoming.ratings} - set(series_clients))
        merged_ratings.outcome.refused = 0 if incoming.may_rate else len(incoming.ratings)

        held_ids = {item["item_id"] for item in stored.get("collection") or []}
        items = []
        for item in incoming.collection:
            if item.volume_id not in volumes:
                continue
            series_id, client = volumes[item.volume_id]
            # The file's item id, unless another item of the account has it already.
            item_id = item.item_id if item.item_id not in held_ids else str(ObjectId())
            held_ids.add(item_id)
            items.append({**asdict(item), "item_id": item_id, "series_id": series_id, "client": client})
        current_items = stored.get("collection") or []
        merged_items = merge_entries(current_items, items, "volume_id", rule, ignored=("item_id",))
        # A replaced item keeps the id the account knows it by.
        ids_by_volume = {item["volume_id"]: item["item_id"] for item in current_items}
        merged_items.entries = [{**item, "item_id": ids_by_volume.get(item["volume_id"], item["item_id"])}
                                for item in merged_items.entries]
        merged_items.outcome.unknown = sorted({i.volume_id for i in incoming.collection} - set(volumes))

        age_verified = bool(stored.get("age_verified"))
        settings = ListOutcome()
        current_settings = dict(stored.get("settings") or {})
        changes: dict[str, Any] = {}
        for key, value in incoming.settings.items():
            if incoming.refused_setting(key, value, age_verified):
                settings.refused += 1
            elif key not in current_settings:
                settings.add += 1
                changes[key] = value
            elif current_settings[key] == value:
                settings.unchanged += 1
            elif rule(current_settings, {key: value}).get(key) == value:
                settings.change += 1
                changes[key] = value
            else:
                settings.kept += 1
        too_full = measure and too_full_to_add({**stored, "statuses": merged_statuses.entries,
                                                "ratings": merged_ratings.entries, "collection": merged_items.entries})
        # What the change feed records of it (storage.changes): each entry added or replaced.
        feed = [Change(READING_STATUS, str(c.key), c.after, before=c.before) for c in merged_statuses.changes
                if c.action in ("add", "update")]
        feed += [Change(RATING, str(c.key), c.after) for c in merged_ratings.changes if c.action in ("add", "update")]
        for c in merged_items.changes:
            if c.action in ("add", "update"):
                kept_id = ids_by_volume.get(c.after["volume_id"], c.after["item_id"])
                feed.append(Change(COLLECTION_ITEM, str(kept_id), {**c.after, "item_id": kept_id}))
        if changes:
            feed.append(Change(SETTINGS, SETTINGS, {**current_settings, **changes}))
        return _Plan(merged_statuses, merged_ratings, merged_items, changes,
                     ImportOutcome(merged_statuses.outcome, merged_ratings.outcome, merged_items.outcome, settings),
                     too_full, feed, history_counters(feed))

    async def _write(self, user_id: str, stored: dict[str, Any], plan: _Plan, now: datetime,
                     session: AsyncClientSession | None) -> None:
        lists = {"statuses": plan.statuses.entries, "ratings": plan.ratings.entries,
                 "collection": plan.collection.entries}
        if plan.too_full:
            raise ListsFull(user_id)
        # The collection's figures from the whole new list: also what starts keeping them for a
        # user registered before they were kept (storage.collection_stats).
        figures = await off_the_loop(self._pool, collection_stats.figures_of, plan.collection.entries)
        before = await self._users.find_one_and_update(
            {"_id": user_id},
            # Counted as a write of each list, so that a MAL import that read one before cannot
            # write over it (storage.status_import); and numbering its changes.
            {"$set": {**lists, collection_stats.FIELD: figures,
                      **{f"settings.{key}": value for key, value in plan.settings.items()}},
             "$inc": {**{revision_field(name): 1 for name in lists}, SEQ_FIELD: len(plan.feed), **plan.counters}},
            projection={"_id": 0, SEQ_FIELD: 1, HISTORY_FIELD: 1}, session=session)
        feed = await off_the_loop(self._pool, numbered, plan.feed, before)
        await self._changes.record(user_id, first_number(before), feed, now, session)
        moves = _rating_moves(stored.get("ratings") or [], plan.ratings.entries)
        if moves:
            await self._series.bulk_write(moves, ordered=False, session=session)


@dataclass
class _Plan:
    statuses: Merged
    ratings: Merged
    collection: Merged
    settings: dict[str, Any]  # the settings to write
    outcome: ImportOutcome
    too_full: bool  # the document with these lists is past the size at which lists stop growing
    feed: list[Change]  # the changes the change feed records
    counters: dict[str, int]  # the `$inc` of their entries' own counters (storage.changes)


def _rating_moves(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[UpdateOne]:
    """How each series' aggregates move from the ratings `before` to the ratings `after`."""
    old: dict[Hashable, int] = {r["series_id"]: half_points(r["rating"]) for r in before}
    moves = []
    for rating in after:
        new = half_points(rating["rating"])
        previous = old.get(rating["series_id"])
        if previous is None:
            moves.append(UpdateOne({"_id": rating["series_id"]}, {"$inc": {"rating_half_points": new,
                                                                          "rating_count": 1}}))
        elif previous != new:
            moves.append(UpdateOne({"_id": rating["series_id"]}, {"$inc": {"rating_half_points": new - previous}}))
    return moves
