"""Atomic writes on one list embedded in the user's document, whose entries are unique by a key,
and the list's revision: a counter each write bumps in the same update, so that a rewrite of the
whole list (an import) can write only if the list is still the one it read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import bson
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from storage.changes import SEQ_FIELD, Change, ChangeFeed, first_number, history_counter, history_number
from storage.database import in_transaction, request_session
from storage.list_gate import ListGate
from storage.outcome import ListsFull, UserGone, WriteOutcome

MIB = 1024 * 1024
# A user's document may hold 16 MB. Its lists stop growing well before that, so that what must
# always work keeps room: signing in (a session), settings, logout, and every deletion. An add
# is refused from 12 MB on; an update, which can lengthen an entry (by at most a request body,
# 256 KB), from 14 MB on.
ADD_LIMIT_BYTES = 12 * MIB
UPDATE_LIMIT_BYTES = 14 * MIB


def too_full_to_add(document: dict[str, Any]) -> bool:
    """Whether a user's document, as a rewrite of whole lists (an import) would store it, is past
    the limit an add has; linear in the document, so callers run it off the event loop when it is
    large."""
    return len(bson.encode(document)) >= ADD_LIMIT_BYTES


def stored_fields(record: Any | None) -> dict[str, Any] | None:
    """A list entry's record (a status, a rating, a collection item: storage.records, which names
    its fields as they are stored) as the fields a conditional write requires unchanged; None
    stays None (no condition)."""
    return asdict(record) if record is not None else None


def smaller_than(limit: int) -> dict[str, Any]:
    return {"$expr": {"$lt": [{"$bsonSize": "$$ROOT"}, limit]}}


def revision_field(field: str) -> str:
    """Where the revision of the list `field` is kept (absent until its first counted write)."""
    return f"revisions.{field}"


def revision_of(document: dict[str, Any], field: str) -> int | None:
    """The revision of the list `field` in a user's document as read; None matches an absent one."""
    return (document.get("revisions") or {}).get(field)


@dataclass(frozen=True)
class Written:
    """A write that took effect: the entry as it was before (None: there was none) and the number
    of the change it made (storage.changes)."""

    before: dict[str, Any] | None
    seq: int
    n: int | None = None  # the change's number among the entry's own (a list with a history)


@dataclass(frozen=True)
class Derived:
    """Figures kept beside a list and moved by its writes (storage.collection_stats): the fields
    the write's read brings along, and the update operators that move them, from the user's id,
    that read and the entry before and after the write (which may read more, in the write's
    `session`)."""

    fields: dict[str, Any]
    moved: Callable[[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, AsyncClientSession],
                    Awaitable[dict[str, dict[str, Any]]]]


def merged(*updates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Update documents as one: each operator's fields together (no field is in two of them)."""
    whole: dict[str, dict[str, Any]] = {}
    for update in updates:
        for operator, fields in update.items():
            whole.setdefault(operator, {}).update(fields)
    return whole


@dataclass(frozen=True)
class Feed:
    """Where a list's writes leave their changes, under which kind, and whether each entry keeps
    a history of them (storage.changes)."""

    changes: ChangeFeed
    kind: str
    history: bool = False


class EmbeddedList:
    """`users.<field>`, entries unique by `<key>`. Every write is one conditional update whose
    filter includes the user's id, so one user can never touch another user's entries, and which
    bumps the list's revision. With a `gate`, writes take turns with rewrites of the whole list
    in this process (storage.list_gate).

    Every write also numbers and records its change (storage.changes) in one transaction with
    it: the caller's (`session`), else one of its own (which joins a request's transaction). The
    transaction reads the entry as it was and the user's change counter, then updates."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], field: str, key: str, feed: Feed,
                 gate: ListGate | None = None, derived: Derived | None = None) -> None:
        self._db = db
        self._users = db["users"]
        self.field = field
        self.key = key
        self._feed = feed
        self._gate = gate
        self._derived = derived

    async def push_unique(self, user_id: str, key_value: Any, entry: dict[str, Any], now: datetime,
                          unique_by: str | None = None, session: AsyncClientSession | None = None) -> Written | None:
        """Appends `entry` unless an entry with the same `unique_by` value (default: the key)
        exists. Of concurrent pushes for one value exactly one succeeds."""
        absent = {"_id": user_id, f"{self.field}.{unique_by or self.key}": {"$ne": key_value}}

        async def push(session: AsyncClientSession) -> Written | None:
            written = await self._write(user_id, {**absent, **smaller_than(ADD_LIMIT_BYTES)},
                                        {"$push": {self.field: entry}}, key_value, session, by=unique_by, exists=False,
                                        after=lambda _: entry, limit=ADD_LIMIT_BYTES)
            if written is not None:
                await self._record(user_id, written, entry[self.key], entry, now, session)
            return written

        return await self._in_transaction(user_id, push, session)

    async def replace(self, user_id: str, key_value: Any, entry: dict[str, Any], now: datetime,
                      session: AsyncClientSession | None = None,
                      unchanged: dict[str, Any] | None = None) -> Written | None:
        return await self._set(user_id, key_value, {f"{self.field}.$": entry}, lambda _: entry, now, session, unchanged)

    async def set_fields(self, user_id: str, key_value: Any, fields: dict[str, Any], now: datetime,
                         session: AsyncClientSession | None = None,
                         unchanged: dict[str, Any] | None = None) -> Written | None:
        return await self._set(user_id, key_value, {f"{self.field}.$.{name}": v for name, v in fields.items()},
                               lambda before: {**(before or {}), **fields}, now, session, unchanged)

    def _present(self, user_id: str, key_value: Any, by: str, unchanged: dict[str, Any] | None) -> dict[str, Any]:
        """The filter of a write to the entry whose `by` is `key_value`; with `unchanged` (the entry's
        fields as the caller read them: a conditional request's If-Match), only while it still holds
        exactly those, so that a change in between makes the write match nothing instead of being
        overwritten. One filter, not a read and then a write."""
        if unchanged is None:
            return {"_id": user_id, f"{self.field}.{by}": key_value}
        return {"_id": user_id, self.field: {"$elemMatch": {**unchanged, by: key_value}}}

    async def entry(self, user_id: str, key_value: Any) -> dict[str, Any] | None:
        """The entry whose key is `key_value` as stored, or None: what a conditional write compares."""
        found = await self._users.find_one({"_id": user_id, f"{self.field}.{self.key}": key_value},
                                           {"_id": 0, self.field: {"$elemMatch": {self.key: key_value}}},
                                           session=request_session())
        entries = (found or {}).get(self.field) or []
        return entries[0] if entries else None

    async def why_missed(self, user_id: str, key_value: Any, unchanged: Any | None) -> WriteOutcome:
        """Why a write to the entry `key_value` matched nothing: there is none (NOT_FOUND), or, for
        a write conditional on `unchanged`, it changed since it was read (CHANGED). Only a failed
        write pays this read."""
        if unchanged is None or await self.entry(user_id, key_value) is None:
            return WriteOutcome.NOT_FOUND
        return WriteOutcome.CHANGED

    async def _set(self, user_id: str, key_value: Any, assignments: dict[str, Any],
                   after: Callable[[dict[str, Any] | None], dict[str, Any]], now: datetime,
                   session: AsyncClientSession | None, unchanged: dict[str, Any] | None = None) -> Written | None:
        # The positional `$` is the entry the filter's condition on the list matched.
        present = self._present(user_id, key_value, self.key, unchanged)

        async def set_(session: AsyncClientSession) -> Written | None:
            written = await self._write(user_id, {**present, **smaller_than(UPDATE_LIMIT_BYTES)},
                                        {"$set": assignments}, key_value, session, by=None, exists=True,
                                        after=after, limit=UPDATE_LIMIT_BYTES)
            if written is not None:
                await self._record(user_id, written, key_value, after(written.before), now, session)
            return written

        return await self._in_transaction(user_id, set_, session)

    async def _explain_refusal(self, condition: dict[str, Any], limit: int,
                              session: AsyncClientSession | None = None) -> None:
        """After a write matched nothing: if its own condition holds, the size gate is why (507);
        if the user's document is gone, the account was deleted since the session was read
        (UserGone: 401, not "already exists"); otherwise the entry's presence or absence is (a
        409 or 404 for the caller to give). Only the failure path pays these round trips."""
        session = session or request_session()
        full = {**condition, "$expr": {"$gte": [{"$bsonSize": "$$ROOT"}, limit]}}
        if await self._users.find_one(full, {"_id": 1}, session=session) is not None:
            raise ListsFull(str(condition["_id"]))
        if await self._users.find_one({"_id": condition["_id"]}, {"_id": 1}, session=session) is None:
            raise UserGone(str(condition["_id"]))

    async def remove(self, user_id: str, key_value: Any, now: datetime, by: str | None = None,
                     session: AsyncClientSession | None = None,
                     unchanged: dict[str, Any] | None = None) -> Written | None:
        """Removes the entry whose `by` (default: the key) is `key_value`; None if none has it (or,
        with `unchanged`, none has it as read)."""
        field = by or self.key

        async def remove_(session: AsyncClientSession) -> Written | None:
            written = await self._write(user_id, self._present(user_id, key_value, field, unchanged),
                                        {"$pull": {self.field: {field: key_value}}}, key_value, session, by=field,
                                        exists=True, after=lambda _: None)
            if written is not None and written.before is not None:
                await self._record(user_id, written, written.before[self.key], None, now, session)
            return written

        return await self._in_transaction(user_id, remove_, session)

    async def _write(self, user_id: str, condition: dict[str, Any], update: dict[str, Any], key_value: Any,
                     session: AsyncClientSession, by: str | None, exists: bool,
                     after: Callable[[dict[str, Any] | None], dict[str, Any] | None],
                     limit: int | None = None) -> Written | None:
        """The conditional update of the entry whose `by` (default: the key) is `key_value`, which
        `exists` or not before it, bumping the list's revision and the change counter (and the
        entry's own, with a history); None if it matched nothing, without the update when the
        read shows it cannot. With a size `limit` in `condition`, a refusal is explained
        (ListsFull, UserGone: `_explain_refusal`). `after`: the entry after the write, from the
        entry before (None: removed), for the figures kept beside the list (`Derived`).

        The entry as it was and the counters come from a read in the same transaction, just
        before: the update of a document that another write changed since that read conflicts
        and the transaction runs again, so the numbers are exact. Two round trips, where one
        findAndModify answering the document as it was would do; measured on a document of 1,000
        statuses (bench.perf's), the findAndModify took 31-34 ms where the read took 3 and the
        update 24: SecantusDB's findAndModify takes no positional `$` (it needs an array filter,
        which tests every entry) and copies the document it answers."""
        counters = {revision_field(self.field): 1, SEQ_FIELD: 1}
        projection: dict[str, Any] = {"_id": 0, SEQ_FIELD: 1, self.field: {"$elemMatch": {by or self.key: key_value}}}
        if self._feed.history:
            # A history is kept by the key (a series), so `by` is the key here.
            counters[history_counter(str(key_value))] = 1
            projection[history_counter(str(key_value))] = 1
        if self._derived is not None:
            projection.update(self._derived.fields)
        before = await self._users.find_one({"_id": user_id}, projection, session=session)
        if before is None:
            if limit is not None:
                raise UserGone(user_id)
            return None
        entries = before.get(self.field) or []
        if bool(entries) != exists:
            return None  # the entry's presence or absence is why: the caller's 404 or 409
        entry = entries[0] if entries else None
        moved = await self._derived.moved(user_id, before, entry, after(entry), session) if self._derived is not None else {}
        result = await self._users.update_one(condition, merged(update, {"$inc": counters}, moved), session=session)
        if result.matched_count == 0:
            if limit is not None:
                await self._explain_refusal(condition, limit, session)
            return None
        return Written(before=entry, seq=first_number(before),
                       n=history_number(before, str(key_value)) if self._feed.history else None)

    async def _record(self, user_id: str, written: Written, key_value: Any, entry: dict[str, Any] | None,
                      now: datetime, session: AsyncClientSession) -> None:
        change = Change(self._feed.kind, str(key_value), entry, n=written.n, before=written.before)
        await self._feed.changes.record(user_id, written.seq, [change], now, session)

    async def _in_transaction(self, user_id: str, work: Callable[[AsyncClientSession], Awaitable[Written | None]],
                              session: AsyncClientSession | None) -> Written | None:
        """`work` in the caller's transaction (`session`), or in one of its own, taken in turn
        after a rewrite of the list (the gate) and the user's other transactions here (in that
        order, as a rewrite takes them)."""
        if session is not None:
            return await work(session)
        async with self._turn(user_id):
            return await in_transaction(self._db, work, user_id=user_id)

    def _turn(self, user_id: str) -> AbstractAsyncContextManager[None]:
        return self._gate.write(user_id) if self._gate is not None else nullcontext()
