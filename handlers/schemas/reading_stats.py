"""Reading statistics: the owner's (`GET /user/reading-stats`), a public profile's, and the
reading history's general figures (`GET /user/reading-history/stats/general`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, PlainSerializer

from handlers.schemas.catalog import ClientId
from handlers.schemas.common import RequestModel
from handlers.schemas.reading import PartialDateText
from storage.reading_stats import HistoryFigures, ReadingStats


def _whole_if_integral(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# Progress sums are written as whole numbers when they are (18234, not 18234.0).
ProgressSum = Annotated[float, PlainSerializer(_whole_if_integral, return_type=int | float)]


class ReadingStatsQuery(RequestModel):
    client: ClientId | None = None


class HistoryStatsQuery(RequestModel):
    client: ClientId


class PublicStats(BaseModel):
    entries: int
    by_status: dict[str, int]
    chapters_read: ProgressSum
    volumes_read: ProgressSum
    rereads: int
    mean_score: float | None
    score_distribution: dict[str, int]
    by_type: dict[str, int]
    completed_by_year: dict[str, int]

    @classmethod
    def of(cls, stats: ReadingStats) -> PublicStats:
        return cls.model_validate(stats, from_attributes=True)


class CollectionFigures(BaseModel):
    volumes_owned: int
    series_owned: int


class OwnStats(PublicStats):
    collection: CollectionFigures


class HistoryStatistics(BaseModel):
    total_read_series: int  # every entry of the client, whatever its status
    started_series: int
    completed_series: int
    paused_series: int
    total_rereads: int
    avg_score: float  # of the scored entries, two decimals; 0 (which means unscored) when none is
    first_entry: PartialDateText | None  # the earliest start or end date an entry gives, as given
    last_entry: PartialDateText | None  # the latest

    @classmethod
    def of(cls, figures: HistoryFigures) -> HistoryStatistics:
        stats = figures.stats
        return cls(total_read_series=stats.entries, started_series=stats.by_status["started"],
                   completed_series=stats.by_status["completed"], paused_series=stats.by_status["paused"],
                   total_rereads=stats.rereads, avg_score=stats.mean_score or 0,
                   first_entry=figures.first_date, last_entry=figures.last_date)
