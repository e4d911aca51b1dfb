"""The owner's reading statistics: `GET /user/reading-stats?client=`."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from handlers.schemas.reading_stats import CollectionFigures, OwnStats, PublicStats, ReadingStatsQuery
from storage.reading_stats import OwnFigures, reading_stats, types_from
from storage.session_reads import ReadingStatsRead
from web.base import ApiHandler
from web.errors import INVALID_PARAMETERS
from web.openapi import Operation, Route
from web.reads import Computed, reads


def stats_for_arguments(arguments: Mapping[str, str]) -> ReadingStatsRead | None:
    """The figures for a valid (or no) `client`; None otherwise (the verb answers 400)."""
    try:
        return ReadingStatsRead(ReadingStatsQuery.model_validate(arguments).client)
    except ValidationError:
        return None


class ReadingStatsHandler(ApiHandler):
    api = {"get": Operation(
        summary="The user's reading statistics (all entries, public and private; `client` to count one client's)",
        query=ReadingStatsQuery, response=OwnStats, tags=("reading",), responses={400: INVALID_PARAMETERS})}

    @reads(Computed(stats_for_arguments))
    async def get(self) -> None:
        await self.list_parameters(ReadingStatsQuery)  # 400 for bad parameters
        figures = self.brought.figures_of(OwnFigures)
        keys = await self.services.catalog_keys.series(figures.series_ids())
        stats = reading_stats(figures.statuses, types_from(keys))
        self.write_model(OwnStats(**PublicStats.of(stats).model_dump(), collection=CollectionFigures(
            volumes_owned=figures.volumes_owned, series_owned=figures.series_owned)))


routes = [Route("/user/reading-stats", ReadingStatsHandler)]
