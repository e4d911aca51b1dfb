"""The base of routes about one catalog series named by `id` in the path, and how such an id
(a series' or a volume's) is declared."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from handlers.schemas.catalog import POSITIVE_ID
from web.base import ApiHandler
from web.errors import INVALID_PARAMETERS
from web.openapi import PathParameter
from web.reads import E

SERIES_NOT_FOUND = "Series not found"
# A series or volume id in a path.
CATALOG_ID = PathParameter({"type": "string", "pattern": POSITIVE_ID.pattern}, (400, INVALID_PARAMETERS),
                           "must be a positive integer")


class SeriesHandler(ApiHandler):
    def series_id(self) -> int:
        """The path's series id: 400 when empty or not a positive integer (each route of a
        SeriesHandler declares its `id` a `CATALOG_ID`)."""
        return int(self.path_parameter("id"))

    def write_own_entry(self, kind: type[E], answer: Callable[[E, str], BaseModel | None]) -> None:
        """Answers the user's own entry of a list for the path's series (a status, a rating), as
        the session query brought it (the verb declares `@reads(OwnEntry(...))`); no entry
        answers `null`."""
        self.series_id()
        entry = self.brought.own_entry(kind)
        self.write_model(answer(entry, self.require_user().id) if entry else None)
