"""The base of routes about one catalog series named by `id` in the path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from handlers.base import ApiHandler
from handlers.errors import MISSING_PARAMETERS
from handlers.openapi_docs import Operation
from handlers.reads import OwnEntry, reads
from handlers.schemas.catalog import catalog_id

SERIES_NOT_FOUND = "Series not found"


class SeriesHandler(ApiHandler):
    def series_id(self) -> int:
        """The path's series id: 400 when empty or not a positive integer."""
        return catalog_id(self.path_kwargs.get("id"))



def own_entry_handler(list_field: str, answer: Callable[[Any, str], BaseModel], response: type[BaseModel],
                      summary: str, tags: tuple[str, ...]) -> type[SeriesHandler]:
    """The read of the user's own entry of a list for one series (a status, a rating): the entry
    comes with the session; no entry answers `null`."""

    class OwnEntryHandler(SeriesHandler):
        api = {"get": Operation(summary=summary, response=response, response_or_null=True, tags=tags,
                                responses={400: MISSING_PARAMETERS})}

        @reads(OwnEntry(list_field))
        async def get(self, id: str) -> None:
            self.series_id()
            entry = self.brought.own_entry
            self.write_model(answer(entry, self.require_user().id) if entry else None)

    OwnEntryHandler.__name__ = OwnEntryHandler.__qualname__ = f"Own{list_field.title()}Handler"
    return OwnEntryHandler
