"""The change feed of each user's own data: every write to a reading status, rating, collection
item, the settings or the avatar leaves one change, numbered in the order the writes were made,
so that an app that went offline asks for what it has not seen (`GET /user/changes`).

How the order is kept, also with several processes writing for one user at once: the user's
document holds a counter, `change_seq`, which the write of the entry itself increments, in the
same update (findAndModify, which answers the counter as it was: the change's number is one more).
The change is then inserted in the same transaction. Two transactions that write one user's
document conflict, and the later one starts again, so numbers are given in the order the writes
commit and a reader never sees number 7 before 6 has committed: nothing is missed, nothing seen
twice. A change and its write are one transaction: neither happens without the other.

Changes are kept for the retention (CHANGES_RETENTION_DAYS), each with its own expiry (a TTL
index removes it). A cursor whose next change is gone cannot be continued: the feed says so
(410) and the app reads the lists again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

READING_STATUS = "reading-status"
RATING = "rating"
COLLECTION_ITEM = "collection-item"
SETTINGS = "settings"
AVATAR = "avatar"
KINDS = (READING_STATUS, RATING, COLLECTION_ITEM, SETTINGS, AVATAR)
UPSERT = "upsert"
DELETE = "delete"
DEFAULT_RETENTION = timedelta(days=90)  # CHANGES_RETENTION_DAYS
# The counter in the user's document; absent until the first change (then 0 before it).
SEQ_FIELD = "change_seq"
COLLECTION = "changes"


def count(changes: int) -> dict[str, Any]:
    """The part of a user's document update that numbers `changes` changes."""
    return {"$inc": {SEQ_FIELD: changes}}


def first_number(before: dict[str, Any] | None) -> int:
    """The number of the first change a write makes, from the user's document as it was before
    the write (what findAndModify answers with ReturnDocument.BEFORE, `SEQ_FIELD` projected)."""
    return int((before or {}).get(SEQ_FIELD) or 0) + 1


@dataclass(frozen=True)
class Change:
    """One change as a write site describes it: which entry, and its state after (None: deleted)."""

    kind: str
    id: str
    entry: dict[str, Any] | None
    import_id: str | None = None

    @property
    def op(self) -> str:
        return DELETE if self.entry is None else UPSERT


@dataclass(frozen=True)
class StoredChange:
    seq: int
    kind: str
    id: str
    op: str
    at: datetime
    entry: dict[str, Any] | None
    import_id: str | None

    @classmethod
    def of(cls, document: dict[str, Any]) -> StoredChange:
        return cls(seq=document["seq"], kind=document["kind"], id=document["id"], op=document["op"],
                   at=document["at"], entry=document.get("entry"), import_id=document.get("import_id"))


@dataclass(frozen=True)
class FeedPage:
    changes: list[StoredChange]
    next: int  # the cursor to ask with next time: the last change's number, or the one asked with
    more: bool


class CursorGone(Exception):
    """The changes after the cursor have passed the retention: the app must read the lists again."""


class ChangeFeed:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], retention: timedelta) -> None:
        self._changes = db[COLLECTION]
        self._users = db["users"]
        self.retention = retention

    async def ensure_indexes(self) -> None:
        await self._changes.create_index([("user_id", 1), ("seq", 1)], unique=True, name="user_seq")
        await self._changes.create_index("expires", expireAfterSeconds=0, name="expires_ttl")

    async def record(self, user_id: str, first: int, changes: list[Change], now: datetime,
                     session: AsyncClientSession | None) -> None:
        """Stores `changes`, numbered from `first`, in the transaction of their write (`session`)."""
        if not changes:
            return
        expires = now + self.retention
        await self._changes.insert_many(
            [{"user_id": user_id, "seq": first + offset, "kind": change.kind, "id": change.id, "op": change.op,
              "at": now, "expires": expires, "entry": change.entry,
              **({"import_id": change.import_id} if change.import_id else {})}
             for offset, change in enumerate(changes)],
            ordered=True, session=session)

    async def page(self, user_id: str, since: int | None, limit: int, now: datetime) -> FeedPage:
        """The changes after `since` (None: from the oldest kept), oldest first, at most `limit`.
        Raises CursorGone when the change right after `since` is no longer kept (expired, whether
        or not the TTL monitor has removed it yet), or when `since` is past the user's counter
        (a cursor of a database restored from an older backup): the app must read the lists."""
        changes, more = await self._after(user_id, since, limit, now)
        if changes and (since is None or changes[0].seq == since + 1):
            return FeedPage(changes=changes, next=changes[-1].seq, more=more)
        # Nothing new, or a gap. The counter is read, then the changes again: a write that
        # committed between the first read and the counter's is then seen (a change commits with
        # the counter that numbers it), and an empty page's cursor is never ahead of what it saw.
        latest = await self.latest(user_id)
        changes, more = await self._after(user_id, since, limit, now)
        if since is not None:
            continues = changes[0].seq == since + 1 if changes else since == latest
            if since > latest or not continues:
                raise CursorGone(user_id)
        if changes:
            return FeedPage(changes=changes, next=changes[-1].seq, more=more)
        return FeedPage(changes=[], next=since if since is not None else latest, more=False)

    async def _after(self, user_id: str, since: int | None, limit: int,
                     now: datetime) -> tuple[list[StoredChange], bool]:
        query: dict[str, Any] = {"user_id": user_id, "expires": {"$gt": now}}
        if since is not None:
            query["seq"] = {"$gt": since}
        found = await self._changes.find(query, {"_id": 0, "user_id": 0, "expires": 0}) \
            .sort("seq", 1).limit(limit + 1).to_list(length=limit + 1)
        return [StoredChange.of(document) for document in found[:limit]], len(found) > limit

    async def latest(self, user_id: str) -> int:
        """The number of the user's last change (0 before the first)."""
        found = await self._users.find_one({"_id": user_id}, {"_id": 0, SEQ_FIELD: 1})
        return int((found or {}).get(SEQ_FIELD) or 0)
