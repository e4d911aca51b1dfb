"""Reading status of one series, and the reading history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auth.clock import utc_now
from handlers.base import ApiHandler
from handlers.errors import MISSING_PARAMETERS, ApiError
from handlers.openapi_docs import CATALOG_ID, Operation, Route
from handlers.reads import CatalogDocument, OwnEntry, WholeList, reads
from handlers.schemas.catalog import series_card
from handlers.schemas.reading import (
    ReadingHistoryPage,
    ReadingHistoryQuery,
    ReadingStatus,
    ReadingStatusBody,
    status_payload,
)
from handlers.series_scope import SERIES_NOT_FOUND, SeriesHandler
from languages import requested_language
from storage.outcome import WriteOutcome
from storage.reading import NAME_ORDER, HistoryRequest, ReadingStatusStore

STATUS_MISSING = "Reading status does not exist for this series"
_TAGS = ("reading",)


class ReadingStatusHandler(SeriesHandler):
    """Base of the routes about one series' status: `id` in the path is the series."""

    @property
    def statuses(self) -> ReadingStatusStore:
        return self.services.statuses

    def checked_body(self) -> ReadingStatusBody:
        """The validated body, for a series that exists in the body's client."""
        body = self.parse_body(ReadingStatusBody)
        if self.brought.catalog_document(SERIES_NOT_FOUND).get("client") != body.client:
            raise ApiError(404, SERIES_NOT_FOUND)
        return body


class StatusOfSeriesHandler(ReadingStatusHandler):
    api = {"get": Operation(summary="The user's reading status of a series, or null", response=ReadingStatus,
                            response_or_null=True,
                            tags=_TAGS, responses={400: MISSING_PARAMETERS})}

    @reads(OwnEntry("statuses"))
    async def get(self, id: str) -> None:
        self.series_id()
        entry = self.brought.own_entry
        self.write_json(status_payload(entry, self.require_user().id) if entry else None)


class AddStatusHandler(ReadingStatusHandler):
    api = {"post": Operation(summary="Add a reading status for a series", request=ReadingStatusBody, tags=_TAGS,
                             responses={200: "Reading status added successfully", 400: MISSING_PARAMETERS,
                                        404: SERIES_NOT_FOUND, 409: "Reading status already exists for this series"})}

    @reads(CatalogDocument("series"))
    async def post(self, id: str) -> None:
        series_id = self.series_id()
        body = self.checked_body()
        outcome = await self.statuses.add(self.require_user().id, series_id, body.client, body.stored_fields(), utc_now())
        if outcome is WriteOutcome.CONFLICT:
            raise ApiError(409, "Reading status already exists for this series")
        self.write_message(200, "Reading status added successfully")


class UpdateStatusHandler(ReadingStatusHandler):
    api = {"post": Operation(summary="Replace a reading status", request=ReadingStatusBody, tags=_TAGS,
                             responses={200: "Reading status updated successfully", 400: MISSING_PARAMETERS,
                                        404: STATUS_MISSING})}

    @reads(CatalogDocument("series"))
    async def post(self, id: str) -> None:
        series_id = self.series_id()
        body = self.checked_body()
        outcome = await self.statuses.update(self.require_user().id, series_id, body.client, body.stored_fields(), utc_now())
        if outcome is WriteOutcome.NOT_FOUND:
            raise ApiError(404, STATUS_MISSING)
        self.write_message(200, "Reading status updated successfully")


class DeleteStatusHandler(ReadingStatusHandler):
    api = {"delete": Operation(summary="Delete a reading status", tags=_TAGS,
                               responses={200: "Reading status deleted successfully", 400: MISSING_PARAMETERS,
                                          404: STATUS_MISSING})}

    async def delete(self, id: str) -> None:
        outcome = await self.statuses.delete(self.require_user().id, self.series_id())
        if outcome is WriteOutcome.NOT_FOUND:
            raise ApiError(404, STATUS_MISSING)
        self.write_message(200, "Reading status deleted successfully")


def paged_from_statuses(arguments: Mapping[str, str]) -> bool:
    """Whether a GET's page can be ordered from the statuses alone (brought with the session):
    a name order or a search needs the catalog join instead, which reads the statuses itself."""
    return not (arguments.get("order", "").startswith("name") or arguments.get("search", "").strip())


class ReadingHistoryHandler(ApiHandler):
    """GET with query parameters; the web client sends the same as a JSON body with POST."""

    api = {
        "get": Operation(summary="The user's reading history", query=ReadingHistoryQuery,
                         response=ReadingHistoryPage, tags=_TAGS, responses={400: "Invalid parameters"}),
        "post": Operation(summary="The user's reading history (parameters as a JSON body)", request=ReadingHistoryQuery,
                          request_required=False, response=ReadingHistoryPage, tags=_TAGS,
                          responses={400: "Invalid parameters"}),
    }

    def history_request(self, query: ReadingHistoryQuery) -> HistoryRequest:
        order, direction = query.order.rsplit("-", 1)
        return HistoryRequest(
            order=NAME_ORDER if order == "name" else order,
            descending=direction == "desc",
            offset=query.offset,
            limit=query.page_size,
            search=query.search_text,
            language=requested_language(query.user_lang),
            client=query.client,
        )

    @reads(WholeList("statuses", when=paged_from_statuses))
    async def get(self) -> None:
        await self.answer(self.list_parameters(ReadingHistoryQuery))

    @reads(WholeList("statuses"))  # the body, and so the order, is known only after authentication
    async def post(self) -> None:
        await self.answer(self.list_parameters(ReadingHistoryQuery))

    async def answer(self, query: ReadingHistoryQuery) -> None:
        user = self.require_user()
        request = self.history_request(query)
        page = await self.services.statuses.history(user.id, request, self.brought.entries)
        items: list[dict[str, Any]] = [
            {**series_card(series, request.language), "reading-history": status_payload(entry, user.id)}
            for entry, series in page.entries
        ]
        self.write_json({"series": items, "max": page.total, "from": query.offset, "to": query.offset + len(items)})


routes = [
    Route("/user/reading-history", ReadingHistoryHandler),
    Route("/user/reading-status/id/{id}", StatusOfSeriesHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/add/{id}", AddStatusHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/update/{id}", UpdateStatusHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/delete/{id}", DeleteStatusHandler, {"id": CATALOG_ID}),
]
