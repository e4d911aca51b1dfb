"""The catalog (`series`, `volumes`): validating an import file and upserting it idempotently.

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

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure
from pymongo.results import BulkWriteResult

from languages import LANGUAGES, language_code, localized
from storage.catalog_keys import publish_catalog_change
from storage.series_browse import mark_listing_stale, publish_listing
from storage.title_keys import title_keys

VOLUME_CARD_FIELDS = ("cover_path", "nsfw", "nsfw18", "aspect_ratio")
LAYOUT_ID = "layout"  # the `catalog_meta` document that says which layout changes are complete
EXTERNAL_IDS = ("mal_id", "anilist_id", "mangadex_id")
DUPLICATE_KEY = 11000
SHARED_SLUG_INDEX = "slug_shared"  # the plain index of a database whose slugs are not yet unique
log = logging.getLogger("tsundoku.catalog")


class CatalogFileError(ValueError):
    """The first bad entry of a catalog file, named by its path: `series[3].volumes[0].pages`."""


Flag = Annotated[int, Field(ge=0, le=1)]
PositiveId = Annotated[StrictInt, Field(gt=0)]
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
    client: PositiveId
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
        seen_series: set[int] = set()
        seen_volumes: set[int] = set()
        seen_external: dict[tuple[str, int | str], int] = {}
        # Slugs are unique indexes: a duplicate would fail the import halfway through its writes.
        seen_series_slugs: set[str] = set()
        seen_volume_slugs: set[str] = set()
        for i, series in enumerate(self.series):
            if series.id in seen_series:
                raise ValueError(f"series[{i}].id: duplicate series id {series.id}")
            seen_series.add(series.id)
            if series.slug in seen_series_slugs:
                raise ValueError(f"series[{i}].slug: duplicate series slug {series.slug}")
            seen_series_slugs.add(series.slug)
            for name, value in series.external_ids().items():
                if (name, value) in seen_external:
                    raise ValueError(f"series[{i}].{name}: {value} is also series "
                                     f"{seen_external[name, value]}'s")
                seen_external[name, value] = series.id
            for j, volume in enumerate(series.volumes):
                if volume.id in seen_volumes:
                    raise ValueError(f"series[{i}].volumes[{j}].id: duplicate volume id {volume.id}")
                seen_volumes.add(volume.id)
                slug = volume_slug(series, volume)
                if slug in seen_volume_slugs:
                    raise ValueError(f"series[{i}].volumes[{j}].slug: duplicate volume slug {slug}")
                seen_volume_slugs.add(slug)
        return self


def volume_slug(series: CatalogSeries, volume: CatalogVolume) -> str:
    return volume.slug or f"{series.slug}-{volume.id}"


def _location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def read_catalog_file(path: Path) -> CatalogFile:
    """Parses and validates the whole file; raises CatalogFileError naming the first bad entry."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogFileError(f"cannot read {path}: {error.strerror}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise CatalogFileError(f"{path} is not valid JSON: {error}") from None
    try:
        return CatalogFile.model_validate(raw)
    except ValidationError as failure:
        first = failure.errors(include_url=False)[0]
        where = _location(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise CatalogFileError(f"{where}: {message}" if where else message) from None


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


async def _bulk_write(collection: AsyncCollection[dict[str, Any]], ops: list[UpdateOne],
                      refused: list[CatalogFileError]) -> BulkWriteResult | None:
    """The upserts. A slug a stored entry outside the file already holds is added to `refused`:
    found by the unique index rather than looked up first (a million volumes' slugs would be ten
    thousand lookups), so the file's other entries are written, and the file, fixed, imports again."""
    if not ops:
        return None
    try:
        return await collection.bulk_write(ops, ordered=False)
    except BulkWriteError as failure:
        taken = [error["keyValue"]["slug"] for error in failure.details.get("writeErrors", [])
                 if error.get("code") == DUPLICATE_KEY and "slug" in (error.get("keyValue") or {})]
        if len(taken) < len(failure.details.get("writeErrors", [])):
            raise
        refused.append(CatalogFileError(f"{collection.name}: slug {taken[0]} belongs to another entry, which this "
                                        f"file does not change ({len(taken)} such slugs; the file's other entries "
                                        f"were imported)"))
        return None


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
        for name in EXTERNAL_IDS:
            await self._series.create_index(name, name=f"{name}_unique", unique=True, sparse=True)
        await self._series.create_index("match_titles", name="match_titles")
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
        return await self._series.count_documents({}, limit=1) == 0

    async def import_file(self, catalog: CatalogFile) -> ImportCounts:
        """Raises CatalogFileError, before writing anything, when the file gives a series an
        external id another stored series holds and keeps; and, after writing the rest, when it
        gives a series or a volume a slug another stored one holds."""
        await self._release_moved_external_ids(catalog)
        series_ops = [
            UpdateOne(
                {"_id": s.id},
                {"$set": {**series_document(s), **s.external_ids()},
                 "$setOnInsert": {"rating_count": 0, "rating_half_points": 0},
                 **({"$unset": absent} if (absent := {name: "" for name in EXTERNAL_IDS
                                                      if getattr(s, name) is None}) else {})},
                upsert=True,
            )
            for s in catalog.series
        ]
        volume_ops = [
            UpdateOne({"_id": v.id}, {"$set": volume_document(s, v)}, upsert=True)
            for s in catalog.series
            for v in s.volumes
        ]
        refused: list[CatalogFileError] = []
        await mark_listing_stale(self._db)
        series_result = await _bulk_write(self._series, series_ops, refused)
        volume_result = await _bulk_write(self._volumes, volume_ops, refused)
        await self._refresh_first_volumes({s.id for s in catalog.series})
        await publish_listing(self._db)
        await publish_catalog_change(self._db)  # after the writes: see storage.catalog_keys
        if refused:
            raise refused[0]
        return ImportCounts(
            series_inserted=series_result.upserted_count if series_result else 0,
            series_updated=series_result.modified_count if series_result else 0,
            volumes_inserted=volume_result.upserted_count if volume_result else 0,
            volumes_updated=volume_result.modified_count if volume_result else 0,
        )

    async def _release_moved_external_ids(self, catalog: CatalogFile) -> None:
        """An external id the file moves from one of its series to another is taken off the
        first before the upserts (which run in any order) give it to the second. One the file
        gives away while a series outside the file holds it is refused."""
        in_file = {s.id: s for s in catalog.series}
        wanted: dict[tuple[str, object], int] = {(name, value): s.id for s in catalog.series for name, value in s.external_ids().items()}
        holders_filter = [{name: {"$in": [v for (n, v) in wanted if n == name]}} for name in EXTERNAL_IDS
                          if any(n == name for n, _ in wanted)]
        release: dict[int, dict[str, str]] = {}
        if holders_filter:
            async for held in self._series.find({"$or": holders_filter}, dict.fromkeys(EXTERNAL_IDS, 1)):
                for name in EXTERNAL_IDS:
                    new_holder = wanted.get((name, held.get(name)))
                    if new_holder is None or new_holder == held["_id"]:
                        continue
                    if held["_id"] not in in_file:
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
        Written 1,000 at a time, so that memory follows the series' slugs, not the volumes."""
        if await self._db["catalog_meta"].find_one({"_id": LAYOUT_ID, "volumes_carry_slugs": True}):
            return 0
        series_slugs = {series["_id"]: series["slug"] async for series in self._series.find({}, {"slug": 1})
                        if series.get("slug")}
        completed, ops = 0, []
        async for volume in self._volumes.find({"slug": {"$exists": False}}, {"series_id": 1}):
            series_slug = series_slugs.get(volume["series_id"])
            if series_slug is not None:
                ops.append(UpdateOne({"_id": volume["_id"]}, {"$set": {"slug": f"{series_slug}-{volume['_id']}"}}))
            if len(ops) == 1000:
                completed += (await self._volumes.bulk_write(ops, ordered=False)).modified_count
                ops = []
        if ops:
            completed += (await self._volumes.bulk_write(ops, ordered=False)).modified_count
        await self._db["catalog_meta"].update_one({"_id": LAYOUT_ID}, {"$set": {"volumes_carry_slugs": True}},
                                                  upsert=True)
        return completed

    async def _refresh_first_volumes(self, series_ids: set[int]) -> None:
        """`first_volume` is derived from every stored volume of the series, not only those in
        this file. Offline work: one ordered pass over the volumes collection."""
        best: dict[int, tuple[tuple[bool, int, int], dict[str, Any]]] = {}
        cursor = self._volumes.find({}, {"series_id": 1, "group_order": 1, **{f: 1 for f in VOLUME_CARD_FIELDS}})
        async for volume in cursor:
            series_id = volume["series_id"]
            if series_id not in series_ids:
                continue
            order = volume.get("group_order")
            # Volumes without an order come after the ordered ones; ties go to the lower id.
            key = (order is None, order or 0, volume["_id"])
            if series_id not in best or key < best[series_id][0]:
                best[series_id] = (key, {"id": volume["_id"], **{f: volume.get(f) for f in VOLUME_CARD_FIELDS}})
        first = {series_id: card for series_id, (_, card) in best.items()}
        ops = [UpdateOne({"_id": sid}, {"$set": {"first_volume": first.get(sid)}}) for sid in series_ids]
        if ops:
            await self._series.bulk_write(ops, ordered=False)
