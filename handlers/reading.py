"""Reading status of one series, and the reading history."""

from __future__ import annotations

from typing import Any

from auth.clock import iso_utc, utc_now
from auth.personal_tokens import READ, WRITE
from handlers.lists import ListHandler, list_operations
from handlers.schemas.reading import (
    HistoryItem,
    ReadingHistoryPage,
    ReadingHistoryQuery,
    ReadingStatus,
    ReadingStatusBody,
    StatusChange,
    StatusHistoryPage,
    StatusHistoryQuery,
)
from handlers.series_scope import CATALOG_ID, HIDDEN_18_PLUS_SERIES, SERIES_NOT_FOUND, SeriesHandler
from languages import requested_language
from storage.changes import READING_STATUS
from storage.outcome import WriteOutcome
from storage.reading import NAME_ORDER, HistoryRequest, ReadingStatusStore
from storage.records import SeriesRecord, StatusRecord
from web.conditional import require_done
from web.errors import INVALID_PARAMETERS, MISSING_PARAMETERS, ApiError
from web.idempotency import idempotent
from web.openapi import SAME_ID, Operation, Route
from web.reads import CatalogDocument, OwnEntry, WholeList, reads

STATUS_MISSING = "Reading status does not exist for this series"
STATUS_EXISTS = "Reading status already exists for this series"
STATUS_ADDED = "Reading status added successfully"
STATUS_UPDATED = "Reading status updated successfully"
STATUS_DELETED = "Reading status deleted successfully"
_TAGS = ("reading",)


class ReadingStatusHandler(SeriesHandler):
    """Base of the routes about one series' status: `id` in the path is the series."""

    @property
    def statuses(self) -> ReadingStatusStore:
        return self.services.statuses

    async def unchanged_status(self, user_id: str, series_id: int) -> StatusRecord | None:
        """With If-Match, the status as its GET answers it, which the write must find unchanged
        (see `unchanged_entry`); read only then: a write without the header costs what it did."""
        if self.if_match() is None:
            return None
        current = await self.statuses.entry(user_id, series_id)
        return self.unchanged_entry(current, lambda status: ReadingStatus.of(status, user_id), STATUS_MISSING)

    async def checked_body(self, *, adding: bool = False) -> ReadingStatusBody:
        """The validated body, for a series that exists in the body's client (and, `adding`, that
        the reader may add: `series_to_add`)."""
        body = await self.parse_body(ReadingStatusBody)
        series = self.series_to_add() if adding else self.brought.catalog_document(SeriesRecord, SERIES_NOT_FOUND)
        if series.client != body.client:
            raise ApiError(404, SERIES_NOT_FOUND)
        return body


class StatusOfSeriesHandler(ReadingStatusHandler):
    api = {"get": Operation(
        scope=READ, summary="The user's reading status of a series, or null", response=ReadingStatus,
                            response_or_null=True, tags=_TAGS, responses={400: MISSING_PARAMETERS})}

    @reads(OwnEntry("statuses"))
    async def get(self, id: str) -> None:
        self.write_own_entry(StatusRecord, ReadingStatus.of)


class StatusHistoryHandler(ReadingStatusHandler):
    api = {"get": Operation(
        scope=READ, summary="Each change of the user's reading status of a series, newest first",
        description="Every write counts: the routes, MyAnimeList imports and their undo (each naming its "
                    "`import_id`), account-file imports. The newest `STATUS_HISTORY_LIMIT` changes of a status "
                    "are kept (200 by default), also after the status is deleted. `fields` names what differs "
                    "between `before` and `after`.",
        query=StatusHistoryQuery, response=StatusHistoryPage, tags=_TAGS, responses={400: INVALID_PARAMETERS})}

    async def get(self, id: str) -> None:
        user = self.require_user()
        query = await self.list_parameters(StatusHistoryQuery)
        steps, total = await self.services.changes.history(user.id, READING_STATUS, str(self.series_id()),
                                                           query.offset, query.page_size)

        def status(entry: dict[str, Any] | None) -> ReadingStatus | None:
            return None if entry is None else ReadingStatus.of(StatusRecord.of(entry), user.id)

        self.write_model(StatusHistoryPage(
            history=[StatusChange(at=iso_utc(step.at), fields=step.fields, before=status(step.before),
                                  after=status(step.after), import_id=step.import_id) for step in steps],
            max=total, to=query.offset + len(steps), **{"from": query.offset}))


class AddStatusHandler(ReadingStatusHandler):
    api = {"post": Operation(
        scope=WRITE, summary="Add a reading status for a series", request=ReadingStatusBody, tags=_TAGS,
                             description=HIDDEN_18_PLUS_SERIES,
                             responses={200: STATUS_ADDED, 400: MISSING_PARAMETERS, 404: SERIES_NOT_FOUND,
                                        409: STATUS_EXISTS},
                             links={"read": ("get /user/reading-status/id/{id}", SAME_ID),
                                    "update": ("post /user/reading-status/update/{id}", SAME_ID),
                                    "delete": ("delete /user/reading-status/delete/{id}", SAME_ID)})}

    @idempotent
    @reads(CatalogDocument("series"))
    async def post(self, id: str) -> None:
        series_id = self.series_id()
        body = await self.checked_body(adding=True)
        outcome = await self.statuses.add(self.require_user().id, series_id, body.client, body.status_fields(),
                                          utc_now())
        if outcome is WriteOutcome.CONFLICT:
            raise ApiError(409, STATUS_EXISTS)
        self.write_message(200, STATUS_ADDED)


class UpdateStatusHandler(ReadingStatusHandler):
    api = {"post": Operation(scope=WRITE, summary="Replace a reading status", request=ReadingStatusBody, tags=_TAGS,
                             if_match=True,
                             responses={200: STATUS_UPDATED, 400: MISSING_PARAMETERS, 404: STATUS_MISSING})}

    @idempotent
    @reads(CatalogDocument("series"))
    async def post(self, id: str) -> None:
        user_id = self.require_user().id
        series_id = self.series_id()
        body = await self.checked_body()
        unchanged = await self.unchanged_status(user_id, series_id)
        outcome = await self.statuses.update(user_id, series_id, body.client, body.status_fields(), utc_now(),
                                             unchanged)
        if outcome is WriteOutcome.NOT_FOUND:
            self.series_to_add()  # no entry: a hidden 18+ series is not found, as for an id nothing has
        require_done(outcome, STATUS_MISSING)
        self.write_message(200, STATUS_UPDATED)


class DeleteStatusHandler(ReadingStatusHandler):
    api = {"delete": Operation(scope=WRITE, summary="Delete a reading status", tags=_TAGS, if_match=True,
                               responses={200: STATUS_DELETED, 400: MISSING_PARAMETERS,
                                          404: STATUS_MISSING})}

    @idempotent
    async def delete(self, id: str) -> None:
        user_id = self.require_user().id
        series_id = self.series_id()
        outcome = await self.statuses.delete(user_id, series_id, utc_now(),
                                             await self.unchanged_status(user_id, series_id))
        require_done(outcome, STATUS_MISSING)
        self.write_message(200, STATUS_DELETED)


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
        status=query.status,
    )


class ReadingHistoryHandler(ListHandler):
    query_model = ReadingHistoryQuery
    api = list_operations(ReadingHistoryQuery, "The user's reading history", ReadingHistoryPage,
                          {400: INVALID_PARAMETERS}, _TAGS, body_required=False)

    # Every order is made from the statuses, read with the session.
    get = reads(WholeList("statuses"))(ListHandler.get)
    post = reads(WholeList("statuses"))(ListHandler.post)

    async def answer(self, query: ReadingHistoryQuery) -> None:
        user = self.require_user()
        request = history_request(query)
        page = await self.services.statuses.history(user.id, request, self.brought.list())
        shows_nsfw18 = user.shows_nsfw18  # settings read once for the page, not per item
        items = [HistoryItem.of(status, series, user.id, request.language, shows_nsfw18)
                 for status, series in page.entries]
        self.write_model(ReadingHistoryPage.of(items, page.total, query.offset))


routes = [
    Route("/user/reading-history", ReadingHistoryHandler),
    Route("/user/reading-status/id/{id}", StatusOfSeriesHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/id/{id}/history", StatusHistoryHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/add/{id}", AddStatusHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/update/{id}", UpdateStatusHandler, {"id": CATALOG_ID}),
    Route("/user/reading-status/delete/{id}", DeleteStatusHandler, {"id": CATALOG_ID}),
]
