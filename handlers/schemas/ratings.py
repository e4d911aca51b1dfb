"""Rating bodies and answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, WithJsonSchema

from auth.clock import iso_utc
from handlers.schemas.common import DateTimeText, RequestModel
from storage.records import RatingRecord


def _rating_value(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if not 1 <= value <= 10 or (value * 2) != int(value * 2):
        raise ValueError("must be from 1 to 10 in steps of 0.5")
    return value


Rating = Annotated[float, BeforeValidator(_rating_value),
                   WithJsonSchema({"type": "number", "minimum": 1, "maximum": 10, "multipleOf": 0.5})]


class RatingBody(RequestModel):
    rating: Rating


class SeriesRating(BaseModel):
    user_id: str
    series_id: int
    rating: float
    last_update: DateTimeText

    @classmethod
    def of(cls, rating: RatingRecord, user_id: str) -> SeriesRating:
        return cls(user_id=user_id, series_id=rating.series_id, rating=rating.rating,
                   last_update=iso_utc(rating.last_update))
