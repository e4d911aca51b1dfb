"""The change feed's query and answer (`GET /user/changes`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictStr

from auth.clock import iso_utc
from handlers.schemas.auth import avatar_url
from handlers.schemas.collection import money
from handlers.schemas.common import Count, DateText, DateTimeText, RequestModel
from handlers.schemas.ratings import SeriesRating
from handlers.schemas.reading import ReadingStatus
from handlers.schemas.settings import UserSettings, settings_with_defaults
from storage import changes
from storage.changes import StoredChange
from storage.records import AvatarVersion, CollectionItemRecord, RatingRecord, StatusRecord

MAX_CHANGES = 1000
DEFAULT_CHANGES = 100
# A cursor is the number of the last change a client has seen, as text: digits only, at most 18
# of them (below 2**63, what the database's counter holds).
_CURSOR = r"^[0-9]{1,18}$"


class ChangesQuery(RequestModel):
    since: Annotated[StrictStr, Field(pattern=_CURSOR)] | None = None
    limit: Annotated[int, Count(1, MAX_CHANGES)] = DEFAULT_CHANGES


class ChangedCollectionItem(BaseModel):
    """A collection item as stored: its volume and series by id (the list routes show the rest)."""

    item_id: str
    volume_id: int
    series_id: int
    client: int
    price: float | None
    buy_date: DateText | None
    added: DateTimeText | None


class AvatarState(BaseModel):
    """The new profile image (a deleted one is a delete, its entry null)."""

    profile_image: str  # the scaled image's URL, as in User
    version: int


ChangedEntry = ReadingStatus | SeriesRating | ChangedCollectionItem | UserSettings | AvatarState


class Change(BaseModel):
    cursor: str
    kind: Literal["reading-status", "rating", "collection-item", "settings", "avatar"]
    id: str
    op: Literal["upsert", "delete"]
    at: DateTimeText
    entry: ChangedEntry | None
    import_id: str | None = None
    # The entry's entity tag, for `If-Match` on its update or delete (a status, a rating, a
    # collection item; null for a delete, the settings and the avatar): filled in by the HTTP layer.
    etag: str | None = None

    @classmethod
    def of(cls, change: StoredChange, user_id: str) -> Change:
        return cls(cursor=str(change.seq), kind=change.kind, id=change.id, op=change.op,  # type: ignore[arg-type]
                   at=iso_utc(change.at), entry=entry_of(change, user_id), import_id=change.import_id)


def entry_of(change: StoredChange, user_id: str) -> ChangedEntry | None:
    """The entry as the route that reads it answers it."""
    stored = change.entry
    if stored is None:
        return None
    if change.kind == changes.READING_STATUS:
        return ReadingStatus.of(StatusRecord.of(stored), user_id)
    if change.kind == changes.RATING:
        return SeriesRating.of(RatingRecord.of(stored), user_id)
    if change.kind == changes.COLLECTION_ITEM:
        item = CollectionItemRecord.of(stored)
        return ChangedCollectionItem(item_id=item.item_id, volume_id=item.volume_id, series_id=item.series_id,
                                     client=item.client, price=money(item.price_cents), buy_date=item.buy_date,
                                     added=iso_utc(item.added) if item.added else None)
    if change.kind == changes.SETTINGS:
        return UserSettings.model_validate(settings_with_defaults(stored))
    version = AvatarVersion.of(stored).version
    url = avatar_url(user_id, version)
    assert url is not None  # a version always has one
    return AvatarState(profile_image=url, version=version)


class ChangesPage(BaseModel):
    changes: list[Change]
    next: str  # ask with since=<next> to get what came after
    more: bool  # another page is ready now
