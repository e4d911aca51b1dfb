"""Ratings, embedded in the user's document, and each series' exact rating aggregates.

A series keeps `rating_half_points` (the sum of its ratings times two, an integer, so sums are
exact) and `rating_count`. Every change to a user's rating is one compare-and-set: it applies
only if the stored rating is still the one the caller read, so the difference it makes is known
exactly; the series is then moved by that difference with `$inc`. Both writes are one
multi-document transaction, so a crash or a failed write between them changes neither, and
increments commute, so concurrent changes by any number of users add up to what the ratings say.
`recount` repairs drift from before transactions (or from hand edits), each series in a
transaction of its own, so it is safe while the service runs; with `repair=False` it only reports.

Not findAndModify's pre-image for the rating: on SecantusDB concurrent findAndModify calls outside
a transaction can return the same pre-image (measured: 50 concurrent calls, 19 distinct
pre-images), which double-counts. The change counter (storage.changes) is taken from a
findAndModify inside the transaction, where two writes of one document conflict and one starts
again (measured: 30 concurrent transactions, 30 distinct, consecutive numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from storage.changes import DEFAULT_RETENTION, RATING, SEQ_FIELD, Change, ChangeFeed, count, first_number
from storage.database import in_transaction
from storage.embedded_list import EmbeddedList, Feed, stored_fields
from storage.outcome import WriteOutcome
from storage.records import RatingRecord

# A user racing their own requests can make a compare-and-set miss; each miss means another
# write of that rating succeeded, so a few attempts always suffice outside pathological loops.
MAX_ATTEMPTS = 20



@dataclass(frozen=True)
class Drift:
    series_id: int
    stored_count: int
    stored_half_points: int
    true_count: int
    true_half_points: int


def half_points(rating: float) -> int:
    return round(rating * 2)


class RatingStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], changes: ChangeFeed | None = None) -> None:
        """`changes`: where rating writes leave their changes; `recount` (an operator command)
        writes none and may leave it out."""
        self._db = db
        self._users = db["users"]
        self._series = db["series"]
        changes = changes or ChangeFeed(db, DEFAULT_RETENTION)
        self._changes = changes
        self._ratings = EmbeddedList(db, "ratings", key="series_id", feed=Feed(changes, RATING))

    async def _move_series(self, series_id: int, half_points_change: int, count_change: int,
                           session: AsyncClientSession) -> None:
        if half_points_change or count_change:
            await self._series.update_one(
                {"_id": series_id},
                {"$inc": {"rating_half_points": half_points_change, "rating_count": count_change}},
                session=session,
            )

    async def add(self, user_id: str, series_id: int, rating: float, now: Any) -> WriteOutcome:
        entry = {"series_id": series_id, "rating": rating, "last_update": now}

        async def add_and_count(session: AsyncClientSession) -> WriteOutcome:
            if not await self._ratings.push_unique(user_id, series_id, entry, now, session=session):
                return WriteOutcome.CONFLICT
            await self._move_series(series_id, half_points(rating), 1, session)
            return WriteOutcome.DONE

        return await in_transaction(self._db, add_and_count, user_id=user_id)

    async def current(self, user_id: str, series_id: int, session: AsyncClientSession | None = None) -> float | None:
        found = await self._users.find_one(
            {"_id": user_id}, {"_id": 0, "ratings": {"$elemMatch": {"series_id": series_id}}}, session=session
        )
        entries = (found or {}).get("ratings") or []
        return float(entries[0]["rating"]) if entries else None

    async def _change(self, user_id: str, series_id: int, expected: float | None, update: dict[str, Any],
                      new_half_points: int | None, after: dict[str, Any] | None, now: Any,
                      unchanged: RatingRecord | None = None, last_change: int | None = None,
                      **options: Any) -> WriteOutcome:
        """In one transaction: applies `update` to the user's rating if it is still `expected`
        (read with the session; on a lost race it reads again), records the change (the rating
        becomes `after`, None: removed), then moves the series from the replaced rating to
        `new_half_points` (None: the rating is removed). With `unchanged` (a conditional
        request), only if the entry is still exactly that: no second attempt, but CHANGED."""

        async def change_and_move(session: AsyncClientSession) -> WriteOutcome:
            current = expected if unchanged is None else unchanged.rating
            for attempt in range(MAX_ATTEMPTS):
                if current is None:
                    return WriteOutcome.NOT_FOUND
                entry = stored_fields(unchanged) or {"rating": current}
                condition = {"_id": user_id, "ratings": {"$elemMatch": {**entry, "series_id": series_id}}}
                number: int | None = None
                if attempt == 0 and last_change is not None:
                    # The counter as the session read it: a plain update that finds it unchanged
                    # knows its change's number (findAndModify's pre-image costs 3-4 ms more on a
                    # large document). Another write since: the findAndModify below.
                    counter = {SEQ_FIELD: last_change} if last_change else {SEQ_FIELD: {"$in": [None, 0]}}
                    result = await self._users.update_one({**condition, **counter}, {**update, **count(1)},
                                                          session=session, **options)
                    number = last_change + 1 if result.matched_count else None
                if number is None:
                    # findAndModify answers the change counter as it was (storage.changes); the
                    # rating's own compare-and-set stays in the filter.
                    before = await self._users.find_one_and_update(
                        condition, {**update, **count(1)}, projection={"_id": 0, SEQ_FIELD: 1},
                        return_document=ReturnDocument.BEFORE, session=session, **options,
                    )
                    number = first_number(before) if before is not None else None
                if number is not None:
                    await self._changes.record(user_id, number,
                                               [Change(RATING, str(series_id), after)], now, session)
                    moved = (new_half_points if new_half_points is not None else 0) - half_points(current)
                    await self._move_series(series_id, moved, -1 if new_half_points is None else 0, session)
                    return WriteOutcome.DONE
                current = await self.current(user_id, series_id, session)
                if unchanged is not None:
                    return WriteOutcome.NOT_FOUND if current is None else WriteOutcome.CHANGED
            raise RuntimeError(f"rating of series {series_id} kept changing under {MAX_ATTEMPTS} attempts")

        return await in_transaction(self._db, change_and_move, user_id=user_id)

    async def update(self, user_id: str, series_id: int, rating: float, now: Any,
                     current: float | None, unchanged: RatingRecord | None = None,
                     last_change: int | None = None) -> WriteOutcome:
        """`last_change`: the user's change counter as the session read it (storage.changes)."""
        return await self._change(
            user_id, series_id, current,
            {"$set": {"ratings.$[mine].rating": rating, "ratings.$[mine].last_update": now}},
            half_points(rating), {"series_id": series_id, "rating": rating, "last_update": now}, now,
            unchanged, last_change, array_filters=[{"mine.series_id": series_id}],
        )

    async def delete(self, user_id: str, series_id: int, current: float | None, now: Any,
                     unchanged: RatingRecord | None = None, last_change: int | None = None) -> WriteOutcome:
        return await self._change(user_id, series_id, current, {"$pull": {"ratings": {"series_id": series_id}}},
                                  None, None, now, unchanged, last_change)

    async def true_totals(self, series_id: int | None = None,
                          session: AsyncClientSession | None = None) -> dict[int, tuple[int, int]]:
        """series id -> (count, half points), computed from every user's ratings (of one
        series, when `series_id` is given)."""
        having = {"ratings.series_id": series_id} if series_id is not None else {"ratings.0": {"$exists": True}}
        pipeline: list[dict[str, Any]] = [
            {"$match": having},
            {"$project": {"_id": 0, "ratings": 1}},
            {"$unwind": "$ratings"},
        ]
        if series_id is not None:
            pipeline.append({"$match": {"ratings.series_id": series_id}})
        pipeline.append({"$group": {"_id": "$ratings.series_id", "count": {"$sum": 1},
                                    "doubled": {"$sum": {"$multiply": ["$ratings.rating", 2]}}}})
        cursor = await self._users.aggregate(pipeline, session=session)
        return {row["_id"]: (int(row["count"]), round(row["doubled"])) async for row in cursor}

    async def _stored_totals(self, series_id: int | None = None,
                             session: AsyncClientSession | None = None) -> dict[int, tuple[int, int]]:
        query = {"_id": series_id} if series_id is not None else {}
        cursor = self._series.find(query, {"rating_count": 1, "rating_half_points": 1}, session=session)
        return {series["_id"]: (int(series.get("rating_count") or 0), int(series.get("rating_half_points") or 0))
                async for series in cursor}

    async def recount(self, *, repair: bool = True) -> list[Drift]:
        """Sets every series' aggregates to what the users' ratings say (only reports them, with
        `repair=False`); returns what differed.

        A first pass outside any transaction finds the series that look drifted. Each of them is
        then read (and repaired) in a transaction of its own: both reads see one snapshot, so a
        rating changed between the first pass and this one is not reported as drift, and if a
        rating of that series changes meanwhile, the transaction conflicts and runs again, so a
        concurrent increment is never overwritten."""
        truth = await self.true_totals()
        suspects = [series_id for series_id, stored in (await self._stored_totals()).items()
                    if stored != truth.get(series_id, (0, 0))]
        drift: list[Drift] = []
        for series_id in suspects:
            found = await in_transaction(self._db, partial(self._recount_one, series_id, repair=repair))
            if found is not None:
                drift.append(found)
        return drift

    async def _recount_one(self, series_id: int, session: AsyncClientSession, repair: bool) -> Drift | None:
        stored = (await self._stored_totals(series_id, session)).get(series_id)
        if stored is None:
            return None  # the series is gone
        true_count, true_half = (await self.true_totals(series_id, session)).get(series_id, (0, 0))
        if stored == (true_count, true_half):
            return None
        if not repair:
            return Drift(series_id, stored[0], stored[1], true_count, true_half)
        await self._series.update_one(
            {"_id": series_id}, {"$set": {"rating_count": true_count, "rating_half_points": true_half}},
            session=session,
        )
        return Drift(series_id, stored[0], stored[1], true_count, true_half)
