"""The change feed of the reader's own data: `GET /user/changes?since=<cursor>&limit=`."""

from __future__ import annotations

from auth.clock import utc_now
from auth.personal_tokens import READ
from handlers.collection import item_tag
from handlers.schemas.changes import Change, ChangesPage, ChangesQuery
from handlers.schemas.ratings import SeriesRating
from handlers.schemas.reading import ReadingStatus
from storage.changes import COLLECTION_ITEM, CursorGone, StoredChange
from storage.records import CollectionItemRecord
from web import conditional
from web.base import ApiHandler
from web.errors import INVALID_PARAMETERS, ApiError
from web.openapi import Operation, Route

CURSOR_GONE = "The changes after this cursor are no longer kept: read the lists again, then follow the changes"


class ChangesHandler(ApiHandler):
    api = {"get": Operation(
        scope=READ,
        summary="What changed in the user's statuses, ratings, collection, settings and avatar since a cursor",
        description="Oldest first, each change once, with the entry as it is after the change (`null` for a "
                    "delete). Without `since`, from the oldest change kept. Store `next` and ask with "
                    "`since=<next>`: you get exactly what you have not seen. `more` says another page is ready "
                    "now. Changes are kept for `CHANGES_RETENTION_DAYS` (90 by default); a cursor whose next "
                    "change is no longer kept answers 410: read the lists again, then follow the changes from "
                    "the `next` of an empty page (`limit` 1 without `since` gives the oldest one kept).",
        query=ChangesQuery, response=ChangesPage, tags=("sync",),
        responses={400: INVALID_PARAMETERS, 410: CURSOR_GONE})}

    async def get(self) -> None:
        user = self.require_user()
        query = await self.list_parameters(ChangesQuery)
        since = int(query.since) if query.since is not None else None
        try:
            # The counter came with the session's read, before the page's: see ChangeFeed.page.
            page = await self.services.changes.page(user.id, since, query.limit, utc_now(), user.record.last_change)
        except CursorGone:
            raise ApiError(410, CURSOR_GONE) from None
        self.write_model(ChangesPage(changes=[tagged(Change.of(change, user.id), change) for change in page.changes],
                                     next=str(page.next), more=page.more))


def tagged(change: Change, stored: StoredChange) -> Change:
    """The change with its entry's tag: the one the entry's GET answers (a collection item's, the
    one the collection list shows), so that an app that follows the feed can send If-Match."""
    if stored.entry is None:
        return change
    if stored.kind == COLLECTION_ITEM:
        return change.model_copy(update={"etag": item_tag(CollectionItemRecord.of(stored.entry))})
    if isinstance(change.entry, (ReadingStatus, SeriesRating)):
        return change.model_copy(update={"etag": conditional.tag_of_answer(change.entry)})
    return change


routes = [Route("/user/changes", ChangesHandler)]
