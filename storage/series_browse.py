"""The series listing (storage.series_listing) as the database keeps it, and the list routes' reads.

An import builds the listing from every series after its writes and stores it (`publish_listing`):
a few documents of at most PART_BYTES in `catalog_listing`, named by `catalog_meta.listing`. Each
process reads it when it first needs it and keeps it (about 130 bytes a series: 13 MB at 100,000).
A page is worked out in the process, then its series are read by `_id` together with
`catalog_meta.listing` (one round trip for 25 series, one for each 25 more, at once); if another
build was stored meanwhile, the process reads that one and works the page out again, so the page
after an import shows it, in every process.

The database reads a page's documents and nothing else: no index walk, no count.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from bson import Binary
from pymongo.asynchronous.database import AsyncDatabase

from languages import FALLBACK
from storage.catalog_keys import VERSION_ID
from storage.records import SeriesRecord
from storage.search_words import search_words
from storage.series_listing import (
    SERIES_FIELDS,
    ListingBuilder,
    ListingFilter,
    SeriesListing,
)
from workers import off_the_loop

LISTING_ID = "listing"  # the `catalog_meta` document that names the current build
PARTS = "catalog_listing"
PART_BYTES = 4 * 1024 * 1024
# A page is worked out again at most this often when imports keep storing new builds meanwhile
# (then the last attempt's page is answered).
ATTEMPTS = 3
# SecantusDB's `$in` costs grow with the square of its list: a page's ids are read this many a command.
IN_CHUNK = 25
log = logging.getLogger("tsundoku.catalog")


def part_id(build: str, number: int) -> str:
    return f"{build}.{number:04}"


async def publish_listing(db: AsyncDatabase[dict[str, Any]]) -> SeriesListing:
    """Builds the listing from every series, stores it and names it the current one; the builds
    it replaces are removed. Called by an import after its writes, and at start for a database
    whose listing is missing or stale (`ensure_listing`): reads the whole `series` collection."""
    builder = ListingBuilder()
    async for document in db["series"].find({}, dict.fromkeys(SERIES_FIELDS, 1), batch_size=2000):
        builder.add(document)
    build = secrets.token_hex(8)
    # Seconds of sorting at 100,000 series: off the loop, which answers the embedded database's
    # supervisor meanwhile (a loop that does not answer its write probes for 11 s has it killed).
    listing = await off_the_loop(None, builder.build, build)
    data = await off_the_loop(None, listing.to_bytes)
    parts = [data[start:start + PART_BYTES] for start in range(0, len(data), PART_BYTES)]
    for number, part in enumerate(parts):
        await db[PARTS].insert_one({"_id": part_id(build, number), "build": build, "data": Binary(part)})
    await db["catalog_meta"].replace_one({"_id": LISTING_ID}, {"build": build, "parts": len(parts),
                                                                "bytes": len(data), "series": len(listing)},
                                         upsert=True)
    await db[PARTS].delete_many({"build": {"$ne": build}})
    return listing


async def mark_listing_stale(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Called by an import before its writes: if it stops before it stores a new listing, the next
    start builds one."""
    await db["catalog_meta"].update_one({"_id": LISTING_ID}, {"$set": {"stale": True}}, upsert=True)


async def ensure_listing(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """The start-up layout step: builds the listing of a catalog imported before there was one,
    or whose last import stopped before storing it. Whether it built one."""
    pointer = await db["catalog_meta"].find_one({"_id": LISTING_ID})
    if pointer is not None and pointer.get("build") and not pointer.get("stale"):
        return False
    # Nothing was ever imported (an import publishes the catalog's version): nothing to list. A
    # point lookup: "is the series collection empty?" reads every series on SecantusDB.
    if pointer is None and await db["catalog_meta"].find_one({"_id": VERSION_ID}, {"_id": 1}) is None:
        return False
    listing = await publish_listing(db)
    log.info("catalog: built the series listing of %d series (the list routes' order, filters and words)",
             len(listing))
    return True


@dataclass(frozen=True)
class PageRequest:
    shown: ListingFilter
    search: str | None  # as the client sent it (storage.search_words splits it); None: no search
    language: str
    by_name: bool  # else in added order
    descending: bool
    offset: int
    limit: int


@dataclass(frozen=True)
class SeriesPage:
    series: list[SeriesRecord]
    total: int


# What a list item shows of a series; descriptions only in the languages it may show.
_CARD = ("name", "type", "slug", "origin", "client", "nsfw18", "aliases", "titles", "tags", "first_volume",
         "rating_count", "rating_half_points")
_QUICK = ("name", "type", "slug", "origin", "aliases")


class SeriesBrowse:
    """One per process: the listing of the last build it read, replaced when a page's read says
    another build is current. Requests may use it at once: a listing is replaced, never changed."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._listing: SeriesListing | None = None
        self._lock = asyncio.Lock()
        self.loads = 0  # listings read (for tests and benchmarks)

    async def has_nsfw18(self, client: int | None) -> bool:
        """Whether the client's catalog holds an 18+ series (else who reads a page matters not)."""
        return (await self._current()).has_nsfw18(client)

    async def page(self, request: PageRequest) -> SeriesPage:
        projection = {**dict.fromkeys(_CARD, 1), f"descriptions.{request.language}": 1, f"descriptions.{FALLBACK}": 1}
        words = None if request.search is None else search_words(request.search)
        for attempt in range(ATTEMPTS):
            listing = await self._current()
            page = listing.page(request.shown, words, request.language, request.by_name, request.descending,
                                request.offset, request.limit)
            documents, build = await self._read(page.ids, projection)
            if build == listing.build or attempt == ATTEMPTS - 1:
                return SeriesPage([SeriesRecord.of(documents[i]) for i in page.ids if i in documents], page.total)
            await self._replace(listing)
        raise AssertionError("unreachable")

    async def quick_search(self, shown: ListingFilter, search: str, limit: int) -> list[SeriesRecord]:
        words = search_words(search)
        for attempt in range(ATTEMPTS):
            listing = await self._current()
            ids = listing.quick_search(shown, words, limit)
            documents, build = await self._read(ids, dict.fromkeys(_QUICK, 1))
            if build == listing.build or attempt == ATTEMPTS - 1:
                return [SeriesRecord.of(documents[i]) for i in ids if i in documents]
            await self._replace(listing)
        raise AssertionError("unreachable")

    async def _current(self) -> SeriesListing:
        if self._listing is None:
            await self._replace(None)
        assert self._listing is not None
        return self._listing

    async def _replace(self, seen: SeriesListing | None) -> None:
        """Reads the build `catalog_meta` names in place of `seen`, once however many requests saw
        `seen` at once."""
        async with self._lock:
            if self._listing is not seen:
                return  # another request read it meanwhile
            pointer = await self._db["catalog_meta"].find_one({"_id": LISTING_ID}, {"build": 1, "parts": 1}) or {}
            build = pointer.get("build")
            names = [part_id(build, number) for number in range(int(pointer.get("parts") or 0))] if build else []
            parts = {part["_id"]: part["data"] async for part in self._db[PARTS].find({"_id": {"$in": names}})} \
                if names else {}
            if build is None or len(parts) < len(names):
                # None stored yet, or a build removed since it was named (an import finished
                # meanwhile): empty until a page's read names the next.
                self._listing = SeriesListing.empty(build)
                return
            data = b"".join(parts[name] for name in names)
            self._listing = await off_the_loop(None, SeriesListing.from_bytes, data)
            self.loads += 1

    async def _read(self, ids: list[int], projection: dict[str, int]) -> tuple[dict[int, dict[str, Any]], str | None]:
        """The series of `ids` by id, and the build `catalog_meta` names now: one round trip for
        IN_CHUNK ids or fewer, else one per chunk, at once. Never `$unionWith` over `series`:
        SecantusDB's reads the whole collection it names, and only then matches (over the
        few documents of `catalog_meta` that costs nothing)."""
        chunks = [ids[start:start + IN_CHUNK] for start in range(0, len(ids), IN_CHUNK)] or [[]]
        pointer = {"$unionWith": {"coll": "catalog_meta", "pipeline": [{"$match": {"_id": LISTING_ID}},
                                                                        {"$project": {"build": 1}}]}}

        async def with_pointer() -> list[dict[str, Any]]:
            # All in the first batch, which the answer must not fill: SecantusDB leaves the cursor
            # open after a full batch (101 by default), and a getMore follows.
            return await (await self._db["series"].aggregate(
                [{"$match": {"_id": {"$in": chunks[0]}}}, {"$project": projection}, pointer],
                batchSize=len(chunks[0]) + 2)).to_list(length=None)

        read = await asyncio.gather(with_pointer(), *(
            self._db["series"].find({"_id": {"$in": chunk}}, projection, batch_size=len(chunk) + 1).to_list(None)
            for chunk in chunks[1:]))
        documents = [document for found in read for document in found]
        build = next((d.get("build") for d in documents if d["_id"] == LISTING_ID), None)
        return {d["_id"]: d for d in documents if d["_id"] != LISTING_ID}, build
