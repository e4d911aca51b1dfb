"""The retired indexes of `users`: dropped when there, quietly absent when not, and any other
refusal of the drop reaches the caller."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

import storage.users
from storage.users import UserStore

pytestmark = pytest.mark.asyncio


async def test_a_retired_index_is_dropped(db: AsyncDatabase) -> None:
    await db["users"].create_index("username", name="username_unique", unique=True)

    await UserStore(db).ensure_indexes()

    assert "username_unique" not in await db["users"].index_information()


async def test_retired_indexes_that_are_not_there_are_no_failure(db: AsyncDatabase) -> None:
    await db["users"].insert_one({"_id": "someone"})  # the collection exists: the drop answers IndexNotFound

    await UserStore(db).ensure_indexes()
    await UserStore(db).ensure_indexes()

    assert set(await db["users"].index_information()) == {"_id_"}


async def test_a_drop_the_database_refuses_for_another_reason_is_raised(
        db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    await db["users"].insert_one({"_id": "someone"})
    # The `_id` index cannot be dropped: a refusal that is not "index not found".
    monkeypatch.setattr(storage.users, "_RETIRED_INDEXES", ("_id_",))

    with pytest.raises(OperationFailure) as refused:
        await UserStore(db).ensure_indexes()

    assert refused.value.code not in (26, 27)
