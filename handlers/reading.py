"""Reading status of one series, and the reading history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from auth.clock import utc_now
from handlers.errors import MISSING_PARAMETERS, ApiError
from handlers.idempotency import idempotent
from handlers.lists import ListHandler, list_operations
from handlers.openapi_docs import CATALOG_ID, Operation, Route
from handlers.reads import CatalogDocument, WholeList, reads
from handlers.schemas.reading import (
    HistoryItem,
    ReadingHistoryPage,
    ReadingHistoryQuery,
    ReadingStatus,
    ReadingStatusBody,
)
from handlers.series_scope import SERIES_NOT_FOUND, SeriesHandler, own_entry_handler
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

    async def checked_body(self) -> ReadingStatusBody:
        """The validated body, for a series that exists in the body's client."""
        body = await self.parse_body(ReadingStatusBody)
        if self.brought.catalog_document(SERIES_NOT_FOUND).client != body.client:
            raise ApiError(404, SERIES_NOT_FOUND)
        return body


StatusOfSeriesHandler = own_entry_handler("statuses", ReadingStatus.of, ReadingStatus,
                                          "The user's reading status of a series, or null", _TAGS)


@dataclass(frozen=True)
class StatusWrite:
    """What distinguishes adding a status from replacing one: the same body, checks and read."""

    summary: str
    done: str
    refused: WriteOutcome  # the store's answer that is the client's mistake
    refusal: tuple[int, str]  # and how it is answered


class StatusWriteHandler(ReadingStatusHandler):
    change: ClassVar[StatusWrite]

    @classmethod
    def for_write(cls, change: StatusWrite) -> type[StatusWriteHandler]:
        status, message = change.refusal
        responses = {200: change.done, 400: MISSING_PARAMETERS, status: message}
        if status != 404:
            responses[404] = SERIES_NOT_FOUND
        api = {"post": Operation(summary=change.summary, request=ReadingStatusBody, tags=_TAGS, responses=responses)}
        return type(f"{change.summary.split()[0]}StatusHandler", (cls,), {"change": change, "api": api})

    async def store(self, user_id: str, series_id: int, body: ReadingStatusBody) -> WriteOutcome:
        write = self.statuses.add if self.change.refused is WriteOutcome.CONFLICT else self.statuses.update
        return await write(user_id, series_id, body.client, body.stored_fields(), utc_now())

    @idempotent
    @reads(CatalogDocument("series"))
    async def post(self, id: str) -> None:
        series_id = self.series_id()
        body = await self.checked_body()
        if await self.store(self.require_user().id, series_id, body) is self.change.refused:
            raise ApiError(*self.change.refusal)
        self.write_message(200, self.change.done)


AddStatusHandler = StatusWriteHandler.for_write(StatusWrite(
    "Add a reading status for a series", "Reading status added successfully", WriteOutcome.CONFLICT,
    (409, "Reading status already exists for this series")))
UpdateStatusHandler = StatusWriteHandler.for_write(StatusWrite(
    "Replace a reading status", "Reading status updated successfully", WriteOutcome.NOT_FOUND,
    (404, STATUS_MISSING)))


class DeleteStatusHandler(ReadingStatusHandler):
    api = {"delete": Operation(summary="Delete a reading status", tags=_TAGS,
                               responses={200: "Reading status deleted successfully", 400: MISSING_PARAMETERS,
                                          404: STATUS_MISSING})}

    @idempotent
    async def delete(self, id: str) -> None:
        outcome = await self.statuses.delete(self.require_user().id, self.series_id())
        if outcome is WriteOutcome.NOT_FOUND:
            raise ApiError(404, STATUS_MISSING)
        self.write_message(200, "Reading status deleted successfully")


def history_request(query: ReadingHistoryQuery) -> HistoryRequest:
    """What the store needs of a reading-history query (the owner's list and a public one)."""
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


class ReadingHistoryHandler(ListHandler):
    query_model = ReadingHistoryQuery
    api = list_operations(ReadingHistoryQuery, "The user's reading history", ReadingHistoryPage,
                          {400: "Invalid parameters"}, _TAGS, body_required=False)

    # Every order is made from the statuses, read with the session.
    get = reads(WholeList("statuses"))(ListHandler.get)
    post = reads(WholeList("statuses"))(ListHandler.post)

    async def answer(self, query: ReadingHistoryQuery) -> None:
        user = self.require_user()
        request = history_request(query)
        page = await self.services.statuses.history(user.id, request, self.brought.list())
        items = [HistoryItem.of(status, series, user.id, request.language) for status, series in page.entries]
        self.write_model(ReadingHistoryPage.of(items, page.total, query.offset))


routes = [
    Route("/user/reading-history", ReadingHistoryHandler),
    Route("/user/reading-status/id/{id}", StatusOfSeriesHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/add/{id}", AddStatusHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/update/{id}", UpdateStatusHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/delete/{id}", DeleteStatusHandler, {"id": CATALOG_ID}),
]
