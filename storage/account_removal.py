"""Deleting an account: everything the user stored goes, and every series' rating aggregates
lose exactly the user's share.

Three steps, each safe to repeat:
1. The profile image is removed as the avatar routes remove it (the floor is raised, so an
   upload already under way cannot switch in afterwards with an older version; the files go).
2. One transaction reads the user's ratings, moves each rated series' aggregates back by that
   rating, and deletes the user document, the username and the user's row in the directory of
   public users. It reads and writes in one snapshot:
   a rating changed meanwhile makes the user's delete conflict, and the transaction runs again
   with the new ratings, so the aggregates stay exact.
3. Files still stored under the user's id are deleted: an upload that began before step 1 and
   switched in between steps 1 and 2 leaves some.

A crash before step 2 commits leaves the account working (without its image): deleting it again
finishes the job. A crash after it leaves at most step 3's files, whose owner no longer exists:
`sweep` (server.py sweep) deletes them. It also deletes avatar chunks that no file document
refers to, which only an upload whose process died midway leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from storage import changes
from storage.avatars import AvatarStore
from storage.database import in_transaction
from storage.ratings import half_points
from storage.user_directory import UserDirectory

# Owners looked up per query when sweeping: one `$in` of this many ids.
_OWNER_BATCH = 500


# How old a file id must be before its chunks without a file document are deleted. GridFS writes
# a file's chunks first and its document last; an upload takes seconds (each write is bounded by
# the request's operation timeout), so a younger file may simply not have its document yet. An
# hour is far beyond any upload and also covers clocks that differ between the service that made
# the id and the machine that sweeps.
ORPHAN_CHUNK_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class SweepReport:
    owners: int  # users gone whose files were still stored
    files: int
    orphan_chunks: int = 0  # chunks of uploads that stopped before their file document


class AccountRemoval:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], avatars: AvatarStore) -> None:
        self._db = db
        self._users = db["users"]
        self._usernames = db["usernames"]
        self._series = db["series"]
        self._imports = db["imports"]
        self._changes = db[changes.COLLECTION]
        self._avatars = avatars
        self._directory = UserDirectory(db)

    async def remove(self, user_id: str) -> bool:
        """False when there is no such user (any files left under the id are deleted anyway:
        that finishes a removal that stopped after its transaction)."""
        await self._avatars.remove(user_id)
        removed = await in_transaction(self._db, lambda session: self._remove_documents(user_id, session))
        await self._avatars.delete_files_of(user_id)
        return removed

    async def _remove_documents(self, user_id: str, session: AsyncClientSession) -> bool:
        user = await self._users.find_one({"_id": user_id}, {"username": 1, "ratings": 1}, session=session)
        if user is None:
            return False
        moves = [UpdateOne({"_id": rating["series_id"]},
                           {"$inc": {"rating_half_points": -half_points(rating["rating"]), "rating_count": -1}})
                 for rating in user.get("ratings") or []]
        if moves:
            await self._series.bulk_write(moves, ordered=False, session=session)
        await self._users.delete_one({"_id": user_id}, session=session)
        # Import records hold earlier versions of the user's entries, and so do the changes
        # (storage.changes): they go with the account.
        await self._imports.delete_many({"user_id": user_id}, session=session)
        await self._changes.delete_many({"user_id": user_id}, session=session)
        await self._usernames.delete_one({"_id": user["username"].lower(), "user_id": user_id}, session=session)
        await self._directory.remove(user_id, session)
        return True

    async def sweep(self) -> SweepReport:
        """Deletes the avatar files of users that no longer exist, and the chunks older than
        `ORPHAN_CHUNK_AGE` that have no file document (an upload whose process died)."""
        owners = await self._avatars.file_owners()
        gone: list[str] = []
        for start in range(0, len(owners), _OWNER_BATCH):
            batch = owners[start:start + _OWNER_BATCH]
            present: set[Any] = {u["_id"] async for u in self._users.find({"_id": {"$in": batch}}, {"_id": 1})}
            gone += [owner for owner in batch if owner not in present]
        files = 0
        for owner in gone:
            files += await self._avatars.delete_files_of(owner)
        orphan_chunks = await self._avatars.delete_orphan_chunks(datetime.now(UTC) - ORPHAN_CHUNK_AGE)
        return SweepReport(owners=len(gone), files=files, orphan_chunks=orphan_chunks)
