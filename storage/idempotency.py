"""The answers of writes sent with an Idempotency-Key, kept for 24 hours so that a retry gets the
first answer instead of doing the write again.

One document per user and key: `{_id: {u: <user id or route>, k: <key>}, fingerprint, status,
body, session, created}`. A write's answer is saved inside the write's own transaction (see
`storage.database.request_transaction`): the answer exists exactly when the write does, so a
retry after a crash or a 503 finds it whenever the first attempt took effect. A TTL index removes
answers older than a day; a lookup ignores them already, so correctness never waits for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.database import request_session

COLLECTION = "idempotency"
KEEP = timedelta(hours=24)


@dataclass(frozen=True)
class SavedAnswer:
    fingerprint: str  # an HMAC of the request's method, path, query and body (never a bare hash of a password)
    status: int | None  # None: claimed by an attempt still under way (writes outside a transaction)
    body: str  # the answer's JSON text, replayed byte for byte
    session: str | None  # the hash of the session that sent it (a replay after logout checks it)
    created: datetime

    @property
    def pending(self) -> bool:
        return self.status is None


class KeyTaken(Exception):
    """Another attempt with the same key saved its answer first."""


class IdempotencyStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._answers = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._answers.create_index("created", expireAfterSeconds=int(KEEP.total_seconds()),
                                         name="idempotency_expiry")

    async def find(self, scope: str, key: str, now: datetime) -> SavedAnswer | None:
        found = await self._answers.find_one({"_id": {"u": scope, "k": key}, "created": {"$gt": now - KEEP}},
                                             session=request_session())
        if found is None:
            return None
        return SavedAnswer(fingerprint=found["fingerprint"], status=found.get("status"), body=found.get("body", ""),
                           session=found.get("session"), created=found["created"])

    async def claim(self, scope: str, key: str, claim: SavedAnswer, now: datetime) -> SavedAnswer | None:
        """For a write that cannot be in a transaction: marks the key as taken by this attempt
        (`claim`, pending) before it writes. None when this attempt has it; else what holds it."""
        for _ in range(3):  # the holder may give its claim back between the two steps
            try:
                await self.save(scope, key, claim)
                return None
            except KeyTaken:
                held = await self.find(scope, key, now)
                if held is not None:
                    return held
        raise KeyTaken(key)

    async def release(self, scope: str, key: str, claim: SavedAnswer) -> None:
        """Gives back a claim whose write failed (a retry writes again), or one abandoned by a
        process that died (older than any write takes), only if it is still that claim."""
        await self._answers.delete_one({"_id": {"u": scope, "k": key}, "status": None, "created": claim.created})

    async def save(self, scope: str, key: str, answer: SavedAnswer, replacing: SavedAnswer | None = None) -> None:
        """Inside the write's transaction, in one round trip: replaces an expired answer under the
        same key (or `replacing`, this attempt's own claim); a live one makes this raise KeyTaken
        (another attempt with the key won)."""
        replaceable: dict[str, object] = ({"status": None, "created": replacing.created} if replacing is not None
                                          else {"created": {"$lte": answer.created - KEEP}})
        try:
            await self._answers.replace_one(
                {"_id": {"u": scope, "k": key}, **replaceable},
                {"fingerprint": answer.fingerprint, "status": answer.status, "body": answer.body,
                 "session": answer.session, "created": answer.created},
                upsert=True,
                session=request_session(),
            )
        except DuplicateKeyError:
            raise KeyTaken(key) from None
