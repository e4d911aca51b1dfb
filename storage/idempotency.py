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

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.database import request_session

COLLECTION = "idempotency"
KEEP = timedelta(hours=24)


@dataclass(frozen=True)
class SavedAnswer:
    fingerprint: str  # of the request's method, path, query and body
    status: int
    body: str  # the answer's JSON text, replayed byte for byte
    session: str | None  # the hash of the session that sent it (a replay after logout checks it)
    created: datetime


class KeyTaken(Exception):
    """Another attempt with the same key saved its answer first."""


class IdempotencyStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._answers = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self._answers.create_index("created", expireAfterSeconds=int(KEEP.total_seconds()),
                                         name="idempotency_expiry")

    async def find(self, scope: str, key: str, now: datetime) -> SavedAnswer | None:
        found = await self._answers.find_one({"_id": {"u": scope, "k": key}, "created": {"$gt": now - KEEP}})
        if found is None:
            return None
        return SavedAnswer(fingerprint=found["fingerprint"], status=found["status"], body=found["body"],
                           session=found.get("session"), created=found["created"])

    async def save(self, scope: str, key: str, answer: SavedAnswer) -> None:
        """Inside the write's transaction, in one round trip: replaces an expired answer under the
        same key; a live one makes this raise DuplicateKeyError (another attempt with the key won)."""
        try:
            await self._answers.replace_one(
                {"_id": {"u": scope, "k": key}, "created": {"$lte": answer.created - KEEP}},
                {"fingerprint": answer.fingerprint, "status": answer.status, "body": answer.body,
                 "session": answer.session, "created": answer.created},
                upsert=True,
                session=request_session(),
            )
        except DuplicateKeyError:
            raise KeyTaken(key) from None
