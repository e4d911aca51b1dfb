"""The collection's figures per client (items, money spent, first and last purchase), kept in the
user's document as top-level fields by the writes that change them, as the series keep their
rating aggregates: `GET /user/collection/stats/general` reads them instead of computing them
over every item (13 ms for 500 items, where a read of top-level fields costs 3).

`collection_stats.<client>`: `{items, cents, first, last}` (`first`/`last` absent when no item
of the client has a date). The field exists (`{}` at least) once it is kept: a user registered
before it has none, and the read computes the figures as before (`storage.collection
.stats_expression`) until `server.py recount-collection-stats` stores them; until then a write
leaves it absent too, since a change counted on top of nothing would be wrong.

Counts and cents move by `$inc`: exact, and commutative with any other write. A purchase date
moves the bounds by `$min`/`$max`; an item leaving a bound (deleted, or its date changed) takes
the client's dates from the list in the write's transaction, and the bound is set again from
them: only those writes read the list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

FIELD = "collection_stats"


def client_field(client: int) -> str:
    return f"{FIELD}.{client}"


def figures_of(items: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every client's figures, computed from a whole list of items (stored fields). Linear in
    the items: callers run it off the event loop for a large list."""
    figures: dict[str, dict[str, Any]] = {}
    for item in items:
        mine = figures.setdefault(str(item["client"]), {"items": 0, "cents": 0})
        mine["items"] += 1
        mine["cents"] += item.get("price_cents") or 0
        date = item.get("buy_date")
        if date is not None:
            mine["first"] = min(mine.get("first", date), date)
            mine["last"] = max(mine.get("last", date), date)
    return figures


# The first and last purchase dates of a client's items other than one (the client, the item's
# id), as the write's transaction reads them before the write; None: no such date.
ReadBounds = Callable[[int, str], Awaitable[tuple[str | None, str | None]]]


async def moved(kept: dict[str, Any] | None, before: dict[str, Any] | None, after: dict[str, Any] | None,
                read_bounds: ReadBounds) -> dict[str, dict[str, Any]]:
    """The update operators that move the figures from `before` to `after`, one item as stored
    (added: `before` None; deleted: `after` None; an update keeps its client). `kept`: the
    user's stored figures as the write's transaction read them (None: not kept yet, nothing
    moves). `read_bounds` is called only when the item held a bound that its write takes
    away."""
    if kept is None:
        return {}
    if after is None and before is not None and (kept.get(str(before["client"])) or {}).get("items") == 1:
        # The client's last item: its figures go, as a computation over the items has none.
        return {"$unset": {client_field(before["client"]): ""}}
    inc: dict[str, int] = {}
    for item, sign in ((before, -1), (after, 1)):
        if item is not None:
            field = client_field(item["client"])
            inc[f"{field}.items"] = inc.get(f"{field}.items", 0) + sign
            inc[f"{field}.cents"] = inc.get(f"{field}.cents", 0) + sign * (item.get("price_cents") or 0)
    update: dict[str, dict[str, Any]] = {"$inc": inc} if inc else {}
    old_date = (before or {}).get("buy_date")
    new_date = (after or {}).get("buy_date")
    if before is not None and old_date is not None and old_date != new_date:
        bounds = kept.get(str(before["client"])) or {}
        if old_date in (bounds.get("first"), bounds.get("last")):
            # The item held a bound: both are set again from the client's dates after the write.
            others = [date for date in await read_bounds(before["client"], before["item_id"]) if date is not None]
            dates = others + ([new_date] if new_date is not None else [])
            field = client_field(before["client"])
            if dates:
                update["$set"] = {f"{field}.first": min(dates), f"{field}.last": max(dates)}
            else:
                update["$unset"] = {f"{field}.first": "", f"{field}.last": ""}
            return update
    if after is not None and new_date is not None:
        update["$min"] = {f"{client_field(after['client'])}.first": new_date}
        update["$max"] = {f"{client_field(after['client'])}.last": new_date}
    return update


# A user whose list changes between the recount's read and its write is read again, this often.
_RECOUNT_ATTEMPTS = 3


async def recount(db: AsyncDatabase[dict[str, Any]], *, repair: bool = True) -> list[str]:
    """The ids of the users whose kept figures differ from what their items say, or who keep
    none yet; with `repair`, stores the right ones. One user's document at a time (an operator
    command: it reads every user). A write of the list between the read and the store moves its
    revision, so the store, conditional on the revision read, matches nothing: read again."""
    users = db["users"]
    differ: list[str] = []
    async for document in users.find({}, {"_id": 1}).sort("_id", 1):
        for _ in range(_RECOUNT_ATTEMPTS):
            found = await users.find_one({"_id": document["_id"]},
                                         {"collection": 1, FIELD: 1, "revisions.collection": 1})
            if found is None:
                break  # deleted meanwhile
            right = figures_of(found.get("collection") or [])
            if found.get(FIELD) == right:
                break
            if differ[-1:] != [found["_id"]]:
                differ.append(found["_id"])
            if not repair:
                break
            revision = (found.get("revisions") or {}).get("collection")
            stored = await users.update_one({"_id": found["_id"], "revisions.collection": revision},
                                            {"$set": {FIELD: right}})
            if stored.matched_count:
                break
    return differ
