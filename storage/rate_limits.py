"""Rate-limit counters in MongoDB, shared by every process of the service and kept across restarts.

Each key is one document `{_id: "<limit>:<key>", count, expires}`. An attempt is counted and
checked in one atomic update *before* the work it limits, so concurrent attempts can never pass
the limit together (counting after a check let 59 of 100 concurrent wrong passwords through a
limit of 10). A window starts at a key's first attempt and lasts `window_s`; a TTL index removes
expired documents, and the update itself restarts a window that has passed, so correctness never
waits for the TTL monitor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth.clock import utc_now
from storage.database import outside_request_transaction

COLLECTION = "rate_limits"
UPSERT_TRIES = 5
# The login-failure limits: per address and username (a key of login_key), and per address alone.
LOGIN = "login"
LOGIN_ADDRESS = "login-address"


def login_key(address: str, username: str) -> str:
    """The key of one username's failures from one address. A username holds no ':', so the
    username is what follows the key's last ':' (an IPv6 address holds some)."""
    return f"{address}:{username.lower()}"


async def clear_login_failures(db: AsyncDatabase[dict[str, Any]], username: str) -> int:
    """Ends every lockout of `username`, from every address (the operator's `unlock`); the number
    of addresses it was counted from. The per-address limits stay: they belong to no user."""
    suffix = re.escape(login_key("", username))
    result = await db[COLLECTION].delete_many({"_id": {"$regex": f"^{re.escape(LOGIN)}:.*{suffix}$"}})
    return result.deleted_count


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db[COLLECTION].create_index("expires", expireAfterSeconds=0, name="rate_limit_expiry")


@dataclass(frozen=True)
class Attempt:
    """One counted attempt: whether it is within the limit, and when it is not, the whole seconds
    until its window ends (what a 429's `Retry-After` says)."""

    allowed: bool
    retry_after: int = 0


class SharedWindowLimit:
    """At most `limit` attempts per key within a window of `window_s` seconds."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], name: str, limit: int, window_s: float,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._counters = db[COLLECTION]
        self.name = name
        self.limit = limit
        self.window = timedelta(seconds=window_s)
        self._clock = clock

    def _id(self, key: str) -> str:
        return f"{self.name}:{key}"

    async def attempt(self, key: str) -> Attempt:
        """Counts one attempt, allowed when it is within the limit. Counted at once, even inside
        a request's transaction that is rolled back afterwards."""
        async with outside_request_transaction(self._db):
            return await self._attempt(key)

    async def _attempt(self, key: str) -> Attempt:
        now = self._clock()
        live: dict[str, Any] = {"$gt": ["$expires", now]}  # false for a new or expired window
        for _ in range(UPSERT_TRIES):
            try:
                counted = await self._counters.find_one_and_update(
                    {"_id": self._id(key)},
                    [{"$set": {"count": {"$cond": [live, {"$add": ["$count", 1]}, 1]},
                               "expires": {"$cond": [live, "$expires", now + self.window]}}}],
                    projection={"count": 1, "expires": 1, "_id": 0},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # MongoDB: another first attempt created the counter, this one was not counted
            if counted is None:
                # SecantusDB answers some concurrent first attempts with no document, though it
                # counted them (measured: 21 of 150; counting again made 51 of 50): read the
                # count instead. It can only be higher than ours, so the limit errs strict.
                counted = await self._counters.find_one({"_id": self._id(key)}, {"count": 1, "expires": 1, "_id": 0})
            if counted is not None:
                if counted["count"] <= self.limit:
                    return Attempt(True)
                left = (counted["expires"] - now).total_seconds()
                return Attempt(False, max(1, math.ceil(left)))
        raise RuntimeError(f"rate limit {self.name}: the counter could not be written in {UPSERT_TRIES} tries")

    async def reset(self, key: str) -> None:
        async with outside_request_transaction(self._db):
            await self._counters.delete_one({"_id": self._id(key)})

    async def give_back(self, key: str) -> None:
        """Uncounts one attempt that turned out not to be a failure, and only that one: unlike
        `reset`, the window's other attempts stay counted."""
        async with outside_request_transaction(self._db):
            await self._counters.update_one(
                {"_id": self._id(key), "count": {"$gt": 0}, "expires": {"$gt": self._clock()}}, {"$inc": {"count": -1}})
