"""The `users` collection: one document per user holding settings, sessions and, later, lists."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth.permissions import DEFAULT_ROLE
from auth.tokens import MAX_SESSIONS_PER_USER

# What a request about the user needs; never the password hash, never other sessions,
# never the embedded lists unless a route asks for them by name.
PROFILE_FIELDS: dict[str, int] = {
    "username": 1,
    "slug": 1,
    "registered": 1,
    "age_verified": 1,
    "roles": 1,
    "settings": 1,
    "profile_image": 1,
}


class UsernameTaken(Exception):
    pass


class SettingsOutcome(enum.Enum):
    SAVED = "saved"
    USER_NOT_FOUND = "user not found"
    NOT_AGE_VERIFIED = "not age verified"


class UserStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._users = db["users"]

    async def ensure_indexes(self) -> None:
        await self._users.create_index("username_lower", unique=True, name="username_unique")
        # Sparse, so users without sessions do not collide on a missing key.
        await self._users.create_index(
            "sessions.token_hash", unique=True, sparse=True, name="session_token_unique"
        )

    async def create(self, username: str, password_hash: str, now: Any) -> str:
        user_id = str(ObjectId())
        document = {
            "_id": user_id,
            "username": username,
            "username_lower": username.lower(),
            "slug": username.lower(),
            "password_hash": password_hash,
            "registered": now,
            "age_verified": False,
            "roles": [DEFAULT_ROLE],
            "settings": {},
            "profile_image": None,
            "sessions": [],
        }
        try:
            await self._users.insert_one(document)
        except DuplicateKeyError:
            raise UsernameTaken(username) from None
        return user_id

    async def find_credentials(self, username: str) -> dict[str, Any] | None:
        return await self._users.find_one(
            {"username_lower": username.lower()}, {"password_hash": 1, **PROFILE_FIELDS}
        )

    async def exists(self, user_id: str) -> bool:
        return await self._users.count_documents({"_id": user_id}, limit=1) == 1

    async def add_session(self, user_id: str, token_hash: str, now: Any) -> None:
        session = {"token_hash": token_hash, "created": now, "last_seen": now}
        await self._users.update_one(
            {"_id": user_id},
            {"$push": {"sessions": {"$each": [session], "$sort": {"created": 1},
                                    "$slice": -MAX_SESSIONS_PER_USER}}},
        )

    async def find_by_session(
        self, token_hash: str, extra_fields: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The user holding this session, with only that session, in one round trip."""
        projection: dict[str, Any] = {
            **PROFILE_FIELDS,
            **(extra_fields or {}),
            "sessions": {"$elemMatch": {"token_hash": token_hash}},
        }
        return await self._users.find_one({"sessions.token_hash": token_hash}, projection)

    async def find_by_session_with_catalog(self, token_hash: str, collection: str,
                                           catalog_id: int) -> dict[str, Any] | None:
        """The user holding this session, plus the catalog document `catalog_id` of `collection`
        (`series` or `volumes`, as a list of zero or one under `catalog`), still in one round
        trip: a route that writes about a series or volume learns that it exists for free."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"sessions.token_hash": token_hash}},
            {"$limit": 1},
            {"$project": {
                **PROFILE_FIELDS,
                "sessions": {"$filter": {"input": "$sessions", "cond": {"$eq": ["$$this.token_hash", token_hash]}}},
                "catalog_id": {"$literal": catalog_id},
            }},
            {"$lookup": {"from": collection, "localField": "catalog_id", "foreignField": "_id", "as": "catalog"}},
            {"$project": {"catalog_id": 0}},
        ]
        found = await (await self._users.aggregate(pipeline)).to_list(length=1)
        return found[0] if found else None

    async def touch_session(self, user_id: str, token_hash: str, now: Any) -> None:
        await self._users.update_one(
            {"_id": user_id, "sessions.token_hash": token_hash},
            {"$set": {"sessions.$.last_seen": now}},
        )

    async def revoke_session(self, user_id: str, token_hash: str) -> None:
        await self._users.update_one(
            {"_id": user_id}, {"$pull": {"sessions": {"token_hash": token_hash}}}
        )

    async def revoke_all_sessions(self, user_id: str) -> None:
        await self._users.update_one({"_id": user_id}, {"$set": {"sessions": []}})

    async def save_settings(
        self, user_id: str, changes: Mapping[str, Any], *, needs_age_verification: bool
    ) -> SettingsOutcome:
        """Merges `changes` into the stored settings in one conditional write."""
        query: dict[str, Any] = {"_id": user_id}
        if needs_age_verification:
            query["age_verified"] = True
        update = {"$set": {f"settings.{key}": value for key, value in changes.items()}}
        result = await self._users.update_one(query, update)
        if result.matched_count:
            return SettingsOutcome.SAVED
        # Only on the failure path: tell a missing user from an unverified one.
        if needs_age_verification and await self.exists(user_id):
            return SettingsOutcome.NOT_AGE_VERIFIED
        return SettingsOutcome.USER_NOT_FOUND

    async def set_roles(self, username: str, roles: list[str]) -> bool:
        result = await self._users.update_one(
            {"username_lower": username.lower()}, {"$set": {"roles": roles}}
        )
        return result.matched_count == 1

    async def set_age_verified(self, username: str, verified: bool) -> bool:
        result = await self._users.update_one(
            {"username_lower": username.lower()}, {"$set": {"age_verified": verified}}
        )
        return result.matched_count == 1
