"""Catalog field types shared by the routes that name series and volumes, and the series card."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from handlers.schemas.common import WHITESPACE
from languages import localized
from storage.catalog import MAX_CLIENT
from storage.records import SeriesRecord, VolumeCardRecord

# Series and volume ids, in bodies and in paths: positive integers (of 18 digits at most).
POSITIVE_ID = re.compile(r"^[1-9][0-9]{0,17}$")


def _client_number(value: Any) -> Any:
    """`client` comes as a number or a numeric string; booleans and fractions are refused."""
    if isinstance(value, bool):
        raise ValueError("must be a positive integer")
    if isinstance(value, str):
        if not POSITIVE_ID.fullmatch(value.strip()):
            raise ValueError("must be a positive integer")
        return int(value.strip())
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a positive integer")
        return int(value)
    return value


# A JSON number or a numeric string, as the web client sends either.
ClientId = Annotated[int, BeforeValidator(_client_number), Field(gt=0, le=MAX_CLIENT), WithJsonSchema({"anyOf": [
    {"type": "integer", "exclusiveMinimum": 0, "maximum": MAX_CLIENT},
    {"type": "string", "pattern": f"^[{WHITESPACE}]*[1-9][0-9]{{0,14}}[{WHITESPACE}]*$"},
]})]


def catalog_id_or_none(raw: str | None) -> int | None:
    return int(raw) if raw and POSITIVE_ID.fullmatch(raw) else None


class VolumeCard(BaseModel):
    id: int
    cover_path: str | None
    nsfw: int
    nsfw18: int
    aspect_ratio: float | None

    @classmethod
    def of(cls, card: VolumeCardRecord | None) -> VolumeCard | None:
        return None if card is None else cls.model_validate(card, from_attributes=True)


def series_card(series: SeriesRecord, language: str | None, shows_nsfw18: bool) -> dict[str, Any]:
    """The series fields every list item shows, localized: the fields of a model that shows a card.
    A first volume flagged 18+ is shown only to a reader who shows 18+ (`shows_nsfw18`); for
    anyone else the card has no volume, as a 404 hides the volume itself: its id and cover would
    tell that an 18+ volume exists."""
    card = series.first_volume
    return {
        "id": series.id,
        "name": series.name,
        "type": series.type,
        "slug": series.slug,
        "origin": series.origin,
        "client": series.client,
        "alias": localized(series.titles, language, series.name),
        "description": localized(series.descriptions, language, None),
        "volume": VolumeCard.of(card) if card is None or not card.nsfw18 or shows_nsfw18 else None,
        "average_rating": series.average_rating,
        "rating_count": series.rating_count,
    }
