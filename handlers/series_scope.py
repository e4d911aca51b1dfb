"""The base of routes about one catalog series named by `id` in the path."""

from __future__ import annotations

from typing import Any

from handlers.base import ApiHandler
from handlers.schemas.catalog import catalog_id, catalog_id_or_none
from handlers.session import SessionQuery

SERIES_NOT_FOUND = "Series not found"


class SeriesHandler(ApiHandler):
    def series_id(self) -> int:
        """The path's series id: 400 when empty or not a positive integer."""
        return catalog_id(self.path_kwargs.get("id"))

    def with_series(self) -> SessionQuery:
        """Fetch the series with the session, so that a write learns it exists for free."""
        series_id = catalog_id_or_none(self.path_kwargs.get("id"))
        return SessionQuery(catalog=("series", series_id) if series_id is not None else None)

    def with_own_entry(self, list_field: str) -> SessionQuery:
        """Fetch the user's entry of `list_field` for this series with the session."""
        series_id = catalog_id_or_none(self.path_kwargs.get("id"))
        if series_id is None:
            return SessionQuery()
        return SessionQuery(fields={list_field: {"$elemMatch": {"series_id": series_id}}})

    def own_entry(self, list_field: str) -> dict[str, Any] | None:
        entries = self.require_user().document.get(list_field) or []
        return entries[0] if entries else None

    def looked_up_series(self) -> dict[str, Any]:
        return self.looked_up(SERIES_NOT_FOUND)
