"""Collection bodies, queries and answers. Money crosses the API as a number with at most two
decimals and is kept as integer cents."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, Field, StrictStr, WithJsonSchema, field_validator

from handlers.schemas.catalog import ClientId
from handlers.schemas.common import PAGE_FROM, PAGE_TO, PAGE_TOTAL, AcceptsKeyObject, DateText, RequestModel
from handlers.schemas.reading import ListQuery
from languages import localized
from partial_dates import FULL_DATE_PATTERN
from storage.records import CollectionItemRecord, SeriesRecord, VolumeRecord

MAX_PRICE = Decimal(100_000)
CENT = Decimal("0.01")
_FULL_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    try:
        amount = Decimal(str(value))  # the shortest text of the float: 19.99, never 19.989999...
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
        raise ValueError("must be from 0 to 100000")
    if amount != amount.quantize(CENT):
        raise ValueError("must have at most 2 decimals")
    return amount


# At most two decimals, which JSON Schema's float `multipleOf` cannot say exactly (19.99 / 0.01 is
# not a whole number in binary, and validators refuse it): said in the description, one of the
# rules no schema can say (docs/api.md).
Price = Annotated[Decimal, BeforeValidator(_money), WithJsonSchema({
    "type": "number", "minimum": 0, "maximum": 100000,
    "description": "At most two decimals (a price is kept exactly, in cents): 9.999 is refused."})]


def calendar_date(value: str) -> str:
    if not _FULL_DATE.fullmatch(value):
        raise ValueError("must be YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real date") from None
    return value


# A day of the calendar, `YYYY-MM-DD`: checked by calendar_date, published as its pattern.
CalendarDate = Annotated[StrictStr, Field(json_schema_extra={"format": "date", "pattern": FULL_DATE_PATTERN})]


def cents(price: Decimal | None) -> int | None:
    return None if price is None else int(price * 100)


def money(cents_value: int | None) -> float | None:
    # An integer number of cents over 100 prints as its exact decimal (shortest float repr).
    return None if cents_value is None else cents_value / 100


class _PriceAndDate(RequestModel):
    @field_validator("date", check_fields=False)
    @classmethod
    def _real_date(cls, value: str | None) -> str | None:
        return None if value is None else calendar_date(value)


class CollectionAddBody(_PriceAndDate):
    price: Price | None = None
    date: CalendarDate | None = None


class CollectionUpdateBody(_PriceAndDate):
    """Both keys are required, as in the spec; `null` records that the value is unknown."""

    price: Price | None
    date: CalendarDate | None


class CollectionQuery(ListQuery):
    order: Annotated[Literal["name-asc", "name-desc"], AcceptsKeyObject] = "name-asc"
    client: ClientId


class StatsQuery(RequestModel):
    client: ClientId


class ItemAdded(BaseModel):
    data: str
    code: int
    item_id: str


class ToggleQuery(RequestModel):
    client: ClientId


class CollectionToggled(BaseModel):
    """The spec's message, and the state the toggle left: a client that sent a toggle again (its
    answer lost) reads where it stands instead of guessing."""

    data: str
    code: int
    in_collection: bool
    item_id: str | None = Field(description="the new item's id when the volume was added; null when it was removed")


class CollectionSeries(BaseModel):
    id: int
    name: str
    type: str | None


class CollectionEntry(BaseModel):
    """What the owner's collection list shows of an item, and what its `etag` is the tag of."""

    item_id: str
    buy_date: DateText | None
    price: float | None

    @classmethod
    def of(cls, item: CollectionItemRecord) -> CollectionEntry:
        return cls(item_id=item.item_id, buy_date=item.buy_date, price=money(item.price_cents))


class TaggedCollectionEntry(CollectionEntry):
    etag: str = Field(description="The item's entity tag: as `If-Match` to `POST /user/collection/update/{item_id}` "
                                  "or `DELETE /user/collection/delete/{item_id}`, the write happens only if the "
                                  "item is still as listed (else 412)")

    @classmethod
    def tagged(cls, item: CollectionItemRecord, etag: str) -> TaggedCollectionEntry:
        """`etag`: the item's tag (the tag of its `CollectionEntry`, computed by the HTTP layer)."""
        return cls(**CollectionEntry.of(item).model_dump(), etag=etag)


class CollectionVolume(BaseModel):
    id: int
    name: str
    series: CollectionSeries
    language: str | None
    release_date: DateText | None
    pages: int | None
    nsfw: int
    nsfw18: int
    aspect_ratio: float | None
    cover_path: str | None
    collection: TaggedCollectionEntry
    in_collection: bool


    @classmethod
    def of(cls, item: CollectionItemRecord, volume: VolumeRecord, series: SeriesRecord,
           language: str | None, etag: str) -> CollectionVolume:
        """`etag`: the item's tag (the tag of its `CollectionEntry`, computed by the HTTP layer)."""
        # The volume's own fields as the record has them (the model ignores the ones it does not show).
        return cls(**vars(volume),
                   series=CollectionSeries(id=series.id, name=localized(series.titles, language, series.name),
                                           type=series.type),
                   collection=TaggedCollectionEntry.tagged(item, etag),
                   in_collection=True)


class CollectionListPage(BaseModel):
    volumes: list[CollectionVolume]
    max: int = Field(description=PAGE_TOTAL)
    from_: int = Field(alias="from", description=PAGE_FROM)
    to: int = Field(description=PAGE_TO)

    @classmethod
    def of(cls, volumes: Sequence[CollectionVolume], total: int, offset: int) -> Self:
        # A sequence, so a subclass's page takes its own volumes; pydantic copies the list anyway.
        return cls(volumes=list(volumes), max=total, to=offset + len(volumes), **{"from": offset})


class CollectionStatistics(BaseModel):
    total_items: int
    total_spent: float
    first_buy: DateText | None
    last_buy: DateText | None
