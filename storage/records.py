"""What the stores return: typed records, made from stored documents here and only here.

Stored field names (`_id`, `price_cents`, `rating_half_points`, `titles`) stop at this module;
the HTTP layer reads records and turns them into the published response models."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str
    slug: str
    registered: datetime
    age_verified: bool
    roles: tuple[str, ...]
    settings: dict[str, Any]  # as stored: only the keys the user set
    avatar_version: int | None  # None: no profile image
    last_change: int = 0  # the number of the user's last change (storage.changes); 0 before the first

    @classmethod
    def of(cls, document: dict[str, Any]) -> UserRecord:
        image = document.get("profile_image")
        return cls(id=document["_id"], username=document["username"], slug=document["slug"],
                   registered=document["registered"], age_verified=bool(document.get("age_verified")),
                   roles=tuple(document.get("roles") or ()), settings=dict(document.get("settings") or {}),
                   avatar_version=image["version"] if image else None,
                   last_change=int(document.get("change_seq") or 0))


@dataclass(frozen=True)
class ListedUserRecord:
    """A user as the directory of public users lists them (storage.user_directory)."""

    id: str
    username: str
    slug: str
    registered: datetime
    avatar_version: int | None  # None: no profile image

    @classmethod
    def of(cls, row: dict[str, Any]) -> ListedUserRecord:
        return cls(id=row["_id"], username=row["username"], slug=row["name"], registered=row["registered"],
                   avatar_version=row.get("image_version"))


@dataclass(frozen=True)
class StatusRecord:
    series_id: int
    client: int
    visibility: str
    progress_type: str
    progress: float
    status: str
    reread: int | None
    score: float | None
    priority: str
    start: str | None
    end: str | None
    notes: str | None
    last_update: datetime

    @classmethod
    def of(cls, entry: dict[str, Any]) -> StatusRecord:
        return cls(series_id=entry["series_id"], client=entry["client"], visibility=entry["visibility"],
                   progress_type=entry["progress_type"], progress=entry["progress"], status=entry["status"],
                   reread=entry.get("reread"), score=entry.get("score"), priority=entry["priority"],
                   start=entry.get("start"), end=entry.get("end"), notes=entry.get("notes"),
                   last_update=entry["last_update"])


@dataclass(frozen=True)
class SessionRecord:
    """A session as its owner may see it: never the token, never its hash."""

    id: str
    created: datetime
    last_seen: datetime
    user_agent: str | None
    address: str | None
    current: bool  # the session of the request that asks

    @classmethod
    def of(cls, entry: dict[str, Any], current_hash: str) -> SessionRecord:
        return cls(id=entry["id"], created=entry["created"], last_seen=entry["last_seen"],
                   user_agent=entry.get("user_agent"), address=entry.get("address"),
                   current=entry.get("token_hash") == current_hash)


@dataclass(frozen=True)
class PersonalTokenRecord:
    """A personal token as its owner may see it: never the token, never its hash."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created: datetime
    last_used: datetime | None
    expires: datetime

    @classmethod
    def of(cls, entry: dict[str, Any]) -> PersonalTokenRecord:
        return cls(id=entry["id"], name=entry["name"], scopes=tuple(entry["scopes"]), created=entry["created"],
                   last_used=entry.get("last_used"), expires=entry["expires"])


@dataclass(frozen=True)
class RatingRecord:
    series_id: int
    rating: float
    last_update: datetime

    @classmethod
    def of(cls, entry: dict[str, Any]) -> RatingRecord:
        return cls(series_id=entry["series_id"], rating=float(entry["rating"]), last_update=entry["last_update"])


@dataclass(frozen=True)
class CollectionItemRecord:
    item_id: str
    volume_id: int
    series_id: int
    client: int
    price_cents: int | None
    buy_date: str | None
    added: datetime | None = None

    @classmethod
    def of(cls, entry: dict[str, Any]) -> CollectionItemRecord:
        return cls(item_id=entry["item_id"], volume_id=entry["volume_id"], series_id=entry["series_id"],
                   client=entry["client"], price_cents=entry.get("price_cents"), buy_date=entry.get("buy_date"),
                   added=entry.get("added"))


@dataclass(frozen=True)
class VolumeCardRecord:
    """The first volume a series card shows."""

    id: int
    cover_path: str | None
    nsfw: int
    nsfw18: int
    aspect_ratio: float | None

    @classmethod
    def of(cls, card: dict[str, Any] | None) -> VolumeCardRecord | None:
        if not card:
            return None
        return cls(id=card["id"], cover_path=card.get("cover_path"), nsfw=card.get("nsfw", 0),
                   nsfw18=card.get("nsfw18", 0), aspect_ratio=card.get("aspect_ratio"))


@dataclass(frozen=True)
class SeriesRecord:
    id: int
    name: str
    type: str | None
    slug: str | None
    origin: str | None
    client: int | None
    titles: dict[str, str]  # by language code
    descriptions: dict[str, str]
    first_volume: VolumeCardRecord | None
    rating_count: int
    rating_half_points: int
    # Read by the detail routes; list pages project them away and keep the defaults.
    nsfw18: bool = False
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def average_rating(self) -> float | None:
        # Ratings are summed in half points (integers): one division, no accumulated float error.
        return self.rating_half_points / (2 * self.rating_count) if self.rating_count else None

    @classmethod
    def of(cls, series: dict[str, Any]) -> SeriesRecord:
        return cls(id=series["_id"], name=series["name"], type=series.get("type"), slug=series.get("slug"),
                   origin=series.get("origin"), client=series.get("client"), titles=series.get("titles") or {},
                   descriptions=series.get("descriptions") or {},
                   first_volume=VolumeCardRecord.of(series.get("first_volume")),
                   rating_count=int(series.get("rating_count") or 0),
                   rating_half_points=int(series.get("rating_half_points") or 0),
                   nsfw18=bool(series.get("nsfw18")),
                   # Distinct: a title often reads the same in two languages ("One Piece" twice).
                   aliases=tuple(dict.fromkeys(alias["title"] for alias in series.get("aliases") or ())),
                   tags=tuple(tag for tag in series.get("tags") or () if isinstance(tag, str)))


@dataclass(frozen=True)
class VolumeRecord:
    id: int
    name: str
    series_id: int
    client: int | None  # not read for a list page, which needs only what it shows
    language: str | None
    release_date: str | None
    pages: int | None
    nsfw: int
    nsfw18: int
    aspect_ratio: float | None
    cover_path: str | None
    slug: str | None = None  # absent from volumes imported before volumes had slugs
    group_order: int | None = None

    @classmethod
    def of(cls, volume: dict[str, Any]) -> VolumeRecord:
        return cls(id=volume["_id"], name=volume["name"], series_id=volume["series_id"], client=volume.get("client"),
                   language=volume.get("language"), release_date=volume.get("release_date"),
                   pages=volume.get("pages"), nsfw=volume.get("nsfw", 0), nsfw18=volume.get("nsfw18", 0),
                   aspect_ratio=volume.get("aspect_ratio"), cover_path=volume.get("cover_path"),
                   slug=volume.get("slug"), group_order=volume.get("group_order"))


@dataclass(frozen=True)
class AvatarVersion:
    """A new profile image, as the change feed records it (storage.changes)."""

    version: int

    @classmethod
    def of(cls, entry: dict[str, Any]) -> AvatarVersion:
        return cls(version=int(entry["version"]))


@dataclass(frozen=True)
class AvatarReference:
    """The user's current profile image: its version and its GridFS files by resolution."""

    version: int
    content_type: str
    files: dict[str, Any]  # "high" / "scaled" -> file id
    lengths: dict[str, int]  # "high" / "scaled" -> bytes; empty for images stored before they were kept

    @classmethod
    def of(cls, image: dict[str, Any]) -> AvatarReference:
        return cls(version=image["version"], content_type=image["content_type"],
                   files={resolution: image[resolution] for resolution in ("high", "scaled")},
                   lengths=dict(image.get("lengths") or {}))


# The record of an entry of each list embedded in the user's document.
LIST_ENTRIES = {"statuses": StatusRecord.of, "ratings": RatingRecord.of, "collection": CollectionItemRecord.of}


@dataclass(frozen=True)
class StoredList:
    """One of the user's lists as the session query read it. Kept as stored, for the stores that
    work on the whole list (ordering 5,000 statuses for a page of 20 converts 20, not 5,000:
    measured, converting every entry added 20 ms to a 5,000-status page); `first()` is what
    the HTTP layer reads (a route's own entry)."""

    name: str
    stored: list[dict[str, Any]]

    def first(self) -> Any | None:
        return LIST_ENTRIES[self.name](self.stored[0]) if self.stored else None

    def series_ids(self) -> list[int]:
        """The series of the entries, in order (an id twice if two entries name it)."""
        return [entry["series_id"] for entry in self.stored]

    def items_of(self, volume_ids: Iterable[int]) -> dict[int, CollectionItemRecord]:
        """The collection's items of these volumes, by volume: which of them the user owns, and as
        which item. One pass; only the items found are converted."""
        assert self.name == "collection", self.name
        wanted = set(volume_ids)
        return {item["volume_id"]: CollectionItemRecord.of(item) for item in self.stored if item["volume_id"] in wanted}

    def statuses(self) -> list[StatusRecord]:
        """Every entry as a StatusRecord: for a route that answers each one (an export)."""
        assert self.name == "statuses", self.name
        return [StatusRecord.of(entry) for entry in self.stored]
# The record of a document of each catalog collection.
CATALOG_DOCUMENTS: dict[str, Callable[[dict[str, Any]], SeriesRecord | VolumeRecord]] = {
    "series": SeriesRecord.of, "volumes": VolumeRecord.of}
