"""Profile images in the GridFS bucket `avatars`, referenced from the user's `profile_image`.

Replacing an image: upload both new versions, then switch the user's reference in one write,
then delete older files. A failure before the switch deletes what was uploaded (the user keeps
the old image); a failure after it leaves old files that the next change of that user's image
sweeps.

Versions are numbers from a counter in the user's document (`avatar_sequence`, incremented in
the database), so they are ordered across every process of the service; ObjectIds made by two
processes are not. Every change moves the user forward: a switch needs a version newer than the
current image and newer than `avatar_floor`, which a delete raises to a number of its own. So an upload that began before a
newer upload or a delete cannot switch in afterwards (it deletes its own files instead), and a
sweep, which deletes only older versions, never deletes a file that can still become current.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from auth.clock import utc_now
from auth.permissions import is_banned
from storage.changes import AVATAR, SEQ_FIELD, Change, count, first_number
from storage.database import in_transaction
from storage.records import AvatarReference
from storage.user_directory import UserDirectory
from storage.users import UserStore

log = logging.getLogger("tsundoku.avatars")

BUCKET = "avatars"
_UNKNOWN = "unknown"  # a version no image has: versions are numbers
RESOLUTIONS = ("high", "scaled")
# Chunks read per query when looking for chunks without a file document.
_ORPHAN_PAGE = 500


@dataclass(frozen=True)
class StoredAvatar:
    version: int
    content_type: str
    length: int
    chunks: AsyncIterator[bytes]


class AvatarStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], users: UserStore) -> None:
        self._db = db
        self._directory = UserDirectory(db)
        self._users = db["users"]
        self._user_store = users
        self._files = db[f"{BUCKET}.files"]
        self._chunks = db[f"{BUCKET}.chunks"]
        self._bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)

    async def ensure_indexes(self) -> None:
        await self._files.create_index([("metadata.user_id", 1), ("metadata.version", 1)], name="avatar_owner")

    async def upload(self, user_id: str, version: int, versions: dict[str, bytes], content_type: str) -> dict[str, Any]:
        """Step 1: stores each version; on any failure deletes what it stored and re-raises."""
        # Each file's id is known before its first chunk is written, so a failure anywhere (a
        # write concern error on the file document, a connection lost after a chunk) deletes the
        # failing file's chunks too: GridFS writes them before the document that refers to them.
        stored: dict[str, ObjectId] = {}
        try:
            for resolution in RESOLUTIONS:
                stored[resolution] = ObjectId()
                await self._bucket.upload_from_stream_with_id(
                    stored[resolution],
                    f"{user_id}-{version}-{resolution}",
                    versions[resolution],
                    metadata={"user_id": user_id, "version": version, "resolution": resolution,
                              "content_type": content_type},
                )
        except BaseException:
            await self._delete_files(list(stored.values()))
            raise
        # The lengths go into the user's reference, so that serving reads the chunks straight away
        # (two round trips: the reference, the chunks) instead of the file document first.
        lengths = {resolution: len(versions[resolution]) for resolution in RESOLUTIONS}
        return {"version": version, "content_type": content_type, **stored, "lengths": lengths}

    async def switch(self, user_id: str, reference: dict[str, Any]) -> bool:
        """Step 2: points the user at the new files, unless a newer image or a later delete
        already happened; the directory of public users shows the new version from the same
        transaction."""
        version = reference["version"]

        async def point(session: AsyncClientSession) -> bool:
            before = await self._users.find_one_and_update(
                {"_id": user_id, "$and": [
                    {"$or": [{"profile_image": None}, {"profile_image.version": {"$lt": version}}]},
                    {"$or": [{"avatar_floor": None}, {"avatar_floor": {"$lt": version}}]},
                ]},
                {"$set": {"profile_image": reference}, **count(1)}, projection={"_id": 0, SEQ_FIELD: 1},
                return_document=ReturnDocument.BEFORE, session=session,
            )
            if before is None:
                return False
            await self._directory.show_image(user_id, version, session)
            await self._user_store.changes.record(user_id, first_number(before),
                                                  [Change(AVATAR, user_id, {"version": version})], utc_now(), session)
            return True

        return await in_transaction(self._db, point)

    async def sweep(self, user_id: str, older_than: int) -> int:
        """Step 3: deletes the user's files of versions older than `older_than`. Returns how
        many files it deleted."""
        return await self._delete_matching({"metadata.user_id": user_id, "metadata.version": {"$lt": older_than}})

    async def replace(self, user_id: str, versions: dict[str, bytes], content_type: str) -> bool | None:
        """The whole replacement. True when the new image is current, False when a newer one
        won a race (ours is discarded), None when the user does not exist."""
        version = await self._next_version(user_id)
        if version is None:
            return None
        reference = await self.upload(user_id, version, versions, content_type)
        try:
            switched = await self.switch(user_id, reference)
        except BaseException:
            # The switch may have been applied even though it failed (a write concern error, a
            # connection lost after the write): delete the new files only when the user is known
            # not to point at them. Files left behind are older than the next image, whose
            # sweep deletes them.
            if await self._current_version_quietly(user_id) not in (version, _UNKNOWN):
                await self._delete_files([reference[r] for r in RESOLUTIONS])
            raise
        if not switched:
            await self._delete_files([reference[r] for r in RESOLUTIONS])
            return False
        try:
            await self.sweep(user_id, version)
        except Exception:  # the user has the new image; leftovers go with the next sweep
            log.warning("could not delete old avatar files of user %s", user_id, exc_info=True)
        return True

    async def remove(self, user_id: str, version: int | None = None) -> bool | None:
        """Clears the reference and raises the floor, then deletes every older file. False when
        there was no image (with `version`, no image of that version: a conditional request's
        If-Match), None when the user does not exist."""
        # One step: the image is cleared and the floor raised to a new number of the counter (and
        # the directory of public users shows no image, in the same transaction).
        condition: dict[str, Any] = {"_id": user_id, "profile_image": {"$type": "object"}}
        if version is not None:
            condition["profile_image.version"] = version

        async def clear(session: AsyncClientSession) -> dict[str, Any] | None:
            cleared = await self._users.find_one_and_update(
                condition,
                [{"$set": {"avatar_sequence": {"$add": [{"$ifNull": ["$avatar_sequence", 0]}, 1]},
                           SEQ_FIELD: {"$add": [{"$ifNull": [f"${SEQ_FIELD}", 0]}, 1]},
                           "profile_image": None}},
                 {"$set": {"avatar_floor": "$avatar_sequence"}}],
                projection={"avatar_floor": 1, SEQ_FIELD: 1, "_id": 0},
                return_document=ReturnDocument.AFTER, session=session,
            )
            if cleared is not None:
                await self._directory.show_image(user_id, None, session)
                await self._user_store.changes.record(user_id, int(cleared[SEQ_FIELD]),
                                                      [Change(AVATAR, user_id, None)], utc_now(), session)
            return cleared

        removed = await in_transaction(self._db, clear)
        if removed is None:
            return False if await self._user_store.exists(user_id) else None
        removal: int = removed["avatar_floor"]
        try:
            await self.sweep(user_id, removal)
        except Exception:  # the image is gone for the user; the files go with the next sweep
            log.warning("could not delete the avatar files of user %s", user_id, exc_info=True)
        return True

    async def _next_version(self, user_id: str) -> int | None:
        """A number no earlier upload or delete of this user has had, from any process; None
        when the user does not exist."""
        counted = await self._users.find_one_and_update(
            {"_id": user_id}, {"$inc": {"avatar_sequence": 1}},
            projection={"avatar_sequence": 1, "_id": 0}, return_document=ReturnDocument.AFTER,
        )
        return counted["avatar_sequence"] if counted else None

    async def _current_version_quietly(self, user_id: str) -> int | str | None:
        """The user's current image version, or `_UNKNOWN` when the database cannot say (it is
        read after a failed switch, when the database may well be failing still). Anything but
        the driver's errors is a bug, and raised."""
        try:
            current = await self.current(user_id)
        except PyMongoError:
            log.warning("could not read the avatar version of user %s after a failed switch; its new files"
                        " stay until the next sweep", user_id, exc_info=True)
            return _UNKNOWN
        return current.version if current else None

    async def current(self, user_id: str) -> AvatarReference | None:
        found = await self._users.find_one({"_id": user_id}, {"_id": 0, "profile_image": 1})
        image = (found or {}).get("profile_image")
        return AvatarReference.of(image) if image else None

    async def shown(self, user_id: str) -> AvatarReference | None:
        """The image others are shown: `current`, but none for a banned user (their profile is
        gone while banned, and so is its image). Still one read: the roles come with the image."""
        found = await self._users.find_one({"_id": user_id}, {"_id": 0, "profile_image": 1, "roles": 1}) or {}
        image = found.get("profile_image")
        return AvatarReference.of(image) if image and not is_banned(found.get("roles") or ()) else None

    async def open(self, reference: AvatarReference, resolution: str) -> StoredAvatar | None:
        length = reference.lengths.get(resolution)
        if length is not None:
            return await self._open_by_chunks(reference, resolution, length)
        try:  # an image stored before the lengths were kept: through GridFS's file document
            stream = await self._bucket.open_download_stream(reference.files[resolution])
        except NoFile:
            return None

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await stream.readchunk():
                yield chunk

        return StoredAvatar(version=reference.version, content_type=reference.content_type,
                            length=stream.length, chunks=chunks())

    async def _open_by_chunks(self, reference: AvatarReference, resolution: str, length: int) -> StoredAvatar | None:
        """One query for every chunk, in order: an avatar is at most a few hundred KB, one batch."""
        cursor = self._chunks.find({"files_id": reference.files[resolution]}, {"data": 1, "_id": 0}).sort("n", 1)
        data = [bytes(chunk["data"]) async for chunk in cursor]
        if sum(len(piece) for piece in data) != length:
            return None  # swept by a newer change since the reference was read

        async def chunks() -> AsyncIterator[bytes]:
            for piece in data:
                yield piece

        return StoredAvatar(version=reference.version, content_type=reference.content_type, length=length,
                            chunks=chunks())

    async def delete_files_of(self, user_id: str) -> int:
        """Every file stored under `user_id`, whatever its version: for a user being deleted."""
        return await self._delete_matching({"metadata.user_id": user_id})

    async def file_owners(self) -> list[str]:
        """The user ids that have files stored (through the `avatar_owner` index)."""
        return [owner for owner in await self._files.distinct("metadata.user_id") if isinstance(owner, str)]

    async def count_files(self, user_id: str | None = None) -> int:
        return await self._files.count_documents({"metadata.user_id": user_id} if user_id else {})

    async def delete_orphan_chunks(self, made_before: datetime) -> int:
        """Deletes the chunks of files whose id was made before `made_before` and that have no
        file document: what an upload leaves when its process dies between its first chunk and
        its file document (a failed upload deletes its own). Returns how many chunks it deleted.

        A page of chunks at a time, in `files_id` order through GridFS's (files_id, n) index, so
        memory stays bounded and the work is linear in the chunks older than `made_before`."""
        limit = ObjectId.from_datetime(made_before)
        after: ObjectId | None = None
        deleted = 0
        while True:
            bounds: dict[str, ObjectId] = {"$lt": limit} if after is None else {"$lt": limit, "$gt": after}
            page = [c["files_id"] async for c in self._chunks.find(
                {"files_id": bounds}, {"files_id": 1, "_id": 0}).sort("files_id", 1).limit(_ORPHAN_PAGE)]
            if not page:
                return deleted
            # A file with more chunks than a page is passed over whole: its id is checked below.
            after = page[-1]
            ids = list(dict.fromkeys(page))
            present = {f["_id"] async for f in self._files.find({"_id": {"$in": ids}}, {"_id": 1})}
            orphans = [file_id for file_id in ids if file_id not in present]
            if orphans:
                deleted += (await self._chunks.delete_many({"files_id": {"$in": orphans}})).deleted_count

    async def _delete_matching(self, query: dict[str, Any]) -> int:
        files = [f["_id"] async for f in self._files.find(query, {"_id": 1})]
        await self._delete_files(files)
        return len(files)

    async def _delete_files(self, file_ids: list[ObjectId]) -> None:
        """Chunks first, then the file document (GridFS's own delete goes the other way): a
        failure in between leaves a file document that the next sweep finds and deletes again,
        never chunks that nothing refers to."""
        for file_id in file_ids:
            await self._chunks.delete_many({"files_id": file_id})
            await self._files.delete_one({"_id": file_id})
