"""Creates every index of the service and completes layout changes; safe to run at each start."""

from __future__ import annotations

from typing import Any

import pymongo
from pymongo.asynchronous.database import AsyncDatabase

from auth.permissions import ROLE_PERMISSIONS
from storage import rate_limits, status_import
from storage.avatars import AvatarStore
from storage.catalog import CatalogStore
from storage.changes import DEFAULT_RETENTION, ChangeFeed
from storage.idempotency import IdempotencyStore
from storage.roles import RoleStore
from storage.series_browse import ensure_listing
from storage.user_directory import UserDirectory
from storage.users import UserStore

# The service bounds each operation to a request's time (storage.database); preparing a database
# is not a request: an index built on a million volumes after an upgrade takes minutes, once.
PREPARE_TIMEOUT_S = 3600


async def prepare_database(db: AsyncDatabase[dict[str, Any]]) -> None:
    with pymongo.timeout(PREPARE_TIMEOUT_S):  # this task's operations only, in place of the client's bound
        users = UserStore(db)
        await users.ensure_indexes()
        await UserDirectory(db).ensure()
        await AvatarStore(db, users).ensure_indexes()
        await rate_limits.ensure_indexes(db)
        await status_import.ensure_indexes(db)
        await IdempotencyStore(db).ensure_indexes()
        await ChangeFeed(db, DEFAULT_RETENTION).ensure_indexes()
        await RoleStore(db).publish(ROLE_PERMISSIONS)
        catalog = CatalogStore(db)
        await catalog.ensure_indexes()
        await catalog.copy_series_into_volumes()
        await catalog.add_match_titles()
        await catalog.add_volume_slugs()
        await ensure_listing(db)
