"""The base of routes about one catalog series named by `id` in the path."""

from __future__ import annotations

from handlers.base import ApiHandler
from handlers.schemas.catalog import catalog_id

SERIES_NOT_FOUND = "Series not found"


class SeriesHandler(ApiHandler):
    def series_id(self) -> int:
        """The path's series id: 400 when empty or not a positive integer."""
        return catalog_id(self.path_kwargs.get("id"))

