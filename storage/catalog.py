"""The catalog (`series`, `volumes`): validating an import file and writing it idempotently, a
chunk of series at a time (memory follows the chunk, not the file).

The service reads the catalog but never edits it over HTTP. Each series document also carries
fields derived at import, so that reading lists sort and search without per-request work:
`titles` and `descriptions` by language code, `sort_titles` (the casefolded title each language
shows, after fallback), `search_text` (casefolded name and aliases), `match_titles` (the keys an
import matches titles by: storage.title_keys) and `first_volume`. After its writes an import
stores the series listing the list routes walk (storage.series_browse).

A series may carry its ids in other catalogs (`mal_id`, `anilist_id`, `mangadex_id`): each is
unique among series when present (a sparse unique index), and a series without one does not
hold the field at all, so that any number of series can lack it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from array import array
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pymongo import IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from languages import LANGUAGES, language_code, localized
from storage.catalog_keys import IN_CHUNK, publish_catalog_change
from storage.series_browse import mark_listing_stale, publish_listing
from storage.title_keys import title_keys
from workers import off_the_loop

VOLUME_CARD_FIELDS = ("cover_path", "nsfw", "nsfw18", "aspect_ratio")
LAYOUT_ID = "layout"  # the `catalog_meta` document that says which layout changes are complete
EXTERNAL_IDS = ("mal_id", "anilist_id", "mangadex_id")
DUPLICATE_KEY = 11000
SHARED_SLUG_INDEX = "slug_shared"  # the plain index of a database whose slugs are not yet unique
# An import holds this many series (and their volumes) of a file at a time, and writes them
# together (settings.catalog_import_chunk; formats.catalog_file reads them). Measured with ten
# volumes a series: the importer peaked at 95 MB with 500, 134 MB with 1,000, 75 MB with 100, at
# one speed.
CHUNK_SERIES = 500
# Consecutive ids from this many on are looked up as one range rather than listed.
MIN_RUN = 8
GIVEN = -1  # in Duplicates: a volume whose slug the file gives
log = logging.getLogger("tsundoku.catalog")


class CatalogFileError(ValueError):
    """The first bad entry of a catalog file, named by its path: `series[3].volumes[0].pages`."""


Flag = Annotated[int, Field(ge=0, le=1)]
PositiveId = Annotated[StrictInt, Field(gt=0)]
# The largest client: 15 digits, which the API takes as a number or as its text (a pattern cannot
# say "at most 2^53" of a 16-digit text); a series of a larger client could never be asked for.
MAX_CLIENT = 10**15 - 1
Text = Annotated[StrictStr, Field(min_length=1, max_length=1000)]
Slug = Annotated[StrictStr, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=200)]
MangaDexId = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


def _known_language(value: str) -> str:
    if language_code(value) is None:
        raise ValueError(f"unknown language; known: {', '.join(LANGUAGES.values())}")
    return value


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CatalogAlias(_Entry):
    title: Text
    language: StrictStr

    _language = field_validator("language")(_known_language)


class CatalogDescription(_Entry):
    description: Annotated[StrictStr, Field(max_length=20000)]
    language: StrictStr

    _language = field_validator("language")(_known_language)


class CatalogVolume(_Entry):
    id: PositiveId
    name: Text
    # Unique among volumes; without one, a volume's slug is its series' slug and its id
    # (`volume_slug`), so that every volume imported has one.
    slug: Slug | None = None
    group_order: StrictInt | None = None
    language: StrictStr | None = None
    release_date: dt.date | None = None
    pages: Annotated[StrictInt, Field(gt=0)] | None = None
    isbn13: Annotated[StrictStr, Field(pattern=r"^\d{13}$")] | None = None
    nsfw: Flag = 0
    nsfw18: Flag = 0
    cover_path: StrictStr | None = None
    aspect_ratio: Annotated[float, Field(gt=0, le=10)] | None = None


class CatalogSeries(_Entry):
    id: PositiveId
    name: Text
    type: Text
    slug: Slug
    client: Annotated[StrictInt, Field(gt=0, le=MAX_CLIENT)]
    origin: StrictStr | None = None
    nsfw: Flag = 0
    nsfw18: Flag = 0
    aliases: list[CatalogAlias] = []
    descriptions: list[CatalogDescription] = []
    tags: Annotated[list[Annotated[StrictStr, Field(min_length=1, max_length=100)]], Field(max_length=100)] = []
    volumes: list[CatalogVolume] = []
    # Ids in other catalogs, for imports from other trackers: MyAnimeList and AniList number
    # their series; MangaDex names them by UUID.
    mal_id: PositiveId | None = None
    anilist_id: PositiveId | None = None
    mangadex_id: MangaDexId | None = None

    def external_ids(self) -> dict[str, int | str]:
        return {name: getattr(self, name) for name in EXTERNAL_IDS if getattr(self, name) is not None}


class CatalogFile(_Entry):
    series: list[CatalogSeries]

    @model_validator(mode="after")
    def _unique_ids(self) -> CatalogFile:
        duplicates = Duplicates()
        for i, series in enumerate(self.series):
            duplicates.add(i, series)
        return self


@dataclass(frozen=True)
class FileSeries:
    """What the import needs of a whole checked file before it writes: its series' ids, and
    their external ids (name -> value -> series id)."""

    ids: set[int]
    external: dict[str, dict[int | str, int]]


class _VolumeIds:
    """Volume id -> an int other than 0 (0: not seen). While the ids are dense (as a catalog's
    mostly are: below four times how many there are), an array indexed by id, 4 bytes an id,
    where a dict of a million ints took 70 MB; once they are not, a dict."""

    def __init__(self) -> None:
        self._dense: array[int] | None = array("i")
        self._sparse: dict[int, int] = {}
        self._count = 0

    def get(self, volume_id: int) -> int:
        if self._dense is None:
            return self._sparse.get(volume_id, 0)
        return self._dense[volume_id] if volume_id < len(self._dense) else 0

    def set(self, volume_id: int, value: int) -> None:
        self._count += 1
        if self._dense is not None and volume_id >= len(self._dense):
            if volume_id >= max(1 << 20, 4 * self._count):
                self._sparse = {i: v for i, v in enumerate(self._dense) if v}
                self._dense = None
            else:
                self._dense.frombytes(bytes(4 * max(volume_id + 1 - len(self._dense), len(self._dense))))
        if self._dense is None:
            self._sparse[volume_id] = value
        else:
            self._dense[volume_id] = value


class Duplicates:
    """Finds an entry that repeats an id or slug of an earlier one, in one pass over a file,
    holding ints and the series' slugs rather than entries (about 4 bytes a volume and 150 a
    series)."""

    def __init__(self) -> None:
        self.series = FileSeries(set(), {name: {} for name in EXTERNAL_IDS})
        # Slugs are unique indexes: a duplicate would fail the import halfway through its writes.
        self._series_slugs: set[str] = set()
        self._series_in_order: list[str] = []  # their slugs
        # A volume's id -> its series' place in the file (from 1) when its own slug is derived
        # from the series' slug and its id, GIVEN when not. Derived slugs cannot repeat, since the
        # ids do not; so the only volume slugs held are the given ones, and a given one is
        # compared with the derived ones by the series slug and id it would be derived from.
        self._volumes = _VolumeIds()
        self._given_volume_slugs: set[str] = set()

    def add(self, i: int, series: CatalogSeries) -> None:
        """Raises ValueError naming the first entry of `series`, the file's `i`th, that repeats."""
        if series.id in self.series.ids:
            raise ValueError(f"series[{i}].id: duplicate series id {series.id}")
        self.series.ids.add(series.id)
        if series.slug in self._series_slugs:
            raise ValueError(f"series[{i}].slug: duplicate series slug {series.slug}")
        self._series_slugs.add(series.slug)
        self._series_in_order.append(series.slug)
        for name, value in series.external_ids().items():
            holders = self.series.external[name]
            if value in holders:
                raise ValueError(f"series[{i}].{name}: {value} is also series {holders[value]}'s")
            holders[value] = series.id
        for j, volume in enumerate(series.volumes):
            if self._volumes.get(volume.id):
                raise ValueError(f"series[{i}].volumes[{j}].id: duplicate volume id {volume.id}")
            slug = volume_slug(series, volume)
            if slug in self._given_volume_slugs or (volume.slug is not None and self._derived_earlier(slug)):
                raise ValueError(f"series[{i}].volumes[{j}].slug: duplicate volume slug {slug}")
            if volume.slug is None:
                self._volumes.set(volume.id, len(self._series_in_order))
            else:
                self._volumes.set(volume.id, GIVEN)
                self._given_volume_slugs.add(slug)

    def _derived_earlier(self, slug: str) -> bool:
        series_slug, _, volume_id = slug.rpartition("-")
        if not (volume_id.isascii() and volume_id.isdigit() and not volume_id.startswith("0")):
            return False
        place = self._volumes.get(int(volume_id))
        return place > 0 and self._series_in_order[place - 1] == series_slug


def volume_slug(series: CatalogSeries, volume: CatalogVolume) -> str:
    return volume.slug or f"{series.slug}-{volume.id}"


def _by_language(pairs: list[tuple[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for language, text in pairs:
        code = language_code(language)
        if code and code not in result:
            result[code] = text
    return result


def series_document(series: CatalogSeries) -> dict[str, Any]:
    """The stored fields of a series (without `first_volume` and the rating aggregates)."""
    titles = series_card(series)["titles"]
    return {
        "name": series.name,
        "type": series.type,
        "slug": series.slug,
        "client": series.client,
        "origin": series.origin,
        "nsfw": series.nsfw,
        "nsfw18": series.nsfw18,
        "aliases": [a.model_dump() for a in series.aliases],
        "tags": series.tags,
        "titles": titles,
        "descriptions": _by_language([(d.language, d.description) for d in series.descriptions]),
        "sort_titles": {code: (localized(titles, code, series.name) or "").casefold() for code in LANGUAGES},
        "search_text": sorted({series.name.casefold(), *(a.title.casefold() for a in series.aliases)}),
        "match_titles": title_keys(series.name, *(a.title for a in series.aliases)),
    }


def series_card(series: CatalogSeries) -> dict[str, Any]:
    """What a collection page shows of a volume's series."""
    return {"name": series.name, "type": series.type,
            "titles": _by_language([(a.language, a.title) for a in series.aliases])}


def volume_document(series: CatalogSeries, volume: CatalogVolume) -> dict[str, Any]:
    document = volume.model_dump(exclude={"id"})
    document["series_id"] = series.id
    # Copied from the series, which the import writes in the same pass: a collection item knows
    # its client without a second read, and a collection page reads its volumes and nothing else.
    document["client"] = series.client
    document["series"] = series_card(series)
    document["slug"] = volume_slug(series, volume)
    document["search_name"] = volume.name.casefold()
    document["release_date"] = volume.release_date.isoformat() if volume.release_date else None
    return document


@dataclass
class _Chunk:
    """Series and volumes as an import writes them, by id: their stored fields (a series' without
    `first_volume`), and the external ids each series does not have."""

    series: dict[int, dict[str, Any]]
    absent: dict[int, list[str]]
    volumes: dict[int, dict[str, Any]]


def _prepared(chunks: Iterator[list[CatalogSeries]]) -> _Chunk | None:
    """The next chunk's documents; run in a worker, since it grows with the chunk."""
    batch = next(chunks, None)
    if batch is None:
        return None
    return _Chunk(series={s.id: {**series_document(s), **s.external_ids()} for s in batch},
                  absent={s.id: [name for name in EXTERNAL_IDS if getattr(s, name) is None] for s in batch},
                  volumes={v.id: volume_document(s, v) for s in batch for v in s.volumes})


_ABSENT = object()


def _changes(stored: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The fields whose stored value differs: what a `$set` of them all would modify."""
    return {name: value for name, value in fields.items() if stored.get(name, _ABSENT) != value}


def _first_volume_cards(volumes: Iterable[tuple[int, dict[str, Any]]],
                        series_ids: Container[int]) -> dict[int, dict[str, Any]]:
    """The first volume of each of `series_ids` among `volumes` (id, document)."""
    best: dict[int, tuple[tuple[bool, int, int], dict[str, Any]]] = {}
    for volume_id, volume in volumes:
        series_id: int = volume["series_id"]
        if series_id not in series_ids:
            continue
        order = volume.get("group_order")
        # Volumes without an order come after the ordered ones; ties go to the lower id.
        key = (order is None, order or 0, volume_id)
        if series_id not in best or key < best[series_id][0]:
            best[series_id] = (key, {"id": volume_id, **{f: volume.get(f) for f in VOLUME_CARD_FIELDS}})
    return {series_id: card for series_id, (_, card) in best.items()}


def _runs(values: Iterable[int]) -> tuple[list[tuple[int, int]], list[int]]:
    """`values` as ranges of at least MIN_RUN consecutive ints (every int in a range is one of
    them), and the rest."""
    ranges: list[tuple[int, int]] = []
    scattered: list[int] = []
    ordered = sorted(set(values))
    start = 0
    for end in range(1, len(ordered) + 1):
        if end == len(ordered) or ordered[end] != ordered[end - 1] + 1:
            if end - start >= MIN_RUN:
                ranges.append((ordered[start], ordered[end - 1]))
            else:
                scattered.extend(ordered[start:end])
            start = end
    return ranges, scattered


class _Refusals:
    """Slugs a stored entry outside the file already holds. Found by the unique index as the
    writes meet them rather than looked up first (a million volumes' slugs would be ten thousand
    lookups), so the file's other entries are written, and the file, fixed, imports again."""

    def __init__(self) -> None:
        self._taken: dict[str, tuple[str, int]] = {}  # collection -> (the first slug, how many)

    def refused(self, collection: AsyncCollection[dict[str, Any]], clashes: dict[int, dict[str, Any]]) -> set[int]:
        """`clashes`: the id and unique key (keyValue) of each write a unique index refused, of
        entries not stored. Returns their ids; raises for a key that is not a slug."""
        for key in clashes.values():
            if "slug" not in key:
                raise DuplicateKeyError(f"{collection.name}: {key} is another entry's", DUPLICATE_KEY)
        if clashes:
            first, count = self._taken.get(collection.name, (next(iter(clashes.values()))["slug"], 0))
            self._taken[collection.name] = (first, count + len(clashes))
        return set(clashes)

    def error(self) -> CatalogFileError | None:
        for name in ("series", "volumes"):
            if name in self._taken:
                slug, count = self._taken[name]
                return CatalogFileError(f"{name}: slug {slug} belongs to another entry, which this file does not "
                                        f"change ({count} such slugs; the file's other entries were imported)")
        return None


@dataclass
class _Tally:
    series_inserted: int = 0
    series_updated: int = 0
    volumes_inserted: int = 0
    volumes_updated: int = 0


@dataclass(frozen=True)
class ImportCounts:
    series_inserted: int
    series_updated: int
    volumes_inserted: int
    volumes_updated: int


class CatalogStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._series = db["series"]
        self._volumes = db["volumes"]

    async def ensure_indexes(self) -> None:
        # One command for these indexes (the slug index has its own): each command is a round
        # trip, and a test database is prepared for every test.
        await self._series.create_indexes(
            [IndexModel(name, name=f"{name}_unique", unique=True, sparse=True) for name in EXTERNAL_IDS]
            + [IndexModel("match_titles", name="match_titles")])
        # The detail routes find a series or a volume by its slug, and a series' volumes by the series.
        # Sparse: an import always writes a slug, but volumes imported before volumes had slugs
        # hold none until imported again.
        await self._ensure_slug_index(self._series)
        await self._ensure_slug_index(self._volumes)
        await self._volumes.create_index("series_id", name="series_id")

    async def _ensure_slug_index(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        """A slug names one entry, so its index is unique. A database whose entries already share a
        slug (imported before slugs were checked) cannot build it; refusing to start over it would
        take every route down for a catalog fault, so the service starts with a plain index under
        another name (the slug routes stay indexed and answer the lowest id), and says at each start
        which slugs to fix. The first start after an import that fixes them builds the unique one."""
        indexes = await collection.index_information()
        if "slug_unique" in indexes:
            return
        if SHARED_SLUG_INDEX in indexes:
            await collection.drop_index(SHARED_SLUG_INDEX)  # two indexes cannot share a key
        try:
            await collection.create_index("slug", name="slug_unique", unique=True, sparse=True)
            return
        except OperationFailure as failure:
            if failure.code != DUPLICATE_KEY:
                raise
        await collection.create_index("slug", name=SHARED_SLUG_INDEX, sparse=True)
        shared = [group["_id"] async for group in await collection.aggregate([
            {"$match": {"slug": {"$exists": True}}},
            {"$group": {"_id": "$slug", "entries": {"$sum": 1}}},
            {"$match": {"entries": {"$gt": 1}}},
            {"$limit": 5},
        ])]
        log.warning("%s: entries share a slug (%s), so slugs are not yet unique: a shared slug shows the lowest "
                    "id. Give each its own slug in the catalog file and run import-catalog again",
                    collection.name, ", ".join(shared))

    async def is_empty(self) -> bool:
        # A point read: SecantusDB counts by reading documents, and `count_documents({}, limit=1)`
        # read every series (4 to 6 s a start at 100,000).
        return await self._series.find_one({}, {"_id": 1}) is None

    async def import_file(self, catalog: CatalogFile, chunk_series: int = CHUNK_SERIES) -> ImportCounts:
        """A file read whole (a small one: the demo catalog, tests); see `import_chunks`."""
        duplicates = Duplicates()
        for i, series in enumerate(catalog.series):
            duplicates.add(i, series)
        every = catalog.series
        return await self.import_chunks(
            duplicates.series, (every[start:start + chunk_series] for start in range(0, len(every), chunk_series)))

    async def import_chunks(self, file: FileSeries, chunks: Iterator[list[CatalogSeries]]) -> ImportCounts:
        """Writes a checked file's series a chunk at a time: what is not stored yet is inserted,
        what is stored is updated only where it differs (so the same file imported again writes
        nothing), and the next chunk is read and prepared in a worker while one is written.

        Raises CatalogFileError, before writing anything, when the file gives a series an
        external id another stored series holds and keeps; and, after writing the rest, when it
        gives a series or a volume a slug another stored one holds. Stopped halfway, an import
        leaves whole chunks written and perhaps part of the next (its volumes before its series);
        the same import run again completes it."""
        await mark_listing_stale(self._db)  # a stop before the listing is stored leaves it for the next start
        await self._release_moved_external_ids(file)
        tally, refusals, moved_from = _Tally(), _Refusals(), set[int]()
        upcoming = asyncio.ensure_future(off_the_loop(None, _prepared, chunks))
        try:
            while (chunk := await upcoming) is not None:
                upcoming = asyncio.ensure_future(off_the_loop(None, _prepared, chunks))
                changed = await self._write_chunk(chunk, tally, refusals, moved_from)
                log.debug("catalog import: %d series and %d volumes written (%s)", len(chunk.series),
                          len(chunk.volumes), tally)
                if changed:
                    # Stored entries changed: every process drops its keys now rather than only
                    # at the end, which an import stopped halfway never reaches.
                    await publish_catalog_change(self._db)
        finally:
            # The worker is not left reading the file; an error of its own is not the one to report.
            await asyncio.wait([upcoming])
            if not upcoming.cancelled():
                upcoming.exception()
        await self._refresh_first_volumes(moved_from)
        await publish_listing(self._db)
        await publish_catalog_change(self._db)  # after the writes: see storage.catalog_keys
        refused = refusals.error()
        if refused is not None:
            raise refused
        return ImportCounts(tally.series_inserted, tally.series_updated, tally.volumes_inserted, tally.volumes_updated)

    async def _write_chunk(self, chunk: _Chunk, tally: _Tally, refusals: _Refusals, moved_from: set[int]) -> bool:
        """Returns whether stored entries changed. Adds to `moved_from` the series outside the
        chunk that a volume moved away from."""
        # Volumes first: a series the service shows has its first volume stored. Every stored
        # volume of these series is read: their first volumes are derived from all of them.
        stored_volumes = await self._stored(self._volumes, "series_id", list(chunk.series))
        inserted, changed_volumes, refused = await self._write(self._volumes, chunk.volumes, stored_volumes, refusals)
        tally.volumes_inserted += inserted
        tally.volumes_updated += len(changed_volumes)
        for i, volume in chunk.volumes.items():
            was = stored_volumes.get(i, {}).get("series_id")
            if was is not None and was != volume["series_id"] and was not in chunk.series:
                moved_from.add(was)
        written = {i: volume for i, volume in chunk.volumes.items() if i not in refused}
        kept = ((i, volume) for i, volume in stored_volumes.items() if i not in written)
        first = _first_volume_cards(chain(kept, written.items()), chunk.series)

        stored_series = await self._stored(self._series, "_id", list(chunk.series))
        inserted, changed_series, _ = await self._write(
            self._series, {i: {**fields, "first_volume": first.get(i)} for i, fields in chunk.series.items()},
            stored_series, refusals, absent=chunk.absent, on_insert={"rating_count": 0, "rating_half_points": 0})
        tally.series_inserted += inserted
        # A new first volume alone is its volumes' change.
        tally.series_updated += sum(1 for fields, unset in changed_series.values()
                                    if unset or fields.keys() - {"first_volume"})
        return bool(changed_volumes or changed_series)

    async def _write(self, collection: AsyncCollection[dict[str, Any]], documents: dict[int, dict[str, Any]],
                     stored: dict[int, dict[str, Any]], refusals: _Refusals, *,
                     absent: dict[int, list[str]] | None = None, on_insert: dict[str, Any] | None = None,
                     ) -> tuple[int, dict[int, tuple[dict[str, Any], list[str]]], set[int]]:
        """Inserts the `documents` not `stored` (with `on_insert`), and updates the others where
        they differ (`absent`: id -> fields to remove). Returns how many were inserted, the
        changes made (id -> (fields set, fields removed)) and the ids refused for their slug.

        One insert of many documents costs SecantusDB a commit per thousand, where an upsert costs
        a journaled commit each. An insert that a unique index refuses is of an entry stored after
        all (under another series, for a volume: SecantusDB then names the slug, not the id), or
        of a slug another entry holds: looked up to tell which, and `stored` gains what is found."""
        new = [i for i in documents if i not in stored]
        clashes = await self._insert(collection, [{"_id": i, **documents[i], **(on_insert or {})} for i in new])
        stored.update(await self._stored(collection, "_id", sorted(clashes)))
        refused = refusals.refused(collection, {i: key for i, key in clashes.items() if i not in stored})
        updates: dict[int, tuple[dict[str, Any], list[str]]] = {}
        for i, document in documents.items():
            if i in stored:
                changes = _changes(stored[i], document)
                unset = [name for name in (absent or {}).get(i, ()) if name in stored[i]]
                if changes or unset:
                    updates[i] = (changes, unset)
        refused |= await self._update(collection, updates, refusals)
        return (len(new) - len(clashes), {i: change for i, change in updates.items() if i not in refused},
                refused)

    async def _stored(self, collection: AsyncCollection[dict[str, Any]], field: str, values: list[int],
                      projection: dict[str, int] | None = None) -> dict[int, dict[str, Any]]:
        """The stored documents whose `field` is one of `values` (ints), by id. IN_CHUNK values
        a query (a thousand in one `$in` cost SecantusDB 0.7 s, ten of a hundred 0.04 s); but a
        run of consecutive values of an indexed field (a file's series ids mostly are) is one
        range query. Not of `_id`: SecantusDB scans the collection for a range of it (100,000
        ids took 20 s in ranges, 3.7 s in lists)."""
        found: dict[int, dict[str, Any]] = {}
        ranges, scattered = _runs(values) if field != "_id" else ([], list(values))
        queries = [{field: {"$gte": low, "$lte": high}} for low, high in ranges] + [
            {field: {"$in": scattered[start:start + IN_CHUNK]}} for start in range(0, len(scattered), IN_CHUNK)]
        for query in queries:
            async for document in collection.find(query, projection):
                found[document["_id"]] = document
        return found

    @staticmethod
    async def _insert(collection: AsyncCollection[dict[str, Any]], documents: list[dict[str, Any]],
                      ) -> dict[int, dict[str, Any]]:
        """Returns the id and unique key of each document a unique index refused."""
        if not documents:
            return {}
        try:
            await collection.insert_many(documents, ordered=False)
        except BulkWriteError as failure:
            errors = failure.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            return {documents[error["index"]]["_id"]: error.get("keyValue") or {} for error in errors}
        return {}

    @staticmethod
    async def _update(collection: AsyncCollection[dict[str, Any]],
                      changes: dict[int, tuple[dict[str, Any], list[str]]], refusals: _Refusals) -> set[int]:
        """`changes`: id -> (the fields to set, those to remove). Returns the ids refused for their slug."""
        if not changes:
            return set()
        ids = list(changes)
        operations = [UpdateOne({"_id": i}, {**({"$set": fields} if fields else {}),
                                             **({"$unset": dict.fromkeys(unset, "")} if unset else {})})
                      for i, (fields, unset) in changes.items()]
        try:
            await collection.bulk_write(operations, ordered=False)
        except BulkWriteError as failure:
            errors = failure.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            return refusals.refused(collection, {ids[error["index"]]: error.get("keyValue") or {} for error in errors})
        return set()

    async def _release_moved_external_ids(self, file: FileSeries) -> None:
        """An external id the file moves from one of its series to another is taken off the
        first before the writes (which run chunk by chunk) give it to the second. One the file
        gives away while a series outside the file holds it is refused."""
        release: dict[int, dict[str, str]] = {}
        for name, wanted in file.external.items():
            values = list(wanted)
            for start in range(0, len(values), IN_CHUNK):
                async for held in self._series.find({name: {"$in": values[start:start + IN_CHUNK]}}, {name: 1}):
                    new_holder = wanted[held[name]]
                    if new_holder == held["_id"]:
                        continue
                    if held["_id"] not in file.ids:
                        raise CatalogFileError(f"series {new_holder}: {name} {held[name]} belongs to series "
                                               f"{held['_id']}, which this file does not change")
                    release.setdefault(held["_id"], {})[name] = ""
        for series_id, names in release.items():
            await self._series.update_one({"_id": series_id}, {"$unset": names})

    async def add_match_titles(self) -> int:
        """For series imported before they carried `match_titles`: derives it from the name and
        aliases, once; later imports write it. Returns how many series it completed."""
        if await self._db["catalog_meta"].find_one({"_id": LAYOUT_ID, "series_carry_match_titles": True}):
            return 0
        ops = []
        async for series in self._series.find({"match_titles": {"$exists": False}}, {"name": 1, "aliases": 1}):
            keys = title_keys(series["name"], *(alias["title"] for alias in series.get("aliases") or []))
            ops.append(UpdateOne({"_id": series["_id"]}, {"$set": {"match_titles": keys}}))
        for start in range(0, len(ops), 1000):
            await self._series.bulk_write(ops[start:start + 1000], ordered=False)
        await self._db["catalog_meta"].update_one({"_id": LAYOUT_ID}, {"$set": {"series_carry_match_titles": True}},
                                                  upsert=True)
        return len(ops)

    async def copy_series_into_volumes(self) -> int:
        """For volumes imported before they carried their series' card (`series`): copies it
        from the series, once; later imports write it. Returns how many volumes it completed."""
        if await self._db["catalog_meta"].find_one({"_id": LAYOUT_ID, "volumes_carry_series": True}):
            return 0
        completed = 0
        async for series in self._series.find({}, {"name": 1, "type": 1, "titles": 1}):
            card = {"name": series["name"], "type": series.get("type"), "titles": series.get("titles") or {}}
            result = await self._volumes.update_many({"series_id": series["_id"], "series": {"$exists": False}},
                                                     {"$set": {"series": card}})
            completed += result.modified_count
        await self._db["catalog_meta"].update_one({"_id": LAYOUT_ID}, {"$set": {"volumes_carry_series": True}},
                                                  upsert=True)
        return completed

    async def add_volume_slugs(self) -> int:
        """For volumes imported before volumes had slugs: gives each the slug an import derives
        (its series' slug and its id), once; later imports write it. Returns how many it completed.
        A hundred series' volumes at a time, found through the `series_id` index and read whole
        before they are written: one cursor over a million volumes, kept open across the writes,
        was lost (CursorNotFound) twenty minutes in."""
        if await self._db["catalog_meta"].find_one({"_id": LAYOUT_ID, "volumes_carry_slugs": True}):
            return 0
        series_slugs = {series["_id"]: series["slug"] async for series in self._series.find({}, {"slug": 1})
                        if series.get("slug")}
        ids = sorted(series_slugs)
        completed = 0
        for start in range(0, len(ids), 100):
            block = ids[start:start + 100]
            ops = [UpdateOne({"_id": volume["_id"]},
                             {"$set": {"slug": f"{series_slugs[volume['series_id']]}-{volume['_id']}"}})
                   async for volume in self._volumes.find(
                       {"series_id": {"$gte": block[0], "$lte": block[-1]}, "slug": {"$exists": False}},
                       {"series_id": 1})
                   if volume.get("series_id") in series_slugs]
            if ops:
                completed += (await self._volumes.bulk_write(ops, ordered=False)).modified_count
        await self._db["catalog_meta"].update_one({"_id": LAYOUT_ID}, {"$set": {"volumes_carry_slugs": True}},
                                                  upsert=True)
        return completed

    async def _refresh_first_volumes(self, series_ids: set[int]) -> None:
        """For series that volumes moved away from in a chunk that did not hold the series."""
        ids = sorted(series_ids)
        for start in range(0, len(ids), IN_CHUNK):
            piece = ids[start:start + IN_CHUNK]
            volumes = await self._stored(self._volumes, "series_id", piece,
                                         {"series_id": 1, "group_order": 1, **dict.fromkeys(VOLUME_CARD_FIELDS, 1)})
            first = _first_volume_cards(volumes.items(), set(piece))
            await self._series.bulk_write([UpdateOne({"_id": i}, {"$set": {"first_volume": first.get(i)}})
                                           for i in piece], ordered=False)
