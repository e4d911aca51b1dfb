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
   The same transaction leaves a note in `removals` naming the user and their change counter.
3. The user's changes (storage.changes) are deleted in batches of numbers, and then the note.
   Not in step 2: a user can have hundreds of thousands of changes (a history of 200 for each
   status), and deleting 20,000 took 6.5 s on the embedded database, so a larger account would
   pass a transaction's time limit and could never be deleted. Nobody reads them meanwhile: the
   feed needs the user's session, and a write that raced the removal conflicted with it.
4. Files still stored under the user's id are deleted: an upload that began before step 1 and
   switched in between steps 1 and 2 leaves some.

A crash before step 2 commits leaves the account working (without its image): deleting it again
finishes the job. A crash after it leaves at most step 3's changes (with their note) and step 4's
files, whose owner no longer exists: `sweep` (server.py sweep) deletes them. It also deletes
avatar chunks that no file document refers to, which only an upload whose process died midway
leaves.
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
# The changes of a removed account deleted per command: a range of this many numbers (about
# 0.35 s each on the embedded database).
_CHANGE_BATCH = 1000
REMOVALS = "removals"


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
    changes_of: int = 0  # removed users whose changes were still stored


class AccountRemoval:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], avatars: AvatarStore) -> None:
        self._db = db
        self._users = db["users"]
        self._usernames = db["usernames"]
        self._series = db["series"]
        self._imports = db["imports"]
        self._changes = db[changes.COLLECTION]
        self._removals = db[REMOVALS]
        self._avatars = avatars
        self._directory = UserDirectory(db)

    async def remove(self, user_id: str) -> bool:
        """False when there is no such user (any changes and files left under the id are deleted
        anyway: that finishes a removal that stopped after its transaction)."""
        await self._avatars.remove(user_id)
        last_change = await in_transaction(self._db, lambda session: self._remove_documents(user_id, session))
        if last_change is None:
            # No such user: a removal that stopped after its transaction left its note.
            note = await self._removals.find_one({"_id": user_id})
            if note is not None:
                await self._delete_changes(user_id, int(note["last_change"]))
        else:
            await self._delete_changes(user_id, last_change)
        await self._avatars.delete_files_of(user_id)
        return last_change is not None

    async def _remove_documents(self, user_id: str, session: AsyncClientSession) -> int | None:
        """Step 2; the user's change counter, or None when there is no such user."""
        user = await self._users.find_one({"_id": user_id}, {"username": 1, "ratings": 1, changes.SEQ_FIELD: 1},
                                          session=session)
        if user is None:
            return None
        moves = [UpdateOne({"_id": rating["series_id"]},
                           {"$inc": {"rating_half_points": -half_points(rating["rating"]), "rating_count": -1}})
                 for rating in user.get("ratings") or []]
        if moves:
            await self._series.bulk_write(moves, ordered=False, session=session)
        await self._users.delete_one({"_id": user_id}, session=session)
        # Import records hold earlier versions of the user's entries: they go with the account.
        # So do the changes (storage.changes), in step 3, which this note asks for.
        await self._imports.delete_many({"user_id": user_id}, session=session)
        last_change = int(user.get(changes.SEQ_FIELD) or 0)
        await self._removals.update_one({"_id": user_id}, {"$set": {"last_change": last_change}}, upsert=True,
                                        session=session)
        await self._usernames.delete_one({"_id": user["username"].lower(), "user_id": user_id}, session=session)
        await self._directory.remove(user_id, session)
        return last_change

    async def _delete_changes(self, user_id: str, last_change: int) -> None:
        """Step 3: ranges of the user's numbers, each one query of the index by number (on
        SecantusDB, a delete by the user alone took as long, and all of it at once)."""
        for start in range(0, last_change, _CHANGE_BATCH):
            await self._changes.delete_many({"user_id": user_id, "seq": {"$gt": start, "$lte": start + _CHANGE_BATCH}})
        await self._removals.delete_one({"_id": user_id})

    async def sweep(self) -> SweepReport:
        """Deletes the changes of removals that stopped after their transaction, the avatar files
        of users that no longer exist, and the chunks older than `ORPHAN_CHUNK_AGE` that have no
        file document (an upload whose process died)."""
        unfinished = [(note["_id"], int(note["last_change"])) async for note in self._removals.find({})]
        for user_id, last_change in unfinished:
            await self._delete_changes(user_id, last_change)
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
        return SweepReport(owners=len(gone), files=files, orphan_chunks=orphan_chunks, changes_of=len(unfinished))
