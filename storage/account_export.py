"""Everything stored about one user, read for the account file (`GET /user/export`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from storage.avatars import RESOLUTIONS, AvatarStore
from storage.changes import StoredChange
from storage.records import (
    AvatarReference,
    CollectionItemRecord,
    RatingRecord,
    SessionRecord,
    StatusRecord,
    UserRecord,
)
from storage.users import PROFILE_FIELDS, UserStore

# The account file carries the newest changes kept, not all: a status's history of 200 changes
# for each of 20,000 statuses would pass the size an import takes back. All of them stay in the
# service (GET /user/changes, GET /user/reading-status/id/:id/history).
EXPORTED_CHANGES = 1000
# And no more than this of them, stored: a thousand status changes with notes at their limit (each
# with the status before and after) would be 80 MB, a file the import refuses (16 MB) though the
# account holds one status.
EXPORTED_CHANGE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class StoredImage:
    content_type: str
    length: int
    sha256: str


@dataclass(frozen=True)
class AccountData:
    user: UserRecord
    statuses: list[StatusRecord]
    ratings: list[RatingRecord]
    collection: list[CollectionItemRecord]
    sessions: list[SessionRecord]
    avatar: dict[str, StoredImage]  # by resolution; empty without an image
    changes: list[StoredChange]  # the newest EXPORTED_CHANGES kept (storage.changes), histories too


class AccountExport:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], users: UserStore, avatars: AvatarStore) -> None:
        self._users = db["users"]
        self._user_store = users
        self._avatars = avatars

    async def read(self, user_id: str, current_hash: str) -> AccountData | None:
        found = await self._users.find_one(
            {"_id": user_id}, {**PROFILE_FIELDS, "statuses": 1, "ratings": 1, "collection": 1, "sessions": 1})
        if found is None:
            return None
        # A session stored before sessions had ids gets its id here (only then a second read).
        sessions = await self._user_store.session_records(user_id, found.get("sessions") or [], current_hash)
        image = found.get("profile_image")
        user = UserRecord.of(found)
        return AccountData(
            user=user,
            statuses=[StatusRecord.of(entry) for entry in found.get("statuses") or []],
            ratings=[RatingRecord.of(entry) for entry in found.get("ratings") or []],
            collection=[CollectionItemRecord.of(entry) for entry in found.get("collection") or []],
            sessions=sessions,
            avatar=await self._images(AvatarReference.of(image)) if image else {},
            changes=await self._user_store.changes.newest(user_id, EXPORTED_CHANGES, EXPORTED_CHANGE_BYTES,
                                                          user.last_change),
        )

    async def _images(self, reference: AvatarReference) -> dict[str, StoredImage]:
        """Each stored size's length and SHA-256, read from its chunks (a few hundred KB)."""
        images = {}
        for resolution in RESOLUTIONS:
            stored = await self._avatars.open(reference, resolution)
            if stored is None:
                continue  # replaced between the two reads: the file names the newer image
            digest = hashlib.sha256()
            length = 0
            async for chunk in stored.chunks:
                digest.update(chunk)
                length += len(chunk)
            images[resolution] = StoredImage(stored.content_type, length, digest.hexdigest())
        return images
