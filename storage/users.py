"""The `users` collection: one document per user holding settings, sessions and lists, and the
`usernames` collection that owns username uniqueness.

Every query on `users` names the user's `_id`, so that on a cluster sharded by `_id` it goes to
one shard. The only lookup by name (login, registration, the operator commands) goes to
`usernames`, keyed by the lower-cased name: `{_id: "alice", user_id}`. A unique index on a name
inside `users` could not exist on a collection sharded by `_id`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from auth.permissions import DEFAULT_ROLE, is_banned
from auth.personal_tokens import MAX_PERSONAL_TOKENS_PER_USER
from auth.tokens import MAX_SESSIONS_PER_USER, new_session_id
from storage import collection_stats
from storage.changes import DEFAULT_RETENTION, SEQ_FIELD, SETTINGS, Change, ChangeFeed, count
from storage.database import in_transaction, request_session
from storage.records import (
    CATALOG_DOCUMENTS,
    PersonalTokenRecord,
    SeriesRecord,
    SessionRecord,
    StoredList,
    UserRecord,
    VolumeRecord,
)
from storage.session_reads import (
    CatalogRead,
    Figures,
    ListRead,
    SessionRead,
    extra_fields,
    figures_of,
)
from storage.user_directory import UserDirectory, image_version

# Indexes of an earlier layout that a sharded `users` collection cannot have.
_RETIRED_INDEXES = ("username_unique", "session_token_unique")
# What dropping an index that is not there answers: IndexNotFound (27) when the collection
# exists, NamespaceNotFound (26) from a MongoDB whose collection does not exist yet (SecantusDB
# answers nothing then). Any other refusal is a real failure and must reach the operator.
_INDEX_ABSENT_CODES = frozenset({26, 27})

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
    # The change feed's counter (storage.changes): a feed page reads it with the session.
    "change_seq": 1,
}


class UsernameTaken(Exception):
    pass


# The arrays of a user's document that hold credentials: sessions (a cookie, an access token) and
# personal tokens. Each entry has `token_hash` and `id`; a session's last use is `last_seen`, a
# personal token's `last_used`.
SESSIONS = "sessions"
PERSONAL_TOKENS = "personal_tokens"
_LAST_USE = {SESSIONS: "last_seen", PERSONAL_TOKENS: "last_used"}
# The last use of a personal token never used (stored as null): its first use is due a touch.
_NEVER_USED = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class FoundSession:
    """A session and its user, with what the request asked to be read along (a SessionRead)."""

    user: UserRecord
    token_hash: str  # the session's, however it was found
    session_id: str | None  # None for a session stored before sessions had ids (see `sessions`)
    created: datetime
    last_seen: datetime
    entries: StoredList | None  # the list a ListRead asked for; None when none was asked or stored
    catalog: list[SeriesRecord | VolumeRecord]  # the catalog document a CatalogRead asked for: zero or one
    figures: Figures | None  # the figures a CollectionStatsRead or ReadingStatsRead asked for
    # A personal token's (found by `find_by_personal_token`); a session has no scopes and no expiry.
    scopes: tuple[str, ...] = ()
    expires: datetime | None = None

    @classmethod
    def of(cls, document: dict[str, Any] | None, read: SessionRead | None = None,
           array: str = SESSIONS) -> FoundSession | None:
        if document is None or not document.get(array):
            return None
        session = document[array][0]
        entries = None
        if isinstance(read, ListRead) and read.list_field in document:
            entries = StoredList(read.list_field, document.get(read.list_field) or [])
        catalog = [CATALOG_DOCUMENTS[read.collection](found) for found in document.get("catalog") or []] \
            if isinstance(read, CatalogRead) else []
        return cls(UserRecord.of(document), session["token_hash"], session.get("id"), session["created"],
                   session.get(_LAST_USE[array]) or _NEVER_USED, entries, catalog, figures_of(read, document),
                   tuple(session.get("scopes") or ()), session.get("expires"))


def session_filter(user_id: str, path: str, value: str, read: SessionRead | None) -> dict[str, Any]:
    """The filter of a session query for the credential whose `path` (`sessions.token_hash`, ...)
    is `value`. The projection's `$elemMatch` brings that session or none (FoundSession.of: None),
    so a read that brings little (the profile, one entry, one catalog document) is found by `_id`
    alone: the condition in the filter made the database match the sessions twice, 0.12 ms of
    each request (docs/performance.md). A read that brings a whole list or computes over one keeps
    it: a wrong credential for a known user id must not make the database send that list, or
    compute over it, only for a 401."""
    small = read is None or isinstance(read, CatalogRead) or (isinstance(read, ListRead) and read.series_id is not None)
    return {"_id": user_id} if small else {"_id": user_id, path: value}


@dataclass(frozen=True)
class StoredCredentials:
    user: UserRecord
    password_hash: str


class SettingsOutcome(enum.Enum):
    SAVED = "saved"
    USER_NOT_FOUND = "user not found"
    NOT_AGE_VERIFIED = "not age verified"


class UserStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], changes: ChangeFeed | None = None) -> None:
        """`changes`: where a settings write leaves its change (storage.changes); the operator
        commands, which save no settings, may leave it out."""
        self._db = db
        self._users = db["users"]
        self._usernames = db["usernames"]
        self._directory = UserDirectory(db)
        self.changes = changes or ChangeFeed(db, DEFAULT_RETENTION)

    async def ensure_indexes(self) -> None:
        # `usernames` needs none: its `_id` is the name. Sessions are found through the user's
        # `_id`, and a session secret is 256 random bits: no index needed to keep them apart.
        for name in _RETIRED_INDEXES:
            try:
                await self._users.drop_index(name)
            except OperationFailure as error:
                if error.code not in _INDEX_ABSENT_CODES:
                    raise
                # not there: a new database, or one that dropped it already

    async def create(self, username: str, password_hash: str, now: Any) -> str:
        """The name, the user and their row in the directory of public users, all or none (one
        transaction)."""
        user_id = str(ObjectId())
        document = {
            "_id": user_id,
            "username": username,
            "slug": username.lower(),
            "password_hash": password_hash,
            "registered": now,
            "age_verified": False,
            "roles": [DEFAULT_ROLE],
            "settings": {},
            "profile_image": None,
            "sessions": [],
            collection_stats.FIELD: {},  # kept from the first item on (storage.collection_stats)
        }

        async def claim_name_and_insert(session: AsyncClientSession) -> None:
            await self._usernames.insert_one({"_id": username.lower(), "user_id": user_id}, session=session)
            await self._users.insert_one(document, session=session)
            await self._directory.add(user_id, username, now, None, session)

        try:
            await in_transaction(self._db, claim_name_and_insert)
        except DuplicateKeyError:
            raise UsernameTaken(username) from None
        return user_id

    async def id_of(self, username: str) -> str | None:
        found = await self._usernames.find_one({"_id": username.lower()}, {"user_id": 1})
        return found["user_id"] if found else None

    async def find_credentials(self, username: str) -> StoredCredentials | None:
        user_id = await self.id_of(username)
        if user_id is None:
            return None
        found = await self._users.find_one({"_id": user_id}, {"password_hash": 1, **PROFILE_FIELDS})
        return StoredCredentials(UserRecord.of(found), found["password_hash"]) if found else None

    async def population(self) -> tuple[int, int]:
        """(users, stored sessions): the count from the collection's metadata; the sessions by a
        pass over `users` that reads only each document's session count (for the metrics)."""
        users = await self._users.estimated_document_count()
        counted = await (await self._users.aggregate([
            {"$project": {"_id": 0, "n": {"$size": {"$ifNull": ["$sessions", []]}}}},
            {"$group": {"_id": None, "sessions": {"$sum": "$n"}}},
        ])).to_list(length=1)
        return users, int(counted[0]["sessions"]) if counted else 0

    async def exists(self, user_id: str) -> bool:
        return await self._users.count_documents({"_id": user_id}, limit=1) == 1

    async def find_password_hash(self, user_id: str) -> str | None:
        found = await self._users.find_one({"_id": user_id}, {"password_hash": 1})
        return found["password_hash"] if found else None

    async def add_session(self, user_id: str, token_hash: str, now: Any, *, session_id: str,
                          user_agent: str | None = None, address: str | None = None) -> None:
        session = {"token_hash": token_hash, "id": session_id, "created": now, "last_seen": now,
                   "user_agent": user_agent, "address": address}
        await self._users.update_one(
            {"_id": user_id},
            {"$push": {"sessions": {"$each": [session], "$sort": {"created": 1},
                                    "$slice": -MAX_SESSIONS_PER_USER}}},
            session=request_session(),
        )

    async def find_by_session(self, user_id: str, token_hash: str,
                              read: SessionRead | None = None) -> FoundSession | None:
        """The user holding this session, with only that session and what `read` asks for, in
        one round trip, by `_id`."""
        return await self._find_session(user_id, "token_hash", token_hash, read)

    async def find_by_personal_token(self, user_id: str, token_hash: str,
                                     read: SessionRead | None = None) -> FoundSession | None:
        """As `find_by_session`, for a personal token (the user's, with only that token): the same
        one round trip, by `_id`."""
        return await self._find_session(user_id, "token_hash", token_hash, read, PERSONAL_TOKENS)

    async def find_by_session_id(self, user_id: str, session_id: str,
                                 read: SessionRead | None = None) -> FoundSession | None:
        """As `find_by_session`, the session named by its id (what an access token carries): the
        same one round trip."""
        return await self._find_session(user_id, "id", session_id, read)

    async def _find_session(self, user_id: str, key: str, value: str,
                            read: SessionRead | None, array: str = SESSIONS) -> FoundSession | None:
        """The entry of `array` (sessions or personal tokens) whose `key` (`token_hash` or `id`) is `value`."""
        if isinstance(read, CatalogRead):
            return await self._find_by_session_with_catalog(user_id, key, value, read, array)
        projection: dict[str, Any] = {
            **PROFILE_FIELDS,
            **extra_fields(read),
            array: {"$elemMatch": {key: value}},
        }
        return FoundSession.of(await self._users.find_one(session_filter(user_id, f"{array}.{key}", value, read),
                                                          projection), read, array)

    async def _find_by_session_with_catalog(self, user_id: str, key: str, value: str,
                                            read: CatalogRead, array: str) -> FoundSession | None:
        """The user holding this session, plus the catalog document `read` names (as a list of
        zero or one under `catalog`), still in one round trip: a route that writes about a
        series or volume learns that it exists for free."""
        pipeline: list[dict[str, Any]] = [
            {"$match": session_filter(user_id, f"{array}.{key}", value, read)},
            {"$limit": 1},
            {"$project": {
                **PROFILE_FIELDS,
                array: {"$filter": {"input": f"${array}",
                                         "cond": {"$eq": [f"$$this.{key}", {"$literal": value}]}}},
                "catalog_id": {"$literal": read.catalog_id},
            }},
            {"$lookup": {"from": read.collection, "localField": "catalog_id", "foreignField": "_id",
                         "as": "catalog"}},
            {"$project": {"catalog_id": 0}},
        ]
        found = await (await self._users.aggregate(pipeline)).to_list(length=1)
        return FoundSession.of(found[0] if found else None, read, array)

    async def touch_session(self, user_id: str, token_hash: str, now: Any) -> None:
        await self._users.update_one(
            {"_id": user_id, "sessions.token_hash": token_hash},
            {"$set": {"sessions.$.last_seen": now}},
            session=request_session(),
        )

    async def revoke_session(self, user_id: str, token_hash: str) -> None:
        await self._users.update_one(
            {"_id": user_id}, {"$pull": {"sessions": {"token_hash": token_hash}}}, session=request_session()
        )

    async def sessions(self, user_id: str, current_hash: str) -> list[SessionRecord]:
        """The user's sessions, newest first. A session stored before sessions had ids gets
        one here, once: the write names the session by its hash and applies only while it has
        no id, so two requests naming it at once agree on the first id written."""
        found = await self._users.find_one({"_id": user_id}, {"_id": 0, "sessions": 1})
        return await self.session_records(user_id, (found or {}).get("sessions") or [], current_hash)

    async def session_records(self, user_id: str, entries: list[dict[str, Any]],
                              current_hash: str) -> list[SessionRecord]:
        """`entries` (the user's stored sessions, read by the caller) as records, newest first."""
        unnamed = [entry["token_hash"] for entry in entries if not entry.get("id")]
        if unnamed:
            for token_hash in unnamed:
                await self._users.update_one(
                    {"_id": user_id, "sessions": {"$elemMatch": {"token_hash": token_hash, "id": None}}},
                    {"$set": {"sessions.$.id": new_session_id()}}, session=request_session())
            return await self.sessions(user_id, current_hash)
        records = [SessionRecord.of(entry, current_hash) for entry in entries]
        return sorted(records, key=lambda record: record.created, reverse=True)

    async def end_session(self, user_id: str, session_id: str, current_hash: str) -> bool | None:
        """None when the user has no session of that id; else whether it was `current_hash`'s."""
        before = await self._users.find_one_and_update(
            {"_id": user_id, "sessions.id": session_id}, {"$pull": {"sessions": {"id": session_id}}},
            projection={"_id": 0, "sessions": {"$elemMatch": {"id": session_id}}}, session=request_session())
        if before is None:
            return None
        return any(entry.get("token_hash") == current_hash for entry in before.get("sessions") or [])

    async def change_password(self, user_id: str, password_hash: str, keep_token_hash: str) -> bool:
        """The new hash, the end of every session but `keep_token_hash`'s, a new id for that one,
        and the end of every personal token another session made, in one write: no moment at
        which the new password holds and a stolen session, an access token (which names its
        session by id) or a personal token a thief made with either still works. The kept
        session's cookie goes on working; a token for it comes from `POST /auth/refresh` or
        `GET /auth/me`."""
        kept = {"$filter": {"input": {"$ifNull": ["$sessions", []]},
                            "cond": {"$eq": ["$$this.token_hash", {"$literal": keep_token_hash}]}}}
        renamed = {"$map": {"input": kept,
                            "in": {"$mergeObjects": ["$$this", {"id": {"$literal": new_session_id()}}]}}}
        result = await self._users.update_one(
            {"_id": user_id},
            [{"$set": {"password_hash": {"$literal": password_hash}, "sessions": renamed,
                       PERSONAL_TOKENS: {"$filter": {
                           "input": {"$ifNull": [f"${PERSONAL_TOKENS}", []]},
                           "cond": {"$eq": ["$$this.made_by", {"$literal": keep_token_hash}]}}}}}],
            session=request_session())
        return result.matched_count == 1

    async def add_personal_token(self, user_id: str, token_hash: str, now: datetime, *, token_id: str, name: str,
                                 scopes: list[str], expires: datetime, made_by: str) -> bool:
        """Stores the token (its hash, never its secret) unless the user holds the most they may
        already: False then. Expired tokens are dropped first, so they do not count. `made_by` is
        the token hash of the session that made it (see `change_password`)."""
        token = {"id": token_id, "token_hash": token_hash, "name": name, "scopes": scopes, "created": now,
                 "last_used": None, "expires": expires, "made_by": made_by}
        await self._users.update_one({"_id": user_id}, {"$pull": {PERSONAL_TOKENS: {"expires": {"$lte": now}}}},
                                     session=request_session())
        result = await self._users.update_one(
            {"_id": user_id, f"{PERSONAL_TOKENS}.{MAX_PERSONAL_TOKENS_PER_USER - 1}": {"$exists": False}},
            {"$push": {PERSONAL_TOKENS: token}}, session=request_session())
        return result.matched_count == 1

    async def personal_tokens(self, user_id: str) -> list[PersonalTokenRecord]:
        """The user's personal tokens, newest first (never their hashes)."""
        found = await self._users.find_one({"_id": user_id}, {"_id": 0, PERSONAL_TOKENS: 1})
        records = [PersonalTokenRecord.of(entry) for entry in (found or {}).get(PERSONAL_TOKENS) or []]
        return sorted(records, key=lambda record: record.created, reverse=True)

    async def revoke_personal_token(self, user_id: str, token_id: str) -> bool:
        """False when the user has no token of that id (another user's is not theirs)."""
        result = await self._users.update_one(
            {"_id": user_id, f"{PERSONAL_TOKENS}.id": token_id}, {"$pull": {PERSONAL_TOKENS: {"id": token_id}}},
            session=request_session())
        return result.modified_count == 1

    async def touch_personal_token(self, user_id: str, token_hash: str, now: datetime) -> None:
        await self._users.update_one(
            {"_id": user_id, f"{PERSONAL_TOKENS}.token_hash": token_hash},
            {"$set": {f"{PERSONAL_TOKENS}.$.last_used": now}},
            session=request_session(),
        )

    async def reset_password(self, username: str, password_hash: str) -> tuple[int, int] | None:
        """The operator's reset: the new hash and the end of every session (so every access
        token) and every personal token, in one write, for an account that may be in a thief's
        hands. (sessions, personal tokens) it ended; None when there is no such user."""
        user_id = await self.id_of(username)
        if user_id is None:
            return None
        before = await self._users.find_one_and_update(
            {"_id": user_id},
            {"$set": {"password_hash": password_hash, "sessions": [], PERSONAL_TOKENS: []}},
            projection={"_id": 0, "sessions.id": 1, f"{PERSONAL_TOKENS}.id": 1})
        if before is None:
            return None
        return len(before.get("sessions") or []), len(before.get(PERSONAL_TOKENS) or [])

    async def revoke_all_sessions(self, user_id: str) -> None:
        await self._users.update_one({"_id": user_id}, {"$set": {"sessions": []}}, session=request_session())

    async def save_settings(
        self, user_id: str, changes: Mapping[str, Any], now: datetime, *, needs_age_verification: bool
    ) -> SettingsOutcome:
        """Merges `changes` into the stored settings in one conditional write, which answers the
        settings after it and numbers its change, recorded in the same transaction."""
        query: dict[str, Any] = {"_id": user_id}
        if needs_age_verification:
            query["age_verified"] = True
        update = {"$set": {f"settings.{key}": value for key, value in changes.items()}, **count(1)}

        async def save(session: AsyncClientSession) -> bool:
            after = await self._users.find_one_and_update(query, update, projection={"_id": 0, "settings": 1,
                                                                                     SEQ_FIELD: 1},
                                                          return_document=ReturnDocument.AFTER, session=session)
            if after is None:
                return False
            await self.changes.record(user_id, int(after[SEQ_FIELD]),
                                       [Change(SETTINGS, SETTINGS, after.get("settings") or {})], now, session)
            return True

        if await in_transaction(self._db, save, user_id=user_id):
            return SettingsOutcome.SAVED
        # Only on the failure path: tell a missing user from an unverified one.
        if needs_age_verification and await self.exists(user_id):
            return SettingsOutcome.NOT_AGE_VERIFIED
        return SettingsOutcome.USER_NOT_FOUND

    async def set_roles(self, username: str, roles: list[str]) -> bool:
        """The roles, and the user's place in the directory of public users (a banned user has
        none), in one transaction."""
        user_id = await self.id_of(username)
        if user_id is None:
            return False

        async def change(session: AsyncClientSession) -> bool:
            user = await self._users.find_one_and_update({"_id": user_id}, {"$set": {"roles": roles}},
                                                         projection={"username": 1, "registered": 1,
                                                                     "profile_image.version": 1},
                                                         session=session)
            if user is None:
                return False
            if is_banned(roles):
                await self._directory.remove(user_id, session)
            elif user.get("registered"):  # every registered user; not a document made by hand
                await self._directory.add(user_id, user["username"], user["registered"], image_version(user), session)
            return True

        return await in_transaction(self._db, change)

    async def set_age_verified(self, username: str, verified: bool) -> bool:
        return await self._set_by_name(username, {"age_verified": verified})

    async def _set_by_name(self, username: str, fields: dict[str, Any]) -> bool:
        user_id = await self.id_of(username)
        if user_id is None:
            return False
        result = await self._users.update_one({"_id": user_id}, {"$set": fields}, session=request_session())
        return result.matched_count == 1
