"""A user whose lists fill their document can still sign in, save settings, log out and delete:
lists stop growing well before MongoDB's 16 MB limit (adds at 12 MB, updates at 14 MB)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from storage.embedded_list import ADD_LIMIT_BYTES, UPDATE_LIMIT_BYTES
from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import RunningApp
from tests.mal_files import mal_file, manga

pytestmark = pytest.mark.asyncio

FULL = {"data": "Your lists are too large to store more", "code": 507}


@pytest_asyncio.fixture
async def alice(api: ApiClient, db: AsyncDatabase) -> dict[str, Any]:
    """Alice has one of everything, then her document is filled past the add limit."""
    await load_catalog(db, [series(1, "Yotsuba to!", volumes=[volume(11, 1)]),
                            series(2, "Berserk", volumes=[volume(21, 1)])])
    user = await api.sign_up("alice")
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/series-rating/add/1", {"rating": 7})).status == 200
    added = await api.post("/user/collection/add/11")
    assert added.status == 200
    user["item_id"] = added.body["item_id"]
    await fill(db, user["id"], ADD_LIMIT_BYTES + 256 * 1024)
    return user


async def fill(db: AsyncDatabase, user_id: str, size: int) -> None:
    """Pads the user's document to about `size` bytes (what thousands of entries with notes weigh)."""
    await db.users.update_one({"_id": user_id}, {"$set": {"ballast": ""}})
    sizes = await (await db.users.aggregate([{"$match": {"_id": user_id}},
                                             {"$project": {"size": {"$bsonSize": "$$ROOT"}}}])).to_list()
    await db.users.update_one({"_id": user_id}, {"$set": {"ballast": "x" * (size - sizes[0]["size"])}})


async def test_adds_are_refused_with_507_once_the_document_passes_the_add_limit(
    api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    for path, body in [("/user/reading-status/add/2", STATUS), ("/user/series-rating/add/2", {"rating": 5}),
                       ("/user/collection/add/21", None)]:
        reply = await api.post(path, body)
        assert (reply.status, reply.body) == (507, FULL), path
    document = await db.users.find_one({"_id": alice["id"]}, {"statuses": 1, "ratings": 1, "collection": 1})
    assert [len(document[name]) for name in ("statuses", "ratings", "collection")] == [1, 1, 1]
    assert (await db.series.find_one({"_id": 2}))["rating_count"] == 0  # the aggregate was rolled back
    # A conflict is still a conflict, and a missing entry still missing, not "full".
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 409
    assert (await api.post("/user/reading-status/update/2", STATUS)).status == 404


async def test_a_full_document_still_allows_sign_in_settings_updates_logout_and_every_deletion(
    running: RunningApp, api: ApiClient, alice: dict
) -> None:
    phone = running.client()  # a new device
    assert (await phone.login("alice")).status == 200
    assert (await phone.post(f"/users/{alice['id']}/save-settings", {"settings": {"theme": "dark"}})).status == 200
    assert (await phone.post("/user/reading-status/update/1", {**STATUS, "progress": 4})).status == 200
    assert (await phone.post("/user/series-rating/update/1", {"rating": 9})).status == 200
    assert (await phone.post(f"/user/collection/update/{alice['item_id']}", {"price": 5, "date": "2024-05-01"})).status == 200
    assert (await phone.delete("/user/reading-status/delete/1")).status == 200
    assert (await phone.delete("/user/series-rating/delete/1")).status == 200
    assert (await phone.delete(f"/user/collection/delete/{alice['item_id']}")).status == 200
    assert (await phone.post("/auth/logout")).status == 200
    assert (await api.get("/auth/me")).status == 200  # the first device is still signed in


async def test_past_the_update_limit_updates_are_refused_but_sign_in_and_deletions_still_work(
    running: RunningApp, api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    await fill(db, alice["id"], UPDATE_LIMIT_BYTES + 256 * 1024)
    reply = await api.post("/user/reading-status/update/1", {**STATUS, "notes": "a longer note"})
    assert (reply.status, reply.body) == (507, FULL)
    phone = running.client()
    assert (await phone.login("alice")).status == 200
    assert (await phone.post(f"/users/{alice['id']}/save-settings", {"settings": {"theme": "dark"}})).status == 200
    assert (await phone.delete("/user/reading-status/delete/1")).status == 200


async def test_lists_grow_again_once_entries_are_deleted(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    assert (await api.post("/user/reading-status/add/2", STATUS)).status == 507
    await fill(db, alice["id"], ADD_LIMIT_BYTES - 256 * 1024)  # as if she had deleted entries
    assert (await api.post("/user/reading-status/add/2", STATUS)).status == 200


async def test_an_import_into_a_full_document_is_507_and_changes_nothing(
    api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    file = {"format": "tsundoku-export", "version": 1, "reading_statuses": [{
        "series_id": 2, "client": 1, "visibility": "public", "progress_type": "volumes", "progress": 3,
        "status": "started", "priority": "high", "last_update": "2024-01-01T00:00:00Z"}]}
    dry = await api.post("/user/import", file)
    assert (dry.status, dry.body["reading_statuses"]["add"]) == (200, 1)  # a dry run only reports
    reply = await api.post("/user/import?mode=apply", file)
    assert (reply.status, reply.body) == (507, FULL)
    assert reply.body == await api.documented_answer("POST", "/user/import", 507)
    document = await db.users.find_one({"_id": alice["id"]}, {"statuses": 1})
    assert [s["series_id"] for s in document["statuses"]] == [1]


async def test_a_mal_import_into_a_full_document_is_507_and_changes_nothing(
    api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    file = mal_file([manga(manga_title="Berserk", my_read_volumes=3)])
    headers = {"Content-Type": "application/xml"}
    dry = await api.request("POST", "/user/import/mal", body=file, headers=headers)
    assert (dry.status, dry.body["counts"]["add"]) == (200, 1)
    reply = await api.request("POST", "/user/import/mal?mode=apply", body=file, headers=headers)
    assert (reply.status, reply.body) == (507, FULL)
    assert reply.body == await api.documented_answer("POST", "/user/import/mal", 507)
    document = await db.users.find_one({"_id": alice["id"]}, {"statuses": 1})
    assert [s["series_id"] for s in document["statuses"]] == [1]
    assert await db["imports"].count_documents({}) == 0
