"""The base of routes about one catalog series named by `id` in the path, and how such an id
(a series' or a volume's) is declared."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from handlers.schemas.catalog import POSITIVE_ID
from storage.records import SeriesRecord
from web.base import ApiHandler
from web.errors import INVALID_PARAMETERS, ApiError
from web.openapi import PathParameter
from web.reads import E

SERIES_NOT_FOUND = "Series not found"
# What the document says of an add's 404 (`series_to_add`).
HIDDEN_18_PLUS_SERIES = ("An 18+ series is 404 like an id nothing has for a reader who does not show 18+ (as the "
                         "catalog answers it); updating or deleting an entry already held is never refused for "
                         "the flag.")
# A series or volume id in a path.
CATALOG_ID = PathParameter({"type": "string", "pattern": POSITIVE_ID.pattern}, (400, INVALID_PARAMETERS),
                           "must be a positive integer")


class SeriesHandler(ApiHandler):
    def series_id(self) -> int:
        """The path's series id: 400 when empty or not a positive integer (each route of a
        SeriesHandler declares its `id` a `CATALOG_ID`)."""
        return int(self.path_parameter("id"))

    def series_to_add(self) -> SeriesRecord:
        """The path's series, as the session query brought it (the verb declares
        `@reads(CatalogDocument("series"))`), if the reader may add it to a list: 404 "Series not
        found" for an id nothing has, and for an 18+ series when the reader does not show 18+, as
        the catalog hides it (an answer never tells that an 18+ title exists). An entry the reader
        already has is theirs to change and remove whatever the flag: only adds ask this."""
        series = self.brought.catalog_document(SeriesRecord, SERIES_NOT_FOUND)
        if series.nsfw18 and not self.require_user().shows_nsfw18:
            raise ApiError(404, SERIES_NOT_FOUND)
        return series

    def write_own_entry(self, kind: type[E], answer: Callable[[E, str], BaseModel | None]) -> None:
        """Answers the user's own entry of a list for the path's series (a status, a rating), as
        the session query brought it (the verb declares `@reads(OwnEntry(...))`); no entry
        answers `null`."""
        self.series_id()
        entry = self.brought.own_entry(kind)
        self.write_model(answer(entry, self.require_user().id) if entry else None)
