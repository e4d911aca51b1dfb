"""Atomic writes on one list embedded in the user's document, whose entries are unique by a key,
and the list's revision: a counter each write bumps in the same update, so that a rewrite of the
whole list (an import) can write only if the list is still the one it read."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import bson
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from storage.database import request_session
from storage.list_gate import ListGate
from storage.outcome import ListsFull, UserGone

MIB = 1024 * 1024
# A user's document may hold 16 MB. Its lists stop growing well before that, so that what must
# always work keeps room: signing in (a session), settings, logout, and every deletion. An add
# is refused from 12 MB on; an update, which can lengthen an entry (by at most a request body,
# 256 KB), from 14 MB on.
ADD_LIMIT_BYTES = 12 * MIB
UPDATE_LIMIT_BYTES = 14 * MIB


def too_full_to_add(document: dict[str, Any]) -> bool:
    """Whether a user's document, as a rewrite of whole lists (an import) would store it, is past
    the limit an add has; linear in the document, so callers run it off the event loop when it is
    large."""
    return len(bson.encode(document)) >= ADD_LIMIT_BYTES


def smaller_than(limit: int) -> dict[str, Any]:
    return {"$expr": {"$lt": [{"$bsonSize": "$$ROOT"}, limit]}}


def revision_field(field: str) -> str:
    """Where the revision of the list `field` is kept (absent until its first counted write)."""
    return f"revisions.{field}"


def revision_of(document: dict[str, Any], field: str) -> int | None:
    """The revision of the list `field` in a user's document as read; None matches an absent one."""
    return (document.get("revisions") or {}).get(field)


def bump(field: str) -> dict[str, Any]:
    """The part of an update that counts one more write of the list `field`."""
    return {"$inc": {revision_field(field): 1}}


class EmbeddedList:
    """`users.<field>`, entries unique by `<key>`. Every write is one conditional update whose
    filter includes the user's id, so one user can never touch another user's entries, and which
    bumps the list's revision. With a `gate`, writes take turns with rewrites of the whole list
    in this process (storage.list_gate)."""

    def __init__(self, users: AsyncCollection[dict[str, Any]], field: str, key: str, gate: ListGate | None = None) -> None:
        self._users = users
        self.field = field
        self.key = key
        self._gate = gate

    async def push_unique(self, user_id: str, key_value: Any, entry: dict[str, Any],
                          unique_by: str | None = None, session: AsyncClientSession | None = None) -> bool:
        """Appends `entry` unless an entry with the same `unique_by` value (default: the key)
        exists. Of concurrent pushes for one value exactly one succeeds."""
        absent = {"_id": user_id, f"{self.field}.{unique_by or self.key}": {"$ne": key_value}}
        async with self._turn(user_id):
            result = await self._users.update_one({**absent, **smaller_than(ADD_LIMIT_BYTES)},
                                                  {"$push": {self.field: entry}, **bump(self.field)},
                                                  session=session or request_session())
        if result.matched_count == 1:
            return True
        await self._explain_refusal(absent, ADD_LIMIT_BYTES, session)
        return False

    async def replace(self, user_id: str, key_value: Any, entry: dict[str, Any]) -> bool:
        return await self._set(user_id, key_value, {f"{self.field}.$": entry})

    async def set_fields(self, user_id: str, key_value: Any, fields: dict[str, Any]) -> bool:
        return await self._set(user_id, key_value, {f"{self.field}.$.{name}": v for name, v in fields.items()})

    async def _set(self, user_id: str, key_value: Any, assignments: dict[str, Any]) -> bool:
        present = {"_id": user_id, f"{self.field}.{self.key}": key_value}
        async with self._turn(user_id):
            result = await self._users.update_one({**present, **smaller_than(UPDATE_LIMIT_BYTES)},
                                                  {"$set": assignments, **bump(self.field)}, session=request_session())
        if result.matched_count == 1:
            return True
        await self._explain_refusal(present, UPDATE_LIMIT_BYTES)
        return False

    async def _explain_refusal(self, condition: dict[str, Any], limit: int,
                              session: AsyncClientSession | None = None) -> None:
        """After a write matched nothing: if its own condition holds, the size gate is why (507);
        if the user's document is gone, the account was deleted since the session was read
        (UserGone: 401, not "already exists"); otherwise the entry's presence or absence is (a
        409 or 404 for the caller to give). Only the failure path pays these round trips."""
        session = session or request_session()
        full = {**condition, "$expr": {"$gte": [{"$bsonSize": "$$ROOT"}, limit]}}
        if await self._users.find_one(full, {"_id": 1}, session=session) is not None:
            raise ListsFull(str(condition["_id"]))
        if await self._users.find_one({"_id": condition["_id"]}, {"_id": 1}, session=session) is None:
            raise UserGone(str(condition["_id"]))

    async def remove(self, user_id: str, key_value: Any, by: str | None = None) -> bool:
        """Removes the entry whose `by` (default: the key) is `key_value`; False if none has it."""
        field = by or self.key
        async with self._turn(user_id):
            result = await self._users.update_one(
                {"_id": user_id, f"{self.field}.{field}": key_value},
                {"$pull": {self.field: {field: key_value}}, **bump(self.field)},
                session=request_session(),
            )
        return result.matched_count == 1

    def _turn(self, user_id: str) -> AbstractAsyncContextManager[None]:
        return self._gate.write(user_id) if self._gate is not None else nullcontext()
