"""Reading statuses brought from another tracker's file (MyAnimeList's XML): matching its
entries to catalog series, merging them into the reading list, and undoing an import.

Matching is by an external id first (`mal_id`), then by title against every series' name and
aliases (storage.title_keys); it only finds candidates, the caller decides (a title with more
than one series is reported, never guessed).

An applied import writes the merged list and an import record in one transaction. The record
holds, for each entry the import added or changed, the entry as it was before (None for an
add) and a SHA-256 of the entry as the import wrote it: undo puts back what was, unless the
entry's hash shows that the user changed it since. Records expire after 30 days (a TTL index).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import bson
from pymongo import IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from storage.changes import (
    HISTORY_FIELD,
    READING_STATUS,
    SEQ_FIELD,
    Change,
    ChangeFeed,
    first_number,
    history_counters,
    numbered,
)
from storage.database import in_transaction
from storage.embedded_list import revision_field, revision_of, too_full_to_add
from storage.list_gate import ListGate
from storage.list_merge import Entry, EntryChange, Merged, MergeRule, merge_entries
from storage.outcome import ListsFull
from storage.reading import StatusFields
from storage.title_keys import MAX_KEY_CHARACTERS
from workers import off_the_loop

RECORD_DAYS = 30
# SecantusDB's `$in` costs grow with the square of its list (storage.catalog_keys); 25 values a
# query was the cheapest per value (measured for 5,000 entries: 1,000 a query took 10.7 s, 100
# took 1.6 s, 25 took 1.0 s).
_CHUNK = 25
_FIELD = "statuses"
# A rewrite reads and merges again when the list changed under it (a write from another process;
# this process's writes wait for it): this many times, then the list is reported busy.
REWRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class CatalogMatches:
    by_external_id: dict[int, tuple[int, int]]  # mal_id -> (series id, client)
    by_title_key: dict[str, list[tuple[int, int]]]  # title key -> every (series id, client) with it


class SeriesMatcher:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._series = db["series"]

    async def candidates(self, mal_ids: Iterable[int], keys: Iterable[str], client: int | None) -> CatalogMatches:
        scope = {} if client is None else {"client": client}
        by_id: dict[int, tuple[int, int]] = {}
        for chunk in _chunks(sorted(set(mal_ids))):
            async for series in self._series.find({"mal_id": {"$in": chunk}, **scope}, {"mal_id": 1, "client": 1}):
                by_id[series["mal_id"]] = (series["_id"], series["client"])
        # A key longer than any catalog title's matches nothing; leaving it out also keeps every
        # query within a few MB (25 keys of at most 18,000 characters), whatever a file holds.
        wanted = {key for key in keys if len(key) <= MAX_KEY_CHARACTERS}
        by_key: dict[str, list[tuple[int, int]]] = {}
        for chunk in _chunks(sorted(wanted)):
            cursor = self._series.find({"match_titles": {"$in": chunk}, **scope}, {"match_titles": 1, "client": 1})
            async for series in cursor:
                for key in wanted.intersection(series.get("match_titles") or ()):
                    by_key.setdefault(key, []).append((series["_id"], series["client"]))
        return CatalogMatches(by_id, by_key)


    async def names(self, series_ids: Iterable[int]) -> dict[int, SeriesNames]:
        found: dict[int, SeriesNames] = {}
        for chunk in _chunks(sorted(set(series_ids))):
            async for series in self._series.find({"_id": {"$in": chunk}}, {"name": 1, "titles": 1, "mal_id": 1}):
                found[series["_id"]] = SeriesNames(series["name"], series.get("titles") or {}, series.get("mal_id"))
        return found


@dataclass(frozen=True)
class SeriesNames:
    name: str
    titles: dict[str, str]  # by language code
    mal_id: int | None


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


@dataclass(frozen=True)
class StatusImportResult:
    changes: dict[int, EntryChange]  # by series id
    import_id: str | None  # when applied


@dataclass
class UndoResult:
    restored: int = 0  # changed entries put back as they were
    removed: int = 0  # added entries taken off the list
    left: list[int] = field(default_factory=list)  # series whose entry the user changed since


def _by_series(changes: list[EntryChange]) -> dict[int, EntryChange]:
    # Status entries are merged by series_id, an int (list_merge keys any hashable).
    return {cast(int, change.key): change for change in changes}


def entry_hash(entry: Entry) -> str:
    return hashlib.sha256(bson.encode(entry)).hexdigest()


def import_changes(merged: Merged, import_id: str) -> list[Change]:
    """The change feed's changes of an applied import: each added or changed entry, naming it."""
    return [Change(READING_STATUS, str(c.key), c.after, import_id, before=c.before) for c in merged.changes
            if c.action in ("add", "update")]


def _merge_for_import(stored: dict[str, Any], incoming: list[Entry], rule: MergeRule,
                      apply: bool) -> tuple[Merged, bool, list[dict[str, Any]]]:
    """The merged list, whether the document that would hold it is too full, and the import record's
    entries (for an apply): each added or changed entry as it was, and a hash of what it becomes."""
    merged = merge_entries(stored.get("statuses") or [], incoming, "series_id", rule, ignored=("last_update",))
    if not apply:
        return merged, False, []
    full = too_full_to_add({**stored, "statuses": merged.entries})
    undo = [{"series_id": c.key, "before": c.before, "after_sha256": entry_hash(c.after)}
            for c in merged.changes if c.action in ("add", "update")]
    return merged, full, undo


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db["imports"].create_indexes([IndexModel("expires", name="expires_ttl", expireAfterSeconds=0),
                                        IndexModel("user_id", name="user_id")])


class ListChanged(Exception):
    """The list was written between a rewrite's read and its write: read and merge again."""


class ListBusy(Exception):
    """The list kept changing under a rewrite, attempt after attempt (writes from other processes)."""


def _undo_plan(statuses: list[Entry], record: dict[str, Any]) -> tuple[list[Entry], UndoResult, list[Change]]:
    """The list once the import of `record` is taken back, what that does, and its changes for
    the change feed (each naming the import)."""
    statuses = list(statuses)
    position_before = list(statuses)  # each entry as the import left it: the history's "before"
    position = {entry["series_id"]: index for index, entry in enumerate(statuses)}
    result = UndoResult()
    removed: set[int] = set()
    changes: list[Change] = []
    for done in record["entries"]:
        index = position.get(done["series_id"])
        if index is None or entry_hash(statuses[index]) != done["after_sha256"]:
            result.left.append(done["series_id"])
            continue
        if done["before"] is None:
            removed.add(index)
            result.removed += 1
        else:
            statuses[index] = done["before"]
            result.restored += 1
        changes.append(Change(READING_STATUS, str(done["series_id"]), done["before"], record["_id"],
                              before=position_before[index]))
    return [entry for index, entry in enumerate(statuses) if index not in removed], result, changes


@dataclass(frozen=True)
class IncomingStatus:
    """A status an import brings: its series and client, and the fields its file gives."""

    series_id: int
    client: int
    fields: StatusFields


def _stored_statuses(statuses: list[IncomingStatus], now: datetime) -> list[Entry]:
    return [status.fields.stored(status.series_id, status.client, now) for status in statuses]


class StatusImport:
    """Imports and undos rewrite the whole list: each reads it and merges outside any transaction,
    then writes in a short one (the list, and the import record) only if the list's revision is
    still the one it read; else it reads and merges again, at most REWRITE_ATTEMPTS times. The
    user's own writes wait for the rewrite in this process (storage.list_gate), so one attempt is
    the rule; a transaction spanning the read and the merge lost to every write landing in it."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], gate: ListGate, pool: Executor,
                 changes: ChangeFeed) -> None:
        self._db = db
        self._changes = changes
        self._pool = pool  # merges and undo plans grow with the list: the service's input pool
        self._users = db["users"]
        self._imports = db["imports"]
        self._gate = gate

    async def run(self, user_id: str, statuses: list[IncomingStatus], rule: MergeRule, *, apply: bool,
                  source: str, now: datetime) -> StatusImportResult | None:
        """`statuses`: unique by series; each is stored as of `now`. None when the user does not
        exist."""
        incoming = await off_the_loop(self._pool, _stored_statuses, statuses, now)
        if not apply:
            stored = await self._users.find_one({"_id": user_id}, {"statuses": 1})
            if stored is None:
                return None
            merged, _, _ = await off_the_loop(self._pool, _merge_for_import, stored, incoming, rule, False)
            return StatusImportResult(_by_series(merged.changes), None)
        async with self._gate.rewrite(user_id):
            for _ in range(REWRITE_ATTEMPTS):
                stored = await self._users.find_one({"_id": user_id})
                if stored is None:
                    return None
                # Thousands of entries: merged, measured and hashed off the event loop.
                merged, full, undo_entries = await off_the_loop(self._pool, _merge_for_import, stored, incoming, rule,
                                                                     True)
                if full:
                    raise ListsFull(user_id)
                import_id = secrets.token_hex(12)
                record = {"_id": import_id, "user_id": user_id, "source": source, "created": now,
                          "expires": now + timedelta(days=RECORD_DAYS), "entries": undo_entries}
                changes = await off_the_loop(self._pool, import_changes, merged, import_id)

                async def write(session: AsyncClientSession, stored: dict[str, Any] = stored,
                                merged: Merged = merged, record: dict[str, Any] = record,
                                changes: list[Change] = changes) -> None:
                    await self._rewrite(user_id, stored, merged.entries, changes, now, session)
                    await self._imports.insert_one(record, session=session)

                try:
                    await in_transaction(self._db, write, user_id=user_id)
                except ListChanged:
                    continue
                return StatusImportResult(_by_series(merged.changes), import_id)
        raise ListBusy(user_id)

    async def undo(self, user_id: str, import_id: str, now: datetime) -> UndoResult | None:
        """None when this user has no such import (never, expired, or undone already)."""
        async with self._gate.rewrite(user_id):
            for _ in range(REWRITE_ATTEMPTS):
                record = await self._imports.find_one({"_id": import_id, "user_id": user_id, "undone": None})
                if record is None:
                    return None
                stored = await self._users.find_one({"_id": user_id}, {"statuses": 1, "revisions": 1})
                if stored is None:
                    return None
                statuses, result, changes = await off_the_loop(self._pool, _undo_plan, stored.get("statuses") or [],
                                                               record)

                async def write(session: AsyncClientSession, stored: dict[str, Any] = stored,
                                statuses: list[Entry] = statuses, changes: list[Change] = changes) -> None:
                    await self._rewrite(user_id, stored, statuses, changes, now, session)
                    marked = await self._imports.update_one({"_id": import_id, "undone": None},
                                                            {"$set": {"undone": now}}, session=session)
                    if marked.matched_count == 0:
                        raise ListChanged(user_id)  # undone meanwhile: the next attempt finds no record

                try:
                    await in_transaction(self._db, write, user_id=user_id)
                except ListChanged:
                    continue
                return result
        raise ListBusy(user_id)

    async def _rewrite(self, user_id: str, stored: dict[str, Any], statuses: list[Entry], changes: list[Change],
                       now: datetime, session: AsyncClientSession) -> None:
        """Writes `statuses` over the list read in `stored`, and numbers and records `changes`,
        unless the list was written since (then ListChanged, which aborts the transaction)."""
        counters = await off_the_loop(self._pool, history_counters, changes)
        before = await self._users.find_one_and_update(
            {"_id": user_id, revision_field(_FIELD): revision_of(stored, _FIELD)},
            {"$set": {_FIELD: statuses},
             "$inc": {revision_field(_FIELD): 1, SEQ_FIELD: len(changes), **counters}},
            projection={"_id": 0, SEQ_FIELD: 1, HISTORY_FIELD: 1}, session=session)
        if before is None:
            raise ListChanged(user_id)
        changes = await off_the_loop(self._pool, numbered, changes, before)
        await self._changes.record(user_id, first_number(before), changes, now, session)
