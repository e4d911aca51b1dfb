"""The catalog's detail answers (a series, a volume, a series' volumes) and their queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, StrictStr

from handlers.schemas.catalog import VolumeCard, series_card
from handlers.schemas.collection import TaggedCollectionEntry
from handlers.schemas.common import PAGE_FROM, PAGE_TO, PAGE_TOTAL, Count, DateText, RequestModel
from languages import language_code, localized, requested_language
from storage.catalog_pages import VolumePage
from storage.records import SeriesRecord, VolumeRecord

# What a volume of the catalog says of the signed-in reader's copy.
OWNED_ITEM = ("The signed-in reader's item of this volume, as the collection list shows it (its `item_id` for "
              "`POST /user/collection/update/{item_id}`, its `etag` for `If-Match`); null when they do not own "
              "it, and for anyone not signed in")


class DetailQuery(RequestModel):
    """`lang` as the spec names it, `user_lang` as the other routes do: either localizes."""

    lang: Annotated[StrictStr, Field(max_length=40)] | None = None
    user_lang: Annotated[StrictStr, Field(max_length=40)] | None = None

    @property
    def language(self) -> str:
        """The code titles and descriptions are shown in."""
        return requested_language(self.lang or self.user_lang)


class SeriesVolumesQuery(RequestModel):
    # A language name (`German`), or the spec's `<label>:<edition id>`, whose label is the
    # language: the catalog holds no editions, so a volume's edition is its language.
    edition: Annotated[StrictStr, Field(max_length=80)] | None = None
    limit: Annotated[int, Count(0)] | None = None  # every volume when absent
    offset: Annotated[int, Count(0, 10_000_000)] = 0

    def shows(self, volume: VolumeRecord) -> bool:
        """Whether the edition asked for (if any) holds `volume`."""
        if not self.edition:
            return True
        wanted = language_code(self.edition.split(":", 1)[0])
        return wanted is not None and language_code(volume.language) == wanted


class SeriesDetail(BaseModel):
    id: int
    name: str
    type: str | None
    slug: str | None
    origin: str | None
    client: int | None
    alias: str | None
    description: str | None
    aliases: list[str]
    tags: list[str]
    # The catalog holds none of these: answered empty, as the spec's shape has them.
    contributors: list[Any] = []
    publishers: list[Any] = []
    publisher_editions: list[Any] = []
    relations: dict[str, list[Any]] = {}
    volume: VolumeCard | None
    average_rating: float | None
    rating_count: int

    @classmethod
    def of(cls, series: SeriesRecord, language: str | None, shows_nsfw18: bool) -> Self:
        return cls(**series_card(series, language, shows_nsfw18), aliases=list(series.aliases), tags=list(series.tags))


class VolumeSeries(BaseModel):
    id: int
    name: str
    alias: str | None
    type: str | None
    slug: str | None


class VolumeNavigation(BaseModel):
    count: int
    index: int  # from 0, in the series' reading order
    prev: str | None  # the neighbours' slugs
    next: str | None


class VolumeDetail(BaseModel):
    id: int
    name: str
    slug: str | None
    language: str | None
    pages: int | None
    release_date: DateText | None
    cover_path: str | None
    aspect_ratio: float | None
    nsfw: int
    nsfw18: int
    in_collection: bool  # false for anyone not signed in
    collection: TaggedCollectionEntry | None = Field(description=OWNED_ITEM)
    series: VolumeSeries
    navigation: VolumeNavigation

    @classmethod
    def of(cls, page: VolumePage, siblings: Sequence[VolumeRecord], owned: TaggedCollectionEntry | None,
           language: str | None) -> Self:
        """`siblings`: the volumes of the series this reader may see, the page's own among them."""
        volume, series = page.volume, page.series
        ids = [v.id for v in siblings]
        index = ids.index(volume.id)
        return cls(id=volume.id, name=volume.name, slug=volume.slug, language=volume.language, pages=volume.pages,
                   release_date=volume.release_date, cover_path=volume.cover_path, aspect_ratio=volume.aspect_ratio,
                   nsfw=volume.nsfw, nsfw18=volume.nsfw18, in_collection=owned is not None, collection=owned,
                   series=VolumeSeries(id=series.id, name=series.name, type=series.type, slug=series.slug,
                                       alias=localized(series.titles, language, series.name)),
                   navigation=VolumeNavigation(count=len(ids), index=index,
                                               prev=siblings[index - 1].slug if index > 0 else None,
                                               next=siblings[index + 1].slug if index + 1 < len(ids) else None))


class SeriesVolume(BaseModel):
    id: int
    name: str
    slug: str | None
    release_date: DateText | None
    language: str | None
    pages: int | None
    nsfw: int
    nsfw18: int
    cover_path: str | None
    aspect_ratio: float | None
    in_collection: bool  # false for anyone not signed in
    collection: TaggedCollectionEntry | None = Field(description=OWNED_ITEM)

    @classmethod
    def of(cls, volume: VolumeRecord, owned: TaggedCollectionEntry | None) -> Self:
        return cls(id=volume.id, name=volume.name, slug=volume.slug, release_date=volume.release_date,
                   language=volume.language, pages=volume.pages, nsfw=volume.nsfw, nsfw18=volume.nsfw18,
                   cover_path=volume.cover_path, aspect_ratio=volume.aspect_ratio, in_collection=owned is not None,
                   collection=owned)


class SeriesVolumesPage(BaseModel):
    volumes: list[SeriesVolume]
    max: int = Field(description=PAGE_TOTAL)
    from_: int = Field(alias="from", description=PAGE_FROM)
    to: int = Field(description=PAGE_TO)

    @classmethod
    def of(cls, volumes: Sequence[SeriesVolume], total: int, offset: int) -> Self:
        return cls(volumes=list(volumes), max=total, to=offset + len(volumes), **{"from": offset})
