"""The owner's reading statistics: `GET /user/reading-stats?client=`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from handlers.base import ApiHandler
from handlers.errors import INVALID_PARAMETERS
from handlers.openapi_docs import Operation, Route
from handlers.reads import Computed, reads
from handlers.schemas.reading_stats import CollectionFigures, OwnStats, PublicStats, ReadingStatsQuery
from storage.reading_stats import own_stats_expression, reading_stats, types_from


def stats_for_arguments(arguments: Mapping[str, str]) -> dict[str, Any] | None:
    """The figures' expression for a valid (or no) `client`; None otherwise (the verb answers 400)."""
    try:
        return own_stats_expression(ReadingStatsQuery.model_validate(arguments).client)
    except ValidationError:
        return None


class ReadingStatsHandler(ApiHandler):
    api = {"get": Operation(
        summary="The user's reading statistics (all entries, public and private; `client` to count one client's)",
        query=ReadingStatsQuery, response=OwnStats, tags=("reading",), responses={400: INVALID_PARAMETERS})}

    @reads(Computed("reading_stats", stats_for_arguments))
    async def get(self) -> None:
        await self.list_parameters(ReadingStatsQuery)  # 400 for bad parameters
        figures = self.brought.computed or {}
        statuses = figures.get("statuses") or []
        keys = await self.services.catalog_keys.series(entry["series_id"] for entry in statuses)
        stats = reading_stats(statuses, types_from(keys))
        self.write_model(OwnStats(**PublicStats.of(stats).model_dump(), collection=CollectionFigures(
            volumes_owned=int(figures.get("volumes_owned") or 0), series_owned=int(figures.get("series_owned") or 0))))


routes = [Route("/user/reading-stats", ReadingStatsHandler)]
