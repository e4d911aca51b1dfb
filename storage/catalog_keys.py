"""The catalog's sort and search keys, kept in the process, so that a list ordered by name or
searched costs one read of the user's list plus reads proportional to the page, never a join of
the whole list against the catalog (which took seconds for 5,000 statuses).

What is kept: for a series, its sort title in each language, its search text, its type and its
18+ flag; for a volume, its reading order, its search name and its 18+ flag. Only what the catalog import writes, so only an import
changes it. Entries are read on first use, 100 ids a query, and kept: memory follows the series
and volumes that are on someone's list, not the whole catalog (measured in docs/performance.md: about
0.2 KB a series).

Freshness, with any number of processes: every import raises `catalog_meta.version` after its
writes. A read that used the keys fetches the page's catalog documents together with that version
(one `$unionWith`, no extra round trip); if it moved, the keys are dropped and the page made
again. So the page after an import already shows its titles and aliases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from languages import FALLBACK

VERSION_ID = "catalog"  # the `catalog_meta` document that holds the version
# SecantusDB's `$in` costs grow with the square of its list; 100 ids a query stays cheap.
IN_CHUNK = 100
# Enough for every series of a 100,000-series catalog and 250,000 owned volumes; beyond it the
# table starts over (and refills as pages need it) rather than growing without end.
MAX_SERIES = 150_000
MAX_VOLUMES = 250_000
# A page ordered with the keys is made again at most this often when imports keep changing the
# catalog meanwhile (then the last attempt's page is answered).
ORDER_ATTEMPTS = 3
# The search text's parts, joined by a character no search term holds (a term never matches
# across two titles).
_SEPARATOR = "\x00"


class SeriesKeys:
    __slots__ = ("title", "titles", "search", "type", "nsfw18")

    def __init__(self, sort_titles: dict[str, str], search_text: list[str], type: str | None = None,
                 nsfw18: bool = False) -> None:
        # What reading statistics count by, and what a public list hides from anonymous viewers.
        self.type = type
        self.nsfw18 = nsfw18
        self.title: str = sort_titles.get(FALLBACK, "")
        # Only the languages whose title differs from the English one (most series have none or
        # one or two), as pairs: a tuple takes a third of a small dict's memory.
        self.titles: tuple[tuple[str, str], ...] | None = tuple(
            (code, title) for code, title in sort_titles.items() if title != self.title) or None
        self.search: str = _SEPARATOR.join(search_text)

    def sort_title(self, language: str) -> str:
        if self.titles:
            for code, title in self.titles:
                if code == language:
                    return title
        return self.title

    def matches(self, term: str) -> bool:
        """`term` casefolded: whether the name or an alias contains it."""
        return _SEPARATOR not in term and term in self.search


class VolumeKeys:
    __slots__ = ("group_order", "search", "nsfw18")

    def __init__(self, group_order: int | None, search_name: str, nsfw18: bool = False) -> None:
        self.group_order = group_order
        self.search = search_name
        self.nsfw18 = nsfw18

    def matches(self, term: str) -> bool:
        return term in self.search


@dataclass(frozen=True)
class Keys:
    """The keys of some ids, as of catalog `version`: `None` for an id the catalog lacks."""

    of: dict[int, Any]
    version: int


async def catalog_version(db: AsyncDatabase[dict[str, Any]]) -> int:
    found = await db["catalog_meta"].find_one({"_id": VERSION_ID}, {"version": 1})
    return int(found["version"]) if found else 0


async def publish_catalog_change(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Called by an import after its writes: every process drops its keys at its next page."""
    await db["catalog_meta"].update_one({"_id": VERSION_ID}, {"$inc": {"version": 1}}, upsert=True)


def _series_keys(document: dict[str, Any]) -> SeriesKeys:
    return SeriesKeys(document.get("sort_titles") or {}, document.get("search_text") or [], document.get("type"),
                      bool(document.get("nsfw18")))


def _volume_keys(document: dict[str, Any]) -> VolumeKeys:
    return VolumeKeys(document.get("group_order"), document.get("search_name") or "", bool(document.get("nsfw18")))


@dataclass(frozen=True)
class _Table:
    collection: str
    projection: dict[str, int]
    make: Any  # document -> keys
    limit: int


_SERIES = _Table("series", {"sort_titles": 1, "search_text": 1, "type": 1, "nsfw18": 1}, _series_keys, MAX_SERIES)
_VOLUMES = _Table("volumes", {"group_order": 1, "search_name": 1, "nsfw18": 1}, _volume_keys, MAX_VOLUMES)


class CatalogKeys:
    """One per process. Every request may use it at once: a table is replaced, never emptied in
    place, so keys handed out stay whole."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._version: int | None = None  # None: not read yet
        self._tables: dict[str, dict[int, Any]] = {"series": {}, "volumes": {}}
        self.loads = 0  # catalog queries made to fill the tables (for tests and benchmarks)

    async def series(self, ids: Iterable[int]) -> Keys:
        return await self._keys(_SERIES, ids)

    async def volumes(self, ids: Iterable[int]) -> Keys:
        return await self._keys(_VOLUMES, ids)

    async def _keys(self, table: _Table, ids: Iterable[int]) -> Keys:
        wanted = set(ids)
        while True:
            if self._version is None:
                # Read before any key: keys read after it are at least as new as the version.
                self._version = await catalog_version(self._db)
            version, entries = self._version, self._tables[table.collection]
            missing = sorted(i for i in wanted if i not in entries)
            for start in range(0, len(missing), IN_CHUNK):
                chunk = missing[start: start + IN_CHUNK]
                found = {document["_id"]: table.make(document) async for document in
                         self._db[table.collection].find({"_id": {"$in": chunk}}, table.projection)}
                self.loads += 1
                entries.update({i: found.get(i) for i in chunk})
            if self._version == version and self._tables[table.collection] is entries:
                if len(entries) > table.limit:
                    self._tables[table.collection] = {}  # start over; these keys stay whole
                return Keys(entries, version)
            # The catalog changed while reading: read again into the new table.

    async def read_current(self, collection: AsyncCollection[dict[str, Any]], pipeline: list[dict[str, Any]],
                           keys_version: int) -> tuple[list[dict[str, Any]], bool]:
        """The page's documents, read together with the catalog version, and whether that is
        still `keys_version`. If not, the keys are dropped and the caller orders again."""
        union = {"$unionWith": {"coll": "catalog_meta", "pipeline": [{"$match": {"_id": VERSION_ID}}]}}
        documents = await (await collection.aggregate([*pipeline, union])).to_list(length=None)
        found = [d for d in documents if d["_id"] != VERSION_ID]
        version = next((int(d["version"]) for d in documents if d["_id"] == VERSION_ID), 0)
        if self._version is None or version > self._version:
            self._version = version
            self._tables = {"series": {}, "volumes": {}}
        return found, version == keys_version
