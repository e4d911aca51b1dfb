"""Creates every index of the service; safe to run at each start."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from auth.permissions import ROLE_PERMISSIONS
from storage.avatars import AvatarStore
from storage.catalog import CatalogStore
from storage.collection import CollectionStore
from storage.ratings import RatingStore
from storage.roles import RoleStore
from storage.users import UserStore


async def prepare_database(db: AsyncDatabase) -> None:
    await UserStore(db).ensure_indexes()
    await CatalogStore(db).ensure_indexes()
    await RatingStore(db).ensure_indexes()
    await CollectionStore(db).ensure_indexes()
    await AvatarStore(db).ensure_indexes()
    await RoleStore(db).publish(ROLE_PERMISSIONS)
