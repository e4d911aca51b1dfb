"""The `roles` collection: a readable copy of the roles the code defines, for mongosh users."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase


class RoleStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._roles = db["roles"]

    async def publish(self, role_permissions: Mapping[str, tuple[str, ...]]) -> None:
        """Writes each role's permissions. The code is the source of truth; this keeps the
        collection in step with it at every start, idempotently."""
        await self._roles.bulk_write(
            [
                UpdateOne({"_id": role}, {"$set": {"permissions": list(permissions)}}, upsert=True)
                for role, permissions in role_permissions.items()
            ]
        )
