"""The owner's reading statistics: `GET /user/reading-stats?client=` and the reading history's
general figures, `GET /user/reading-history/stats/general?client=`."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from auth.personal_tokens import READ
from handlers.schemas.reading_stats import (
    CollectionFigures,
    HistoryStatistics,
    HistoryStatsQuery,
    OwnStats,
    PublicStats,
    ReadingStatsQuery,
)
from storage.reading_stats import OwnFigures, history_figures, reading_stats, types_from
from storage.session_reads import ReadingStatsRead
from web.base import ApiHandler
from web.errors import INVALID_PARAMETERS, MISSING_PARAMETERS
from web.openapi import Operation, Route
from web.reads import Computed, reads


def stats_for_arguments(arguments: Mapping[str, str]) -> ReadingStatsRead | None:
    """The figures for a valid (or no) `client`; None otherwise (the verb answers 400)."""
    try:
        return ReadingStatsRead(ReadingStatsQuery.model_validate(arguments).client)
    except ValidationError:
        return None


class ReadingStatsHandler(ApiHandler):
    api = {"get": Operation(scope=READ,
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


def history_stats_for_arguments(arguments: Mapping[str, str]) -> ReadingStatsRead | None:
    """The statuses of the required `client`; None without a valid one (the verb answers 400)."""
    try:
        return ReadingStatsRead(HistoryStatsQuery.model_validate(arguments).client)
    except ValidationError:
        return None


class HistoryStatsHandler(ApiHandler):
    api = {"get": Operation(scope=READ,
        summary="The reading history's general figures for `client`: entries by status, rereads, the mean "
                "score, the earliest and latest reading dates",
        query=HistoryStatsQuery, response=HistoryStatistics, tags=("reading",),
        responses={400: MISSING_PARAMETERS})}

    @reads(Computed(history_stats_for_arguments))
    async def get(self) -> None:
        await self.list_parameters(HistoryStatsQuery)  # 400 for a missing or bad client
        # The same statuses and rules as the owner's statistics; counted in a worker, since a
        # list can hold tens of thousands.
        statuses = self.brought.figures_of(OwnFigures).statuses
        self.write_model(HistoryStatistics.of(await self.off_the_loop(history_figures, statuses)))


routes = [
    Route("/user/reading-stats", ReadingStatsHandler),
    Route("/user/reading-history/stats/general", HistoryStatsHandler),
]
