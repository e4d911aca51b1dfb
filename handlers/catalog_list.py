"""The catalog's list routes, public: `GET /series` (a client's series, in name or added order,
searched, filtered and paged) and `GET /series/quick-search` (the first few series a search finds,
for autocomplete).

A series flagged 18+ is listed, found and counted only for a signed-in, age-verified reader whose
`nsfw-mode` shows 18+, as on the detail routes; the session is read only when the catalog holds
such a series, and never refreshed or cleared. Orders, filters, searches and counts are worked
out in the process (storage.series_browse): the database reads the page's series only.
"""

from __future__ import annotations

from handlers.catalog_detail import CatalogHandler
from handlers.schemas.catalog_list import (
    QuickSearchAnswer,
    QuickSearchItem,
    QuickSearchQuery,
    SeriesListItem,
    SeriesListPage,
    SeriesListQuery,
)
from handlers.schemas.common import FieldError
from storage.series_browse import PageRequest
from storage.series_listing import ListingFilter
from web.errors import FIELD_REQUIRED, MISSING_PARAMETERS, ApiError
from web.openapi import Operation, Route

_TAGS = ("catalog",)


class SeriesListHandler(CatalogHandler):
    api = {"get": Operation(summary="A client's series in name or added order, searched by name and aliases, "
                                    "filtered by type and origin, paged", query=SeriesListQuery,
                            response=SeriesListPage, auth=False, tags=_TAGS, responses={400: MISSING_PARAMETERS})}

    async def get(self) -> None:
        query = await self.list_parameters(SeriesListQuery)
        browse = self.services.series_browse
        if await browse.has_nsfw18(query.client):
            await self.read_reader()
        order, direction = query.order.rsplit("-", 1)
        shows_nsfw18 = self.shows_nsfw18()
        page = await browse.page(PageRequest(
            shown=ListingFilter(client=query.client, nsfw18=shows_nsfw18, types=query.filter_values("type"),
                                origins=query.filter_values("origin")),
            search=query.search_text, language=query.language, by_name=order == "name",
            descending=direction == "desc", offset=query.offset, limit=query.page_size))
        items = [SeriesListItem.of(series, query.language, shows_nsfw18) for series in page.series]
        self.write_model(SeriesListPage.of(items, page.total, query.offset))


class QuickSearchHandler(CatalogHandler):
    api = {"get": Operation(summary="The first series a search finds by name and aliases, for autocomplete: those "
                                    "with a title that begins with the search first", query=QuickSearchQuery,
                            response=QuickSearchAnswer, auth=False, tags=_TAGS, responses={400: MISSING_PARAMETERS})}

    async def get(self) -> None:
        query = await self.list_parameters(QuickSearchQuery)
        if query.search_text is None:
            raise ApiError(400, MISSING_PARAMETERS, [FieldError(field="search", message=FIELD_REQUIRED)])
        browse = self.services.series_browse
        if await browse.has_nsfw18(None):
            await self.read_reader()
        found = await browse.quick_search(ListingFilter(client=None, nsfw18=self.shows_nsfw18()), query.search_text,
                                          query.page_size)
        self.write_model(QuickSearchAnswer([QuickSearchItem.of(series) for series in found]))


routes = [
    Route("/series", SeriesListHandler),
    Route("/series/quick-search", QuickSearchHandler),
]
