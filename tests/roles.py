"""Giving a test's user roles: written straight to the stored user, since no route grants them."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase


async def set_roles(db: AsyncDatabase, user_id: str, *roles: str) -> None:
    await db.users.update_one({"_id": user_id}, {"$set": {"roles": list(roles)}})


async def make_admin(db: AsyncDatabase, user_id: str) -> None:
    await set_roles(db, user_id, "admin")
