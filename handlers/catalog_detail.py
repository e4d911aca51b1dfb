"""The catalog's detail pages, public: `GET /series/slug/{slug}` (a series), `GET /volumes/slug/{slug}`
(a volume, with its neighbours in the series) and `GET /series/volumes/{id}` (a series' volumes
in reading order, paged).

No session is needed. When a session cookie comes, it is read (never refreshed or cleared: these
are GETs any page may link to): the volume routes then say which volumes the reader owns. A series
flagged 18+ (and a volume flagged 18+) is there only for a signed-in, age-verified reader whose
`nsfw-mode` shows 18+; for anyone else it is a 404 like a slug nothing has, so that an answer
never tells that an 18+ title exists."""

from __future__ import annotations

from collections.abc import Iterable

from handlers.collection import VOLUME_NOT_FOUND, item_tag
from handlers.schemas.catalog_detail import (
    DetailQuery,
    SeriesDetail,
    SeriesVolume,
    SeriesVolumesPage,
    SeriesVolumesQuery,
    VolumeDetail,
)
from handlers.schemas.collection import TaggedCollectionEntry
from handlers.series_scope import CATALOG_ID, SERIES_NOT_FOUND
from storage.records import VolumeRecord
from web.base import ApiHandler
from web.errors import INVALID_PARAMETERS, MISSING_PARAMETERS, ApiError
from web.openapi import Operation, PathParameter, Route
from web.reads import WholeList, reads

_TAGS = ("catalog",)
# A slug as the catalog import accepts it; any other text names nothing and is not worth a query.
_SLUG_SCHEMA = {"type": "string", "pattern": r"^[a-z0-9]+(?:-[a-z0-9]+)*$", "maxLength": 200}
SERIES_SLUG = PathParameter(_SLUG_SCHEMA, (404, SERIES_NOT_FOUND))
VOLUME_SLUG = PathParameter(_SLUG_SCHEMA, (404, VOLUME_NOT_FOUND))


class CatalogHandler(ApiHandler):
    requires_auth = False

    async def read_reader(self) -> None:
        """Reads the session a cookie names, with what the verb declared; an absent, expired or
        forged one leaves the reader anonymous (`self.user` None)."""
        if not self.offers_credential():
            return
        try:
            await self.authenticate(read_only=True)
        except ApiError:
            self.user = None

    def shows_nsfw18(self) -> bool:
        """Whether the reader (read by `read_reader`) is signed in, age-verified and shows 18+."""
        return self.user is not None and self.user.shows_nsfw18

    def owned_items(self, volumes: Iterable[VolumeRecord]) -> dict[int, TaggedCollectionEntry]:
        """The reader's items of these volumes, by volume, as the collection list shows them (read
        with the session); none for anyone not signed in."""
        if self.user is None:
            return {}
        found = self.brought.list().items_of(volume.id for volume in volumes)
        return {volume_id: TaggedCollectionEntry.tagged(item, item_tag(item)) for volume_id, item in found.items()}


class SeriesDetailHandler(CatalogHandler):
    api = {"get": Operation(summary="A series by its slug: aliases, localized description, tags, first volume "
                                    "and rating", query=DetailQuery, response=SeriesDetail, auth=False, tags=_TAGS,
                            responses={400: MISSING_PARAMETERS, 404: SERIES_NOT_FOUND})}

    async def get(self, slug: str) -> None:
        slug = self.path_parameter("slug")  # the path first: a slug nothing can have is a 404 whatever the query
        query = await self.list_parameters(DetailQuery)
        series = await self.services.catalog_pages.series_by_slug(slug)
        if series is None:
            raise ApiError(404, SERIES_NOT_FOUND)
        if series.nsfw18 or (series.first_volume is not None and series.first_volume.nsfw18):
            # Only an 18+ series, or one whose first volume is, needs the reader: every other
            # answer costs the one read.
            await self.read_reader()
            if series.nsfw18 and not self.shows_nsfw18():
                raise ApiError(404, SERIES_NOT_FOUND)
        self.write_model(SeriesDetail.of(series, query.language, self.shows_nsfw18()))


class VolumeDetailHandler(CatalogHandler):
    api = {"get": Operation(summary="A volume by its slug, its series, its place among the series' volumes, and "
                                    "whether the signed-in reader owns it", query=DetailQuery, response=VolumeDetail,
                            auth=False, tags=_TAGS, responses={400: MISSING_PARAMETERS, 404: VOLUME_NOT_FOUND})}

    @reads(WholeList("collection"))
    async def get(self, slug: str) -> None:
        slug = self.path_parameter("slug")
        query = await self.list_parameters(DetailQuery)
        await self.read_reader()
        page = await self.services.catalog_pages.volume_by_slug(slug)
        shows_nsfw18 = self.shows_nsfw18()
        if page is None or ((page.series.nsfw18 or page.volume.nsfw18) and not shows_nsfw18):
            raise ApiError(404, VOLUME_NOT_FOUND)
        siblings = [v for v in page.siblings if shows_nsfw18 or not v.nsfw18 or v.id == page.volume.id]
        owned = self.owned_items([page.volume]).get(page.volume.id)
        self.write_model(VolumeDetail.of(page, siblings, owned, query.language))


class SeriesVolumesHandler(CatalogHandler):
    api = {"get": Operation(summary="A series' volumes in reading order, of one edition (a language) if asked, "
                                    "paged; each says whether the signed-in reader owns it", query=SeriesVolumesQuery,
                            response=SeriesVolumesPage, auth=False, tags=_TAGS,
                            responses={400: INVALID_PARAMETERS, 404: SERIES_NOT_FOUND})}

    @reads(WholeList("collection"))
    async def get(self, id: str) -> None:
        series_id = int(self.path_parameter("id"))
        query = await self.list_parameters(SeriesVolumesQuery)
        await self.read_reader()
        found = await self.services.catalog_pages.series_volumes(series_id)
        shows_nsfw18 = self.shows_nsfw18()
        if found is None or (found.series.nsfw18 and not shows_nsfw18):
            raise ApiError(404, SERIES_NOT_FOUND)
        volumes: list[VolumeRecord] = [v for v in found.volumes
                                       if (shows_nsfw18 or not v.nsfw18) and query.shows(v)]
        end = len(volumes) if query.limit is None else query.offset + query.limit
        shown = volumes[query.offset:end]
        owned = self.owned_items(shown)
        page = [SeriesVolume.of(v, owned.get(v.id)) for v in shown]
        self.write_model(SeriesVolumesPage.of(page, len(volumes), query.offset))


routes = [
    Route("/series/slug/{slug}", SeriesDetailHandler, {"slug": SERIES_SLUG}),
    Route("/series/volumes/{id}", SeriesVolumesHandler, {"id": CATALOG_ID}),
    Route("/volumes/slug/{slug}", VolumeDetailHandler, {"slug": VOLUME_SLUG}),
]
