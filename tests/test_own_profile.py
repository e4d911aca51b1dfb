"""GET /user/me: the signed-in user as /auth/me has them, the profile image's version, and how many
entries their lists hold (private ones included), counted in the session query."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import CommandCounter, RunningApp
from tests.images import b64, image_bytes

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1), volume(12, 2)]), series(2, "Berserk", client=2)]


async def test_the_profile_is_the_user_with_the_image_version_and_the_counts(api: ApiClient, db: AsyncDatabase,
                                                                           commands: CommandCounter) -> None:
    await load_catalog(db, CATALOG)
    alice = await api.sign_up("Alice")
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/reading-status/add/2", {**STATUS, "visibility": "private", "client": 2})).status \
        == 200
    assert (await api.post("/user/collection/add/12", {})).status == 200
    commands.reset()
    reply = await api.get("/user/me")
    assert reply.status == 200, reply.body
    assert commands.log == ["find"]  # the session query counts: no list travels
    user = (await api.get("/auth/me")).body["user"]
    assert reply.body == {**user, "image_version": None,
                          "stats": {"reading_entries": 2, "collection_entries": 1, "list_count": None}}
    assert (reply.body["username"], reply.body["slug"], reply.body["roles"]) == ("Alice", "alice", ["member"])
    assert reply.body["id"] == alice["id"] and "password_hash" not in reply.raw.decode()

    assert (await api.post(f"/user/update-image/{alice['id']}", {"image": b64(image_bytes("PNG", (32, 32)))})).status \
        == 200
    shown = (await api.get("/user/me")).body
    assert shown["image_version"] == 1 and shown["profile_image"] == f"/user/avatar/{alice['id']}/scaled?v=1"


async def test_without_a_session_it_is_401(running: RunningApp, api: ApiClient) -> None:
    reply = await running.client().get("/user/me")
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})
    await api.sign_up("bob")
    empty = (await api.get("/user/me")).body
    assert empty["stats"] == {"reading_entries": 0, "collection_entries": 0, "list_count": None}
    assert (await api.post("/auth/logout")).status == 200
    assert (await api.get("/user/me")).status == 401
