"""Ratings, embedded in the user's document, and each series' exact rating aggregates.

A series keeps `rating_half_points` (the sum of its ratings times two, an integer, so sums are
exact) and `rating_count`. Every change to a user's rating is one atomic compare-and-set: it
applies only if the stored rating is still the one the caller read, so the difference it makes is
known exactly; the series is then moved by that difference with `$inc`. Increments commute, so
concurrent changes by any number of users add up to what the ratings say. The one gap is a crash
between the two writes; `recount` finds and repairs such drift.

Not findAndModify with the pre-image: on SecantusDB concurrent findAndModify calls can return the
same pre-image (measured: 50 concurrent calls, 19 distinct pre-images), which double-counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from storage.embedded_list import EmbeddedList
from storage.outcome import WriteOutcome

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
    def __init__(self, db: AsyncDatabase) -> None:
        self._users = db["users"]
        self._series = db["series"]

    async def _move_series(self, series_id: int, half_points_change: int, count_change: int) -> None:
        if half_points_change or count_change:
            await self._series.update_one(
                {"_id": series_id},
                {"$inc": {"rating_half_points": half_points_change, "rating_count": count_change}},
            )

    async def add(self, user_id: str, series_id: int, rating: float, now: Any) -> WriteOutcome:
        entry = {"series_id": series_id, "rating": rating, "last_update": now}
        if not await EmbeddedList(self._users, "ratings", key="series_id").push_unique(user_id, series_id, entry):
            return WriteOutcome.CONFLICT
        await self._move_series(series_id, half_points(rating), 1)
        return WriteOutcome.DONE

    async def current(self, user_id: str, series_id: int) -> float | None:
        found = await self._users.find_one(
            {"_id": user_id}, {"_id": 0, "ratings": {"$elemMatch": {"series_id": series_id}}}
        )
        entries = (found or {}).get("ratings") or []
        return float(entries[0]["rating"]) if entries else None

    async def _compare_and_set(self, user_id: str, series_id: int, expected: float | None,
                               update: dict[str, Any], **options: Any) -> float | None:
        """Applies `update` if the stored rating is `expected` (the caller read it with the
        session); on a lost race, reads again and retries. Returns the rating it replaced, or
        None when there is none."""
        for _ in range(MAX_ATTEMPTS):
            if expected is None:
                return None
            result = await self._users.update_one(
                {"_id": user_id, "ratings": {"$elemMatch": {"series_id": series_id, "rating": expected}}},
                update, **options,
            )
            if result.matched_count:
                return expected
            expected = await self.current(user_id, series_id)
        raise RuntimeError(f"rating of series {series_id} kept changing under {MAX_ATTEMPTS} attempts")

    async def update(self, user_id: str, series_id: int, rating: float, now: Any,
                     current: float | None) -> WriteOutcome:
        previous = await self._compare_and_set(
            user_id, series_id, current,
            {"$set": {"ratings.$[mine].rating": rating, "ratings.$[mine].last_update": now}},
            array_filters=[{"mine.series_id": series_id}],
        )
        if previous is None:
            return WriteOutcome.NOT_FOUND
        await self._move_series(series_id, half_points(rating) - half_points(previous), 0)
        return WriteOutcome.DONE

    async def delete(self, user_id: str, series_id: int, current: float | None) -> WriteOutcome:
        previous = await self._compare_and_set(
            user_id, series_id, current, {"$pull": {"ratings": {"series_id": series_id}}}
        )
        if previous is None:
            return WriteOutcome.NOT_FOUND
        await self._move_series(series_id, -half_points(previous), -1)
        return WriteOutcome.DONE

    async def true_totals(self) -> dict[int, tuple[int, int]]:
        """series id -> (count, half points), computed from every user's ratings."""
        pipeline = [
            {"$match": {"ratings.0": {"$exists": True}}},
            {"$project": {"_id": 0, "ratings": 1}},
            {"$unwind": "$ratings"},
            {"$group": {"_id": "$ratings.series_id", "count": {"$sum": 1},
                        "doubled": {"$sum": {"$multiply": ["$ratings.rating", 2]}}}},
        ]
        cursor = await self._users.aggregate(pipeline)
        return {row["_id"]: (int(row["count"]), round(row["doubled"])) async for row in cursor}

    async def recount(self) -> list[Drift]:
        """Sets every series' aggregates to what the users' ratings say; returns what differed."""
        truth = await self.true_totals()
        drift: list[Drift] = []
        cursor = self._series.find({}, {"rating_count": 1, "rating_half_points": 1})
        async for series in cursor:
            stored = (int(series.get("rating_count") or 0), int(series.get("rating_half_points") or 0))
            true_count, true_half = truth.get(series["_id"], (0, 0))
            if stored != (true_count, true_half):
                drift.append(Drift(series["_id"], stored[0], stored[1], true_count, true_half))
        if drift:
            await self._series.bulk_write([
                UpdateOne({"_id": d.series_id},
                          {"$set": {"rating_count": d.true_count, "rating_half_points": d.true_half_points}})
                for d in drift
            ], ordered=False)
        return drift
