"""The directory of public users that `GET /users` pages through: a row per user who is not
banned, and one small document that says how many rows each stretch of names, and of
registration times, holds. With it a page at any offset, a search's count and its page each
read a few hundred rows, whatever the number of users.

Why the ranges: SecantusDB answers a query by reading every document its filter's index range
holds (a sort with a limit does not stop early; measured), so a page found by `skip` would read
every user before it, and a count every user. Instead each order (the lower-cased name; the
registration time, ties by name) is cut into ranges of at most SPLIT_ABOVE rows, each stored with
its first key and its row count: a page's place is found from the counts, and its rows are read
by a key range that spans one or two ranges. The ranges change with the rows, in the same
transaction: a registration adds a row and counts it (a range that passes SPLIT_ABOVE is split
at its middle row), a ban or an account's removal takes it away (a range left empty merges into
the one before); a ban lifted adds it again.

The rows and the ranges are derived from `users` alone: when the ranges document is missing (a
new database, one from before the directory, a restore) `ensure` builds both from the users,
once. Rows are `{_id: <user id>, name: <lower-cased username>, since: "<registered, UTC, to the
millisecond> <name>", username, registered, image_version}`, indexed on `name` and on `since`: a
page is read from the rows alone, since reading the users' documents (their lists included) took
SecantusDB about 1 ms each at 500 statuses (bench/users.py). The name and the registration time
never change; the image version changes with the profile image, in the transaction of the
avatar store's switch or removal."""

from __future__ import annotations

import enum
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from itertools import accumulate
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth.passwords import could_begin_a_username
from auth.permissions import is_banned
from storage.records import ListedUserRecord

ROWS = "user_directory"
RANGES = "user_directory_ranges"
# Derived from `users`: a restore drops them and the next start builds them (storage.backup).
DERIVED_COLLECTIONS = (ROWS, RANGES)
_RANGES_ID = "ranges"
NAME, SINCE = "name", "since"
# A range that would hold more rows is split in two. A page reads the rows of the one or two
# ranges it falls in, so this bounds what a page reads: at most about twice this, plus the page.
# Reading 512 rows took SecantusDB about 15 ms (bench/users.py); halving the ranges doubles the
# ranges document, which every page and registration reads (about 40 bytes a range).
SPLIT_ABOVE = 256
# How full a build leaves each range: room for registrations before the first splits.
BUILD_FILL = 128
# A search ordered by registration reads every user whose name starts with it (names are not
# in registration order): more matches than this are refused, so that no request reads more.
REGISTRATION_ORDER_MATCHES = 1_000
# Above every character a username may hold: `prefix + _PREFIX_END` bounds the names it begins.
_PREFIX_END = "\x7f"
# Users a build reads at once, by `_id`: SecantusDB's `$in` grows with the square of the list.
_BATCH = 100
# What a page shows of each user.
_SHOWN = {"username": 1, NAME: 1, "registered": 1, "image_version": 1}


class DirectoryOrder(enum.Enum):
    NAME = NAME
    REGISTERED = SINCE


class SearchTooBroad(Exception):
    """A search ordered by registration matches more than REGISTRATION_ORDER_MATCHES users."""

    def __init__(self, matches: int, limit: int) -> None:
        super().__init__(f"{matches} users match, more than {limit}")
        self.matches = matches
        self.limit = limit


@dataclass(frozen=True)
class DirectoryRequest:
    order: DirectoryOrder
    descending: bool
    offset: int
    limit: int
    search: str | None  # the beginning of the username, in any case


@dataclass(frozen=True)
class DirectoryPage:
    users: list[ListedUserRecord]
    total: int  # the users the request matches, on every page


def since_key(registered: datetime, name: str) -> str:
    """The registration order's key: the time to the millisecond (as stored), then the name."""
    if registered.tzinfo is not None:
        registered = registered.astimezone(timezone.utc)
    return f"{registered:%Y-%m-%dT%H:%M:%S}.{registered.microsecond // 1000:03d}Z {name}"


def row_of(user_id: str, username: str, registered: datetime, image_version: int | None) -> dict[str, Any]:
    name = username.lower()
    return {"_id": user_id, NAME: name, SINCE: since_key(registered, name), "username": username,
            "registered": registered, "image_version": image_version}


@dataclass(frozen=True)
class Ranges:
    """One order's ranges as stored: range i holds the keys from `lows[i]` up to the next range's
    first key (the first starts at "", below every key), `counts[i]` rows of them."""

    lows: tuple[str, ...]
    counts: tuple[int, ...]

    @classmethod
    def of(cls, stored: list[dict[str, Any]] | None) -> Ranges:
        entries = stored or [{"lo": "", "n": 0}]
        return cls(tuple(entry["lo"] for entry in entries), tuple(max(0, int(entry["n"])) for entry in entries))

    @cached_property
    def ends(self) -> tuple[int, ...]:
        """The rank just past each range's last row."""
        return tuple(accumulate(self.counts))

    @property
    def total(self) -> int:
        return self.ends[-1]

    def before(self, index: int) -> int:
        """The rows in the ranges before range `index`."""
        return self.ends[index] - self.counts[index]

    def high(self, index: int) -> str | None:
        """The first key after range `index` (None: it is the last)."""
        return self.lows[index + 1] if index + 1 < len(self.lows) else None

    def index_of(self, key: str) -> int:
        """The range that holds `key`."""
        return bisect_right(self.lows, key) - 1

    def holding(self, rank: int) -> int:
        """The range that holds the row of `rank` (0 for the first row); empty ranges hold none."""
        return min(bisect_right(self.ends, rank), len(self.ends) - 1)


@dataclass(frozen=True)
class Scope:
    """The rows a request pages through: keys from `low` up to `high` (None: no end), which are
    the rows of ranks `first` up to `end`."""

    low: str
    high: str | None
    first: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.first)


@dataclass(frozen=True)
class RowRead:
    """One read of rows: `field` from `low` up to `high` (None: no end), ordered by `order`, then
    `skip` rows left out and at most `limit` kept."""

    field: str
    low: str
    high: str | None
    order: str
    descending: bool
    skip: int
    limit: int


def _lower_high(first: str | None, second: str | None) -> str | None:
    if first is None or second is None:
        return second if first is None else first
    return min(first, second)


def window(ranges: Ranges, field: str, scope: Scope, offset: int, limit: int, descending: bool) -> RowRead | None:
    """The read of `limit` rows from `offset` in `scope`, in ascending or descending order of
    `field`, bounded by the ranges its first and last rows fall in; None when the page is empty."""
    if descending:
        stop = scope.end - offset
        start = max(scope.first, stop - limit)
    else:
        start = scope.first + offset
        stop = min(scope.end, start + limit)
    if start >= stop:
        return None
    first, last = ranges.holding(start), ranges.holding(stop - 1)
    # The read's bounds are the ranges' or the scope's, whichever is narrower; the rank of each is
    # known exactly, so the read skips from the right row.
    low, low_rank = max(ranges.lows[first], scope.low), max(ranges.before(first), scope.first)
    high, high_rank = _lower_high(ranges.high(last), scope.high), min(ranges.ends[last], scope.end)
    skip = high_rank - stop if descending else start - low_rank
    return RowRead(field, low, high, field, descending, max(0, skip), stop - start)


def _between(field: str, low: str, high: str | None) -> dict[str, Any]:
    return {field: {"$gte": low, **({"$lt": high} if high is not None else {})}}


class UserDirectory:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._rows = db[ROWS]
        self._ranges = db[RANGES]
        self._users = db["users"]
        self._usernames = db["usernames"]

    async def ensure(self) -> None:
        """The indexes, and the directory built from the users if it is not there yet."""
        await self._rows.create_indexes([IndexModel([(NAME, 1)], name=NAME), IndexModel([(SINCE, 1)], name=SINCE)])
        if await self._ranges.find_one({"_id": _RANGES_ID}, {"_id": 1}) is None:
            await self.build()

    async def build(self) -> int:
        """The rows and the ranges from the users, replacing what there was; returns the users
        listed. Reads every user once (a start's layout step, not a request's work): through
        their names (a user without one cannot sign in), a batch by `_id` at a time, since
        SecantusDB holds a whole result in memory; memory follows a batch and the ranges."""
        await self._rows.delete_many({})
        listed, batch = 0, []
        async for name in self._usernames.find({}, {"user_id": 1}):
            batch.append(name["user_id"])
            if len(batch) == _BATCH:
                listed, batch = listed + await self._list(batch), []
        if batch:
            listed += await self._list(batch)
        ranges = {field: await self._filled(field) for field in (NAME, SINCE)}
        try:
            await self._ranges.insert_one({"_id": _RANGES_ID, **ranges})
        except DuplicateKeyError:
            pass  # another process starting at the same time built the same directory
        return listed

    async def _list(self, user_ids: list[str]) -> int:
        rows = [row_of(user["_id"], user["username"], user["registered"], image_version(user))
                async for user in self._users.find({"_id": {"$in": user_ids}}, {"username": 1, "registered": 1,
                                                                               "roles": 1, "profile_image.version": 1})
                # Banned, or not a whole user (a hand-made document): no profile to show.
                if not is_banned(user.get("roles") or ()) and user.get("username") and user.get("registered")]
        if rows:
            await self._rows.insert_many(rows, ordered=False)
        return len(rows)

    async def _filled(self, field: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = [{"lo": "", "n": 0}]
        async for row in self._rows.find({}, {field: 1}).sort(field, 1):
            if entries[-1]["n"] == BUILD_FILL:
                entries.append({"lo": row[field], "n": 0})
            entries[-1]["n"] += 1
        return entries

    # ---- changes, each inside the transaction of the change to the user ----

    async def add(self, user_id: str, username: str, registered: datetime, image: int | None,
                  session: AsyncClientSession) -> None:
        """Lists the user (a registration, a ban lifted); nothing if they are listed already."""
        row = row_of(user_id, username, registered, image)
        inserted = {key: value for key, value in row.items() if key != "_id"}
        added = await self._rows.update_one({"_id": user_id}, {"$setOnInsert": inserted}, upsert=True, session=session)
        if added.upserted_id is not None:
            await self._count(row, 1, session)

    async def show_image(self, user_id: str, version: int | None, session: AsyncClientSession) -> None:
        """The user's profile image is now `version` (None: no image); nothing if not listed."""
        await self._rows.update_one({"_id": user_id}, {"$set": {"image_version": version}}, session=session)

    async def remove(self, user_id: str, session: AsyncClientSession) -> None:
        """Unlists the user (a ban, the account's removal); nothing if they are not listed."""
        row = await self._rows.find_one_and_delete({"_id": user_id}, session=session)
        if row is not None:
            await self._count(row, -1, session)

    async def _count(self, row: dict[str, Any], change: int, session: AsyncClientSession) -> None:
        stored = await self._ranges.find_one({"_id": _RANGES_ID}, session=session)
        if stored is None:
            return  # not built yet: the build counts every row
        increments: dict[str, int] = {}
        rewritten: dict[str, list[dict[str, Any]]] = {}
        for field in (NAME, SINCE):
            entries = stored[field]
            index = bisect_right([entry["lo"] for entry in entries], row[field]) - 1
            count = entries[index]["n"] + change
            if count > SPLIT_ABOVE:
                rewritten[field] = await self._split(field, entries, index, session)
            elif count <= 0 and index > 0:
                rewritten[field] = entries[:index] + entries[index + 1:]  # its keys go to the range before
            else:
                increments[f"{field}.{index}.n"] = change
        update: dict[str, Any] = {}
        if increments:
            update["$inc"] = increments
        if rewritten:
            update["$set"] = rewritten
        await self._ranges.update_one({"_id": _RANGES_ID}, update, session=session)

    async def _split(self, field: str, entries: list[dict[str, Any]], index: int,
                     session: AsyncClientSession) -> list[dict[str, Any]]:
        """Range `index` cut at its middle row, counted from its rows (SPLIT_ABOVE and one)."""
        low, high = entries[index]["lo"], entries[index + 1]["lo"] if index + 1 < len(entries) else None
        cursor = self._rows.find(_between(field, low, high), {field: 1}, session=session).sort(field, 1)
        keys = [row[field] async for row in cursor]
        middle = len(keys) // 2
        if middle == 0:
            return [*entries[:index], {"lo": low, "n": len(keys)}, *entries[index + 1:]]
        return [*entries[:index], {"lo": low, "n": middle}, {"lo": keys[middle], "n": len(keys) - middle},
                *entries[index + 1:]]

    # ---- pages ----

    async def page(self, request: DirectoryRequest) -> DirectoryPage:
        """The page and the number of users the request matches: two reads (the ranges, then the
        page's rows with their users), and for a search the ranks of its bounds: one or two reads
        of at most a range each."""
        field = request.order.value
        if request.search is None:
            ranges = await self._stored(field)
            scope = Scope("", None, 0, ranges.total)
            read = window(ranges, field, scope, request.offset, request.limit, request.descending)
            return DirectoryPage(await self._read(read), scope.size)
        prefix = request.search.lower()
        if not could_begin_a_username(prefix):
            return DirectoryPage([], 0)
        names = await self._stored(NAME)
        first, end = await self._ranks(names, prefix, prefix + _PREFIX_END)
        scope = Scope(prefix, prefix + _PREFIX_END, first, max(first, end))
        if request.order is DirectoryOrder.NAME:
            read = window(names, NAME, scope, request.offset, request.limit, request.descending)
        elif scope.size > REGISTRATION_ORDER_MATCHES:
            raise SearchTooBroad(scope.size, REGISTRATION_ORDER_MATCHES)
        elif request.offset < scope.size and request.limit > 0:
            read = RowRead(NAME, scope.low, scope.high, SINCE, request.descending, request.offset, request.limit)
        else:
            read = None
        return DirectoryPage(await self._read(read), scope.size)

    async def _stored(self, field: str) -> Ranges:
        stored = await self._ranges.find_one({"_id": _RANGES_ID}, {field: 1})
        return Ranges.of((stored or {}).get(field))

    async def _ranks(self, names: Ranges, low: str, high: str) -> tuple[int, int]:
        """The ranks of `low` and `high` (low < high): when one range holds both (a search that
        matches fewer users than a range holds), one read of that range's names up to `high`."""
        index = names.index_of(low)
        if index != names.index_of(high):
            return await self._rank(names, low), await self._rank(names, high)
        cursor = self._rows.find(_between(NAME, names.lows[index], high), {NAME: 1, "_id": 0})
        keys = [row[NAME] async for row in cursor]
        before = names.before(index)
        return before + sum(1 for key in keys if key < low), before + len(keys)

    async def _rank(self, names: Ranges, key: str) -> int:
        """How many listed names sort before `key`: the ranges' counts, and a count within the
        one range that holds it."""
        index = names.index_of(key)
        low = names.lows[index]
        inside = await self._rows.count_documents(_between(NAME, low, key)) if low != key else 0
        return names.before(index) + inside

    async def _read(self, read: RowRead | None) -> list[ListedUserRecord]:
        if read is None:
            return []
        cursor = self._rows.find(_between(read.field, read.low, read.high), _SHOWN) \
            .sort(read.order, -1 if read.descending else 1).skip(read.skip).limit(read.limit)
        return [ListedUserRecord.of(row) async for row in cursor]


def image_version(user: dict[str, Any]) -> int | None:
    """The version of a user document's profile image, None without one."""
    image = user.get("profile_image")
    return image.get("version") if image else None
