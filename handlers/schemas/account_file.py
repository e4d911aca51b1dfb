"""The account file: what `GET /user/export` writes and `POST /user/import` reads.

Format `tsundoku-export`, version 1. Everything a user has, as JSON: the profile, the settings,
the three lists, the avatar (its URLs and a SHA-256 of each stored size) and the sessions
(never their secrets). Instants are ISO 8601 in UTC as stored (millisecond precision), prices
integer cents, so that nothing is rounded on the way out and back in. The lists are validated
on import by the same rules as the routes that write them; the profile, the avatar and the
sessions are only read out (an import ignores them), so a file may leave them out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, field_validator

from handlers.mal_xml import MAX_ENTRIES
from handlers.schemas.catalog import ClientId
from handlers.schemas.collection import calendar_date
from handlers.schemas.ratings import Rating
from handlers.schemas.reading import ReadingStatusBody
from handlers.schemas.settings import SettingsUpdate

EXPORT_FORMAT = "tsundoku-export"
EXPORT_VERSION = 1
CatalogNumber = Annotated[int, Field(gt=0, le=2**53)]
MAX_PRICE_CENTS = 10_000_000  # 100,000.00, as the collection routes allow
# Entries per list a file may hold: as many as a MyAnimeList file.
MAX_LIST_ENTRIES = MAX_ENTRIES
# A list is refused at its first bad entry (one error, not one per entry), and past its length
# before any entry is looked at.
FileList: Any = Field(default_factory=list, max_length=MAX_LIST_ENTRIES, fail_fast=True)


def _storable_instant(value: datetime) -> datetime:
    """An instant as MongoDB keeps it: in UTC, from year 1 to 9999. `0001-01-01T00:00:00+00:01`
    is a valid ISO 8601 text but falls before year 1 in UTC, which BSON cannot encode; no offset
    is taken as UTC, as the export writes."""
    try:
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    except OverflowError:
        raise ValueError("must be an instant from year 1 to 9999 in UTC") from None


Instant = Annotated[datetime, AfterValidator(_storable_instant)]


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportedStatus(ReadingStatusBody):
    series_id: CatalogNumber
    last_update: Instant


class ExportedRating(_FileModel):
    series_id: CatalogNumber
    rating: Rating
    last_update: Instant


class ExportedItem(_FileModel):
    item_id: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{24}$")]
    volume_id: CatalogNumber
    series_id: CatalogNumber
    client: ClientId
    price_cents: Annotated[int, Field(ge=0, le=MAX_PRICE_CENTS, strict=True)] | None
    buy_date: StrictStr | None
    added: Instant | None = None

    @field_validator("buy_date")
    @classmethod
    def _real_date(cls, value: str | None) -> str | None:
        return None if value is None else calendar_date(value)


class ExportedProfile(_FileModel):
    id: str
    username: str
    slug: str
    registered: Instant
    age_verified: bool
    roles: list[str] = Field(max_length=16)


class ExportedImage(_FileModel):
    url: str
    content_type: str
    bytes: int
    sha256: str


class ExportedAvatar(_FileModel):
    version: int
    scaled: ExportedImage
    high: ExportedImage


class ExportedSession(_FileModel):
    id: str
    created: Instant
    last_seen: Instant
    user_agent: str | None
    address: str | None


class AccountFile(_FileModel):
    format: Literal["tsundoku-export"]
    version: Literal[1]
    exported: Instant | None = None
    profile: ExportedProfile | None = None
    settings: SettingsUpdate = Field(default_factory=SettingsUpdate)
    avatar: ExportedAvatar | None = None
    reading_statuses: list[ExportedStatus] = FileList
    ratings: list[ExportedRating] = FileList
    collection: list[ExportedItem] = FileList
    sessions: list[ExportedSession] = FileList


class ListReport(BaseModel):
    """What an import did (or, in a dry run, would do) to one list, counted by entry."""

    add: int = 0  # entries the account does not have
    change: int = 0  # entries it has with other values, replaced (merge=replace)
    kept: int = 0  # entries it has with other values, left as they are (merge=keep)
    unchanged: int = 0  # entries it has with the same values
    unknown: list[int] = Field(default_factory=list)  # series (or, for the collection, volume) ids not in the catalog
    refused: int = 0  # entries the user may not write (ratings without `rate-series`)


class ImportReport(BaseModel):
    mode: Literal["dry-run", "apply"]
    merge: Literal["keep", "replace"]
    applied: bool
    reading_statuses: ListReport
    ratings: ListReport
    collection: ListReport
    settings: ListReport


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["dry-run", "apply"] = "dry-run"
    merge: Literal["keep", "replace"] = "keep"
