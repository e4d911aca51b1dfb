"""The account file: what `GET /user/export` writes and `POST /user/import` reads.

Format `tsundoku-export`, version 1. Everything a user has, as JSON: the profile, the settings,
the three lists, the avatar (its URLs and a SHA-256 of each stored size), the sessions
(never their secrets) and the newest 1,000 changes of the change feed, at most 2 MB of them (with each reading
status's history: the entry before and the fields that changed). Instants are ISO 8601 in UTC as stored (millisecond precision), prices
integer cents, so that nothing is rounded on the way out and back in. The lists are validated
on import by the same rules as the routes that write them; the profile, the avatar, the
sessions and the changes are only read out (an import ignores them), so a file may leave them
out.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)

from auth.clock import iso_utc
from formats.json_positions import line_of
from formats.json_reading import JsonLimits, JsonRefused, parse_json
from formats.mal_xml import MAX_ENTRIES
from formats.problems import TooLarge, Unreadable
from handlers.schemas.auth import avatar_url
from handlers.schemas.catalog import ClientId
from handlers.schemas.collection import CalendarDate, calendar_date
from handlers.schemas.common import JsonInt
from handlers.schemas.ratings import Rating
from handlers.schemas.reading import ReadingStatusBody
from handlers.schemas.settings import NSFW_18, SettingsUpdate, settings_with_defaults
from storage.account_export import AccountData
from storage.account_import import IncomingAccount
from storage.records import CollectionItemRecord, RatingRecord, StatusRecord

EXPORT_FORMAT = "tsundoku-export"
EXPORT_VERSION = 1
CatalogNumber = Annotated[JsonInt, Field(gt=0, le=2**53)]
MAX_PRICE_CENTS = 10_000_000  # 100,000.00, as the collection routes allow
# Entries per list a file may hold: as many as a MyAnimeList file.
MAX_LIST_ENTRIES = MAX_ENTRIES
# A list is refused at its first bad entry (one error, not one per entry), and past its length
# before any entry is looked at.
FileList: Any = Field(default_factory=list, max_length=MAX_LIST_ENTRIES, fail_fast=True)


# RFC 3339's date-time, as JSON Schema's `format: date-time` means it: a date, `T`, a time with
# seconds, and an offset (`Z` or `+hh:mm`); either letter in either case.
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


def _date_time_text(value: Any) -> datetime:
    """An instant of the file: only RFC 3339 text, what the export writes and the document says
    (pydantic alone would also take a number, `2024-01-01` or digits, as times)."""
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise ValueError("must be a date-time such as 2024-05-17T09:30:00Z")
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError("is not a real date-time") from None


def _storable_instant(value: datetime) -> datetime:
    """An instant as MongoDB keeps it: in UTC, from year 1 to 9999. `0001-01-01T00:00:00+00:01`
    is a valid RFC 3339 text but falls before year 1 in UTC, which BSON cannot encode."""
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("must be an instant from year 1 to 9999 in UTC") from None


Instant = Annotated[datetime, BeforeValidator(_date_time_text), AfterValidator(_storable_instant),
                    Field(description="An RFC 3339 date-time from year 1 to 9999 in UTC")]


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


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
    price_cents: Annotated[JsonInt, Field(ge=0, le=MAX_PRICE_CENTS)] | None
    buy_date: CalendarDate | None
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
    bytes: JsonInt
    sha256: str


class ExportedAvatar(_FileModel):
    version: JsonInt
    scaled: ExportedImage
    high: ExportedImage


class ExportedSession(_FileModel):
    id: str
    created: Instant
    last_seen: Instant
    user_agent: str | None
    address: str | None


class ExportedFeedChange(_FileModel):
    """A change of the change feed (and, for a reading status, of its history), as stored: read
    out only, an import ignores it."""

    cursor: str
    kind: str
    id: str
    op: str
    at: Instant
    entry: dict[str, Any] | None
    import_id: str | None = None
    before: dict[str, Any] | None = None
    fields: Annotated[list[str], Field(max_length=64)] | None = None


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
    changes: list[ExportedFeedChange] = FileList


# What a file of MAX_LIST_ENTRIES statuses, ratings and items holds (28, 8 and 16 values each,
# as json_input counts them), with room for the profile, settings and sessions, and the 1,000
# changes an export carries (about 70 values each): no more is parsed, whatever the 16 MB hold.
ACCOUNT_FILE_LIMITS = JsonLimits(max_values=1_200_000)
INVALID_FILE = "Invalid account file"
# Each list's entries are unique by this field, as in the account.
UNIQUE_BY = {"reading_statuses": "series_id", "ratings": "series_id", "collection": "volume_id"}


def account_file(data: AccountData, exported: Any) -> dict[str, Any]:
    """The file, as JSON-ready values. Built from the stored records without validating them
    again: a value edited by hand in the database is exported as it is."""
    user = data.user
    stored_settings = {key: value for key, value in settings_with_defaults(user.settings).items()
                       if key in user.settings}
    avatar = None
    if user.avatar_version is not None and set(data.avatar) == {"high", "scaled"}:
        avatar = {"version": user.avatar_version, **{
            resolution: {"url": avatar_url(user.id, user.avatar_version, resolution),
                         "content_type": image.content_type, "bytes": image.length, "sha256": image.sha256}
            for resolution, image in data.avatar.items()}}
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported": exported,
        "profile": {"id": user.id, "username": user.username, "slug": user.slug, "registered": user.registered,
                    "age_verified": user.age_verified, "roles": list(user.roles)},
        "settings": stored_settings,
        "avatar": avatar,
        "reading_statuses": [vars(status) for status in data.statuses],
        "ratings": [vars(rating) for rating in data.ratings],
        "collection": [vars(item) for item in data.collection],
        "sessions": [{"id": s.id, "created": s.created, "last_seen": s.last_seen, "user_agent": s.user_agent,
                      "address": s.address} for s in data.sessions],
        "changes": [{"cursor": str(c.seq), "kind": c.kind, "id": c.id, "op": c.op, "at": c.at, "entry": c.entry,
                     "import_id": c.import_id, "before": c.before, "fields": c.fields} for c in data.changes],
    }


def export_text(data: AccountData, now: datetime) -> str:
    """The account file as its text. Pure, for a worker."""
    return json.dumps(account_file(data, now), indent=1, ensure_ascii=False, default=_file_value)


def _file_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    raise TypeError(f"cannot write {type(value).__name__}")


def read_account_file(chunks: list[bytes]) -> AccountFile:
    """The body (as it arrived, in chunks) as an account file; TooLarge past the limits, or
    Unreadable naming the line of the first problem. Linear in the file, for a worker."""
    body = b"".join(chunks)
    try:
        parsed = parse_json(body, ACCOUNT_FILE_LIMITS)
    except JsonRefused as refused:
        raise TooLarge(f"{INVALID_FILE}: {refused}") from None
    except UnicodeDecodeError:
        raise Unreadable(f"{INVALID_FILE}: not UTF-8") from None
    except json.JSONDecodeError as error:
        raise Unreadable(f"{INVALID_FILE} at line {error.lineno}: {error.msg}") from None
    except (ValueError, RecursionError) as error:
        raise Unreadable(f"{INVALID_FILE}: {error}") from None
    try:
        file = AccountFile.model_validate(parsed)
    except ValidationError as error:
        first = error.errors(include_url=False, include_context=False, include_input=False)[0]
        location = tuple(step for step in first["loc"] if isinstance(step, (str, int)))
        raise _located(body, location, first["msg"]) from None
    for name, key in UNIQUE_BY.items():
        seen: set[int] = set()
        for index, entry in enumerate(getattr(file, name)):
            value = getattr(entry, key)
            if value in seen:
                raise _located(body, (name, index, key), f"a second entry for {key} {value}")
            seen.add(value)
    return file


def _located(body: bytes, location: tuple[str | int, ...], reason: str) -> Unreadable:
    field = ".".join(str(step) for step in location) or "body"
    return Unreadable(f"{INVALID_FILE} at line {line_of(body, location)}", field, reason)


def incoming_account(file: AccountFile, may_rate: bool) -> IncomingAccount:
    return IncomingAccount(
        statuses=[StatusRecord(series_id=s.series_id, client=s.client, visibility=s.visibility,
                               progress_type=s.progress_type, progress=s.progress, status=s.status, reread=s.reread,
                               score=s.score, priority=s.priority, start=s.start, end=s.end, notes=s.notes,
                               last_update=s.last_update) for s in file.reading_statuses],
        ratings=[RatingRecord(series_id=r.series_id, rating=r.rating, last_update=r.last_update) for r in file.ratings],
        collection=[CollectionItemRecord(item_id=i.item_id, volume_id=i.volume_id, series_id=i.series_id,
                                         client=i.client, price_cents=i.price_cents, buy_date=i.buy_date,
                                         added=i.added) for i in file.collection],
        settings=file.settings.model_dump(by_alias=True, exclude_unset=True),
        may_rate=may_rate,
        refused_setting=lambda key, value, age_verified: value == NSFW_18 and not age_verified,
    )


def read_incoming_account(chunks: list[bytes], may_rate: bool) -> IncomingAccount:
    """The body as what the import merges: in a worker, as a whole, since every step is linear
    in the file (building 60,000 records on the event loop took tens of milliseconds)."""
    return incoming_account(read_account_file(chunks), may_rate)

