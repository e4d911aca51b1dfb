"""Reading statistics: the owner's (`GET /user/reading-stats`) and a public profile's."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, PlainSerializer

from handlers.schemas.catalog import ClientId
from handlers.schemas.common import RequestModel
from storage.reading_stats import ReadingStats


def _whole_if_integral(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# Progress sums are written as whole numbers when they are (18234, not 18234.0).
ProgressSum = Annotated[float, PlainSerializer(_whole_if_integral, return_type=int | float)]


class ReadingStatsQuery(RequestModel):
    client: ClientId | None = None


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
