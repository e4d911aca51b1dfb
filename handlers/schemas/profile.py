"""The signed-in user's own profile (`GET /user/me`): the User of the auth routes, the image's
version, and the overview figures of their lists."""

from __future__ import annotations

from pydantic import BaseModel

from handlers.schemas.auth import User
from storage.profile_figures import EntryCounts
from storage.records import UserRecord


class ProfileStats(BaseModel):
    reading_entries: int
    collection_entries: int
    list_count: None  # the service has no lists of the user's own beyond these two: never a number


class OwnProfile(User):
    image_version: int | None  # the profile image's version (as in its URL's `v`); null without an image
    stats: ProfileStats

    @classmethod
    def of_user(cls, user: UserRecord, counts: EntryCounts) -> OwnProfile:
        shown = User.of(user)
        return cls(**{name: getattr(shown, name) for name in User.model_fields}, image_version=user.avatar_version,
                   stats=ProfileStats(reading_entries=counts.reading_entries,
                                      collection_entries=counts.collection_entries, list_count=None))
