"""What anyone may see of a user: the profile, the public reading list, the collection when
its owner shares it, and the list of users with a public profile (`GET /users`). Never notes,
never prices, never a private entry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

from handlers.schemas.auth import avatar_url
from handlers.schemas.catalog import series_card
from handlers.schemas.collection import CollectionListPage, CollectionVolume
from handlers.schemas.common import PAGE_FROM, PAGE_TO, PAGE_TOTAL, Count, DateText, capped_limit
from handlers.schemas.reading import (
    MAX_LIMIT,
    HistoryItem,
    PagedSearch,
    ReadingHistoryPage,
    ReadingStatus,
)
from handlers.schemas.reading_stats import PublicStats
from storage.records import (
    CollectionItemRecord,
    ListedUserRecord,
    SeriesRecord,
    StatusRecord,
    UserRecord,
    VolumeRecord,
)


class PublicUser(BaseModel):
    id: str
    username: str
    slug: str
    profile_image: str | None
    registered: datetime

    @classmethod
    def of(cls, user: UserRecord) -> PublicUser:
        return cls(id=user.id, username=user.username, slug=user.slug,
                   profile_image=avatar_url(user.id, user.avatar_version), registered=user.registered)


class PublicProfile(BaseModel):
    user: PublicUser
    stats: PublicStats


UsersOrder = Literal["name-asc", "name-desc", "registered-asc", "registered-desc"]
USERS_PAGE = 44  # the later MangaDB page's default


class UsersQuery(PagedSearch):
    """Paged and searched as the other lists; `search` is the beginning of the username, in any case."""

    order: UsersOrder = "name-asc"
    limit: Annotated[int, Count(0), Field(description=capped_limit(MAX_LIMIT))] = USERS_PAGE


class ListedUser(PublicUser):
    image_version: int | None  # the profile image's version (its URL's `v`); null without an image

    @classmethod
    def of_listed(cls, user: ListedUserRecord) -> ListedUser:
        return cls(id=user.id, username=user.username, slug=user.slug,
                   profile_image=avatar_url(user.id, user.avatar_version), registered=user.registered,
                   image_version=user.avatar_version)


class UsersPage(BaseModel):
    users: list[ListedUser]
    max: int = Field(description=PAGE_TOTAL)
    count: int  # the users on this page
    from_: int = Field(alias="from", description=PAGE_FROM)
    to: int = Field(description=PAGE_TO)

    @classmethod
    def of(cls, users: Sequence[ListedUser], total: int, offset: int) -> UsersPage:
        return cls(users=list(users), max=total, count=len(users), to=offset + len(users), **{"from": offset})


if TYPE_CHECKING:
    # Built at import from ReadingStatus's fields; the type checker sees the class without them.
    class PublicReadingStatus(BaseModel):
        pass
else:
    # A status as others see it: every field of the owner's view but the notes.
    PublicReadingStatus = create_model(
        "PublicReadingStatus", **{name: (field.annotation, field)
                                  for name, field in ReadingStatus.model_fields.items() if name != "notes"})


# The pages and items below narrow or replace a field of the owner's model, as pydantic allows;
# mypy sees a mutable attribute changing type, hence each `ignore[assignment]`.
class PublicHistoryItem(HistoryItem):
    reading_history: PublicReadingStatus = Field(alias="reading-history")  # type: ignore[assignment]

    @classmethod
    def of(cls, status: StatusRecord, series: SeriesRecord, user_id: str, language: str | None,
           shows_nsfw18: bool) -> PublicHistoryItem:
        shown = ReadingStatus.of(status, user_id).model_dump(exclude={"notes"})
        status_field: dict[str, Any] = {"reading-history": PublicReadingStatus(**shown)}
        return cls(**series_card(series, language, shows_nsfw18), **status_field)


class PublicHistoryPage(ReadingHistoryPage):
    series: list[PublicHistoryItem]  # type: ignore[assignment]


class PublicCollectionEntry(BaseModel):
    buy_date: DateText | None


class PublicCollectionVolume(CollectionVolume):
    collection: PublicCollectionEntry  # type: ignore[assignment]

    @classmethod
    def of(cls, item: CollectionItemRecord, volume: VolumeRecord, series: SeriesRecord,
           language: str | None, etag: str = "") -> PublicCollectionVolume:
        # No price and no tag: a visitor changes nothing of it.
        shown = CollectionVolume.of(item, volume, series, language, etag).model_dump(exclude={"collection"})
        return cls(**shown, collection=PublicCollectionEntry(buy_date=item.buy_date))


class PublicCollectionPage(CollectionListPage):
    volumes: list[PublicCollectionVolume]  # type: ignore[assignment]
