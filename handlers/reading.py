"""Reading status of one series, and the reading history."""

from __future__ import annotations

from typing import Any

from auth.clock import utc_now
from handlers.base import ApiHandler
from handlers.errors import MISSING_PARAMETERS, ApiError
from handlers.openapi_docs import CATALOG_ID, Operation, Route
from handlers.schemas.catalog import series_card
from handlers.schemas.reading import (
    ReadingHistoryPage,
    ReadingHistoryQuery,
    ReadingStatus,
    ReadingStatusBody,
    status_payload,
)
from handlers.series_scope import SERIES_NOT_FOUND, SeriesHandler
from handlers.session import SessionQuery
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
        if self.looked_up_series().get("client") != body.client:
            raise ApiError(404, SERIES_NOT_FOUND)
        return body


class StatusOfSeriesHandler(ReadingStatusHandler):
    api = {"get": Operation(summary="The user's reading status of a series, or null", response=ReadingStatus,
                            response_or_null=True,
                            tags=_TAGS, responses={400: MISSING_PARAMETERS})}

    def session_query(self) -> SessionQuery:
        return self.with_own_entry("statuses")

    async def get(self, id: str) -> None:
        self.series_id()
        entry = self.own_entry("statuses")
        self.write_json(status_payload(entry, self.require_user().id) if entry else None)


class AddStatusHandler(ReadingStatusHandler):
    api = {"post": Operation(summary="Add a reading status for a series", request=ReadingStatusBody, tags=_TAGS,
                             responses={200: "Reading status added successfully", 400: MISSING_PARAMETERS,
                                        404: SERIES_NOT_FOUND, 409: "Reading status already exists for this series"})}

    def session_query(self) -> SessionQuery:
        return self.with_series()

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

    def session_query(self) -> SessionQuery:
        return self.with_series()

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


class ReadingHistoryHandler(ApiHandler):
    """GET with query parameters; the web client sends the same as a JSON body with POST."""

    api = {
        "get": Operation(summary="The user's reading history", query=ReadingHistoryQuery,
                         response=ReadingHistoryPage, tags=_TAGS, responses={400: "Invalid parameters"}),
        "post": Operation(summary="The user's reading history (parameters as a JSON body)", request=ReadingHistoryQuery,
                          request_required=False, response=ReadingHistoryPage, tags=_TAGS,
                          responses={400: "Invalid parameters"}),
    }

    _query: ReadingHistoryQuery | None = None

    def history_query(self) -> ReadingHistoryQuery:
        return self.list_parameters(ReadingHistoryQuery)

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

    def session_query(self) -> SessionQuery:
        # The statuses come with the session unless the query is known (GET) to need the
        # catalog join instead. A POST body arrives only after authentication, so a POST always
        # brings them. A bad query is answered 400 after authentication (401 comes first).
        if self.request.method == "GET":
            try:
                self._query = self.history_query()
            except ApiError:
                return SessionQuery()
            if self.history_request(self._query).needs_series:
                return SessionQuery()
        return SessionQuery(fields={"statuses": 1})

    async def get(self) -> None:
        await self.answer()

    async def post(self) -> None:
        await self.answer()

    async def answer(self) -> None:
        user = self.require_user()
        query = self._query or self.history_query()
        request = self.history_request(query)
        page = await self.services.statuses.history(user.id, request, user.document.get("statuses"))
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
