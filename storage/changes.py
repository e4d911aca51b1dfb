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

A reading status's changes are also its history (`GET /user/reading-status/id/:id/history`):
they carry the entry before and the fields that changed, and a number of their own per entry
(`n`, from a second counter in the user's document, `history_n.<series id>`, incremented in the
same update). They are kept by count, not by time: the newest STATUS_HISTORY_LIMIT of each entry
(200 by default); a write whose number passes the limit takes what falls out of the history,
in its transaction. What falls out stays a change of the feed, until its retention like every
other change: the feed keeps by time, whatever the history keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import bson
from pymongo import IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.cursor import AsyncCursor
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
# Each reading status's own counter of changes: `history_n.<series id>`.
HISTORY_FIELD = "history_n"
COLLECTION = "changes"
DEFAULT_HISTORY_LIMIT = 200  # STATUS_HISTORY_LIMIT
# What a page of the feed or of a history holds at most, in stored bytes of its changes (at least
# one change): its answer is a few times that (JSON escapes), whatever `limit` asks.
PAGE_BYTES = 1024 * 1024


# The index of each user's changes by number, and the index of each entry's changes by its own
# number (a status's history). Queries never name them (`hint`): on SecantusDB a named index costs
# a pass over the whole collection (measured: 0.5 s for one change beside 40,000, 1 ms without),
# so each query is shaped for the planner to choose its index alone: only conditions on the
# index's fields (an extra condition, such as on the expiry, made it scan every user's changes).
_BY_NUMBER = "user_seq"
_BY_ENTRY = "entry_numbers"
# Its first form, partial (only changes with a number of their own): the planner passed it by.
_RETIRED_INDEXES = ("entry_history",)


# A history's change is found by its `_id` when it falls out (see ChangeFeed.record): at most this
# many at once (SecantusDB's `$in` grows with the square of its list).
_FALLEN_AT_ONCE = 25


def history_step_id(user_id: str, kind: str, entry_id: str, n: int) -> str:
    """The `_id` of an entry's `n`th change (only entries with a history): known without a query."""
    return f"{user_id}:{kind}:{entry_id}:{n}"


def history_counter(entry_id: str) -> str:
    return f"{HISTORY_FIELD}.{entry_id}"


def history_number(before: dict[str, Any] | None, entry_id: str) -> int:
    """The number of an entry's next change, from the user's document before the write (with
    `history_counter(entry_id)` projected)."""
    return int(((before or {}).get(HISTORY_FIELD) or {}).get(entry_id) or 0) + 1


def history_counters(changes: list[Change]) -> dict[str, int]:
    """The `$inc` of the entry counters a rewrite's changes need (those of reading statuses).
    Linear in the changes: callers run it off the event loop for an import."""
    return {history_counter(change.id): 1 for change in changes if change.kind == READING_STATUS}


def numbered(changes: list[Change], before: dict[str, Any] | None) -> list[Change]:
    """`changes` with each reading status's number among its own, from the user's document
    before the rewrite (`HISTORY_FIELD` projected). Linear: off the event loop for an import."""
    return [replace(change, n=history_number(before, change.id)) if change.kind == READING_STATUS else change
            for change in changes]


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The fields whose values differ (every field of an entry added or deleted)."""
    old, new = before or {}, after or {}
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


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
    # For an entry with a history (a reading status): its number among the entry's changes, and
    # the entry before the change (None: it was added).
    n: int | None = None
    before: dict[str, Any] | None = None

    @property
    def op(self) -> str:
        return DELETE if self.entry is None else UPSERT


@dataclass(frozen=True)
class StoredChange:
    """A change as stored: what the feed shows, and, for a reading status (when read along, as
    the account file does), its history's entry before and the fields that changed."""

    seq: int
    kind: str
    id: str
    op: str
    at: datetime
    entry: dict[str, Any] | None
    import_id: str | None
    before: dict[str, Any] | None = None
    fields: list[str] | None = None

    @classmethod
    def of(cls, document: dict[str, Any]) -> StoredChange:
        return cls(seq=document["seq"], kind=document["kind"], id=document["id"], op=document["op"],
                   at=document["at"], entry=document.get("entry"), import_id=document.get("import_id"),
                   before=document.get("before"), fields=document.get("fields"))


@dataclass(frozen=True)
class FeedPage:
    changes: list[StoredChange]
    next: int  # the cursor to ask with next time: the last change's number, or the one asked with
    more: bool


@dataclass(frozen=True)
class HistoryStep:
    """One change of an entry, as its history shows it."""

    at: datetime
    fields: list[str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    import_id: str | None

    @classmethod
    def of(cls, document: dict[str, Any]) -> HistoryStep:
        return cls(at=document["at"], fields=document.get("fields") or [], before=document.get("before"),
                   after=document.get("entry"), import_id=document.get("import_id"))


async def _up_to_bytes(cursor: AsyncCursor[dict[str, Any]], budget: int = PAGE_BYTES) -> list[dict[str, Any]]:
    """The cursor's documents, ending after the one that reaches `budget` stored bytes (at least
    one): a thousand statuses with notes at their limit would be a hundred megabytes of answer,
    built on the event loop."""
    found: list[dict[str, Any]] = []
    taken = 0
    try:
        async for document in cursor:
            found.append(document)
            taken += len(bson.encode(document))
            if taken >= budget:
                break
    finally:
        await cursor.close()
    return found


class CursorGone(Exception):
    """The changes after the cursor have passed the retention: the app must read the lists again."""


class ChangeFeed:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], retention: timedelta,
                 history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        self._changes = db[COLLECTION]
        self.retention = retention
        self.history_limit = history_limit

    async def ensure_indexes(self) -> None:
        # Built before a retired index is dropped: the entry history is never without one while
        # the new index builds on a large collection.
        await self._changes.create_indexes([
            IndexModel([("user_id", 1), ("seq", 1)], unique=True, name=_BY_NUMBER),
            IndexModel([("user_id", 1), ("kind", 1), ("id", 1), ("n", -1)], name=_BY_ENTRY),
            # Only changes without a history pass away by time; those with one, by count.
            IndexModel("purge_at", expireAfterSeconds=0, name="purge_at_ttl"),
        ])
        existing = await self._changes.index_information()
        for name in _RETIRED_INDEXES:
            if name in existing:
                await self._changes.drop_index(name)

    async def record(self, user_id: str, first: int, changes: list[Change], now: datetime,
                     session: AsyncClientSession | None) -> None:
        """Stores `changes`, numbered from `first`, in the transaction of their write (`session`)."""
        if not changes:
            return
        expires = now + self.retention
        await self._changes.insert_many(
            [{**({"_id": history_step_id(user_id, change.kind, change.id, change.n)} if change.n is not None else {}),
              "user_id": user_id, "seq": first + offset, "kind": change.kind, "id": change.id, "op": change.op,
              "at": now, "expires": expires, "entry": change.entry,
              **({"import_id": change.import_id} if change.import_id else {}),
              **({"purge_at": expires} if change.n is None else
                 {"n": change.n, "before": change.before, "fields": changed_fields(change.before, change.entry)})}
             for offset, change in enumerate(changes)],
            ordered=True, session=session)
        fallen = [history_step_id(user_id, change.kind, change.id, change.n - self.history_limit) for change in changes
                  if change.n is not None and change.n > self.history_limit]
        # What falls out of a history stays a change of the feed, which keeps by time: a hole in the
        # numbers would answer 410 to a cursor within the retention. It leaves the history and
        # passes away with its retention, as the changes without one do. Each change pushes out
        # exactly one, found by its `_id`: SecantusDB scans the whole collection for an update by any
        # other field (measured 0.9 s beside 40,000 changes), an index named or not.
        for start in range(0, len(fallen), _FALLEN_AT_ONCE):
            await self._changes.update_many(
                {"_id": {"$in": fallen[start:start + _FALLEN_AT_ONCE]}},
                [{"$set": {"purge_at": "$expires"}}, {"$unset": ["n", "before", "fields"]}], session=session)

    async def newest(self, user_id: str, limit: int, budget: int, latest: int) -> list[StoredChange]:
        """The user's changes kept (feed and histories alike) among the newest `limit` numbers up
        to `latest` (the user's counter), at most `budget` stored bytes of them (at least one),
        oldest first: what the account file carries. A range of numbers, not a sort with a
        limit: SecantusDB reads a query's whole index range before its limit."""
        found = await _up_to_bytes(
            self._changes.find({"user_id": user_id, "seq": {"$gt": latest - limit, "$lte": latest}},
                               {"_id": 0, "user_id": 0, "expires": 0, "purge_at": 0})
            .sort("seq", -1), budget)
        return [StoredChange.of(document) for document in reversed(found)]

    async def history(self, user_id: str, kind: str, entry_id: str, offset: int,
                      limit: int) -> tuple[list[HistoryStep], int]:
        """An entry's changes, newest first, from `offset`; and how many are kept. Both read the
        entry's range of the index, which holds at most its history's limit (what fell out of the
        history has no number: `n` `$gte` 1 leaves it out of the range; `$exists` made the
        planner scan the collection)."""
        query = {"user_id": user_id, "kind": kind, "id": entry_id, "n": {"$gte": 1}}
        found = await _up_to_bytes(
            self._changes.find(query, {"_id": 0, "at": 1, "fields": 1, "before": 1, "entry": 1, "import_id": 1})
            .sort("n", -1).skip(offset).limit(limit))
        total = await self._changes.count_documents(query)
        return [HistoryStep.of(document) for document in found], total

    async def oldest_kept(self, user_id: str, now: datetime, latest: int) -> int | None:
        """The number of the user's oldest change kept at `now` (None: none is), found among
        1..`latest` by halving with reads of one change each: at most about log2(latest) + 2
        round trips, where a query for the user's first change would read every change kept
        (SecantusDB reads a query's whole index range before its limit). Halving holds because a
        change is kept from its number on: numbers are given in the order of the writes, and
        each change expires its retention after its write."""
        if latest <= 0 or not await self._kept(user_id, latest, now):
            return None
        if await self._kept(user_id, 1, now):
            return 1  # nothing has passed the retention yet: most users
        gone, kept = 1, latest  # change `gone` is not kept, change `kept` is
        while kept - gone > 1:
            middle = (gone + kept) // 2
            if await self._kept(user_id, middle, now):
                kept = middle
            else:
                gone = middle
        return kept

    async def _kept(self, user_id: str, number: int, now: datetime) -> bool:
        found = await self._changes.find_one({"user_id": user_id, "seq": number}, {"_id": 0, "expires": 1})
        return found is not None and found["expires"] > now

    async def page(self, user_id: str, since: int | None, limit: int, now: datetime, latest: int) -> FeedPage:
        """The changes after `since` (None: from the oldest kept, `oldest_kept`), oldest first, at
        most `limit`. Raises CursorGone when the change right after `since` is no longer kept
        (expired, whether or not the TTL monitor has removed it yet), or when `since` is past the
        user's counter (a cursor of a database restored from an older backup): the app must read
        the lists.

        `latest`, the user's counter, must have been read before (the session read brings it):
        every change it counts has committed (a change commits with the counter that numbers
        it), so a write that lands meanwhile is never taken for a gap, and the page asks only
        for the numbers after `since` up to `since + limit`: a bounded range of the index,
        however many changes the user has (SecantusDB reads a query's whole index range before
        its limit)."""
        if since is not None and since > latest:
            raise CursorGone(user_id)
        first_page = since is None
        if since is None:
            oldest = await self.oldest_kept(user_id, now, latest)
            if oldest is None:
                return FeedPage(changes=[], next=latest, more=False)
            since = oldest - 1
        # The expiry is checked here, not in the query (see _BY_NUMBER): the range holds at most
        # `limit` changes.
        found = await _up_to_bytes(
            self._changes.find({"user_id": user_id, "seq": {"$gt": since, "$lte": min(latest, since + limit)}},
                               {"_id": 0, "user_id": 0, "purge_at": 0, "before": 0, "fields": 0, "n": 0})
            .sort("seq", 1))
        changes = [StoredChange.of(document) for document in found if document["expires"] > now]
        # A first page starts at a change just found kept; only a cursor's next change can be gone.
        if not first_page and since < latest and (not changes or changes[0].seq != since + 1):
            raise CursorGone(user_id)
        if not changes:
            return FeedPage(changes=[], next=since, more=False)
        return FeedPage(changes=changes, next=changes[-1].seq, more=changes[-1].seq < latest)
