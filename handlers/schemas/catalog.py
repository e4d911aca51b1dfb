"""Catalog field types shared by the routes that name series and volumes, and the series card."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from handlers.errors import MISSING_PARAMETERS, ApiError
from handlers.schemas.common import FieldError
from languages import localized

_POSITIVE_ID = re.compile(r"^[1-9][0-9]{0,17}$")


def _client_number(value: Any) -> Any:
    """`client` comes as a number or a numeric string; booleans and fractions are refused."""
    if isinstance(value, bool):
        raise ValueError("must be a positive integer")
    if isinstance(value, str):
        if not _POSITIVE_ID.fullmatch(value.strip()):
            raise ValueError("must be a positive integer")
        return int(value.strip())
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a positive integer")
        return int(value)
    return value


ClientId = Annotated[int, BeforeValidator(_client_number), Field(gt=0, le=2**53)]


def catalog_id(raw: str | None, field: str = "id") -> int:
    """A series or volume id from the path: empty is missing, anything but a positive integer is invalid."""
    if raw is None or raw == "":
        raise ApiError(400, MISSING_PARAMETERS)
    if not _POSITIVE_ID.fullmatch(raw):
        raise ApiError(400, "Invalid parameters", [FieldError(field=field, message="must be a positive integer")])
    return int(raw)


def catalog_id_or_none(raw: str | None) -> int | None:
    return int(raw) if raw and _POSITIVE_ID.fullmatch(raw) else None


class VolumeCard(BaseModel):
    id: int
    cover_path: str | None
    nsfw: int
    nsfw18: int
    aspect_ratio: float | None


def series_card(series: dict[str, Any], language: str | None) -> dict[str, Any]:
    """The series fields every list item shows, localized."""
    count = int(series.get("rating_count") or 0)
    return {
        "id": series["_id"],
        "name": series["name"],
        "type": series.get("type"),
        "slug": series.get("slug"),
        "origin": series.get("origin"),
        "client": series.get("client"),
        "alias": localized(series.get("titles"), language, series["name"]),
        "description": localized(series.get("descriptions"), language, None),
        "volume": series.get("first_volume"),
        "average_rating": average_rating(series) if count else None,
        "rating_count": count,
    }


def average_rating(series: dict[str, Any]) -> float | None:
    count = int(series.get("rating_count") or 0)
    if count == 0:
        return None
    # Ratings are summed in half points (integers): one division, no accumulated float error.
    return int(series.get("rating_half_points") or 0) / (2 * count)
