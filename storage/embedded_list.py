"""Atomic writes on one list embedded in the user's document, whose entries are unique by a key."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection


class EmbeddedList:
    """`users.<field>`, entries unique by `<key>`. Every write is one conditional update whose
    filter includes the user's id, so one user can never touch another user's entries."""

    def __init__(self, users: AsyncCollection, field: str, key: str) -> None:
        self._users = users
        self.field = field
        self.key = key

    async def push_unique(self, user_id: str, key_value: Any, entry: dict[str, Any],
                          unique_by: str | None = None, session: AsyncClientSession | None = None) -> bool:
        """Appends `entry` unless an entry with the same `unique_by` value (default: the key)
        exists. Of concurrent pushes for one value exactly one succeeds."""
        unique_field = unique_by or self.key
        result = await self._users.update_one(
            {"_id": user_id, f"{self.field}.{unique_field}": {"$ne": key_value}},
            {"$push": {self.field: entry}},
            session=session,
        )
        return result.matched_count == 1

    async def replace(self, user_id: str, key_value: Any, entry: dict[str, Any]) -> bool:
        return await self._set(user_id, key_value, {f"{self.field}.$": entry})

    async def set_fields(self, user_id: str, key_value: Any, fields: dict[str, Any]) -> bool:
        return await self._set(user_id, key_value, {f"{self.field}.$.{name}": v for name, v in fields.items()})

    async def _set(self, user_id: str, key_value: Any, assignments: dict[str, Any]) -> bool:
        result = await self._users.update_one(
            {"_id": user_id, f"{self.field}.{self.key}": key_value}, {"$set": assignments}
        )
        return result.matched_count == 1

    async def remove(self, user_id: str, key_value: Any) -> bool:
        result = await self._users.update_one(
            {"_id": user_id, f"{self.field}.{self.key}": key_value},
            {"$pull": {self.field: {self.key: key_value}}},
        )
        return result.matched_count == 1
