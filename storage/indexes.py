"""Creates every index of the service and completes layout changes; safe to run at each start."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from auth.permissions import ROLE_PERMISSIONS
from storage import rate_limits, status_import
from storage.avatars import AvatarStore
from storage.catalog import CatalogStore
from storage.idempotency import IdempotencyStore
from storage.roles import RoleStore
from storage.user_directory import UserDirectory
from storage.users import UserStore


async def prepare_database(db: AsyncDatabase[dict[str, Any]]) -> None:
    users = UserStore(db)
    await users.ensure_indexes()
    await UserDirectory(db).ensure()
    await AvatarStore(db, users).ensure_indexes()
    await rate_limits.ensure_indexes(db)
    await status_import.ensure_indexes(db)
    await IdempotencyStore(db).ensure_indexes()
    await RoleStore(db).publish(ROLE_PERMISSIONS)
    catalog = CatalogStore(db)
    await catalog.ensure_indexes()
    await catalog.copy_series_into_volumes()
    await catalog.add_match_titles()
    await catalog.add_volume_slugs()
