"""The access-control matrix: for every route that takes an id, user A cannot read or change
user B's data; admin routes need their permission; a banned user keeps exactly what the contract
allows; a revoked or expired session is refused on every authenticated route; and no log line
holds a token, cookie, password or hash."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from handlers.application import all_routes
from storage.users import UserStore
from tests.api_client import ApiClient, Reply
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import RunningApp
from tests.images import b64, image_bytes
from tests.service_process import running_service

pytestmark = pytest.mark.asyncio

FORBIDDEN = {"data": "Forbidden", "code": 403}
UNAUTHORIZED = {"data": "Unauthorized", "code": 401}
PNG = b64(image_bytes("PNG", (64, 64)))


class Reader:
    """A signed-in user and what they own."""

    def __init__(self, api: ApiClient, user: dict[str, Any]) -> None:
        self.api = api
        self.id: str = user["id"]
        self.item_id = ""


async def make_reader(running: RunningApp, name: str) -> Reader:
    api = running.client()
    reader = Reader(api, await api.sign_up(name))
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/series-rating/add/1", {"rating": 7})).status == 200
    added = await api.post("/user/collection/add/11", {"price": 9.5, "date": "2024-05-01"})
    assert added.status == 200
    reader.item_id = added.body["item_id"]
    assert (await api.post(f"/user/update-image/{reader.id}", {"image": PNG})).status == 200
    return reader


@pytest_asyncio.fixture
async def alice(running: RunningApp, db: AsyncDatabase) -> Reader:
    await load_catalog(db, [series(1, "Yotsuba to!", volumes=[volume(11, 1)]),
                            series(2, "Berserk", volumes=[volume(21, 1)])])
    return await make_reader(running, "alice")


@pytest_asyncio.fixture
async def bob(running: RunningApp, alice: Reader) -> Reader:
    bob = await make_reader(running, "bob")
    assert (await bob.api.post("/user/reading-status/add/2", STATUS)).status == 200
    return bob


async def snapshot(db: AsyncDatabase, user_id: str) -> dict[str, Any]:
    """Everything of a user's document an attack could change (sessions aside)."""
    document = await db.users.find_one({"_id": user_id}, {"sessions": 0})
    assert document is not None
    return document


async def set_role(db: AsyncDatabase, username: str, role: str) -> None:
    assert await UserStore(db).set_roles(username, [role])


async def test_no_route_lets_alice_change_bobs_data(alice: Reader, bob: Reader, db: AsyncDatabase) -> None:
    before = await snapshot(db, bob.id)
    attempts: list[tuple[str, str, Any, int]] = [
        ("POST", f"/users/{bob.id}/save-settings", {"settings": {"theme": "dark"}}, 403),
        ("POST", f"/user/update-image/{bob.id}", {"image": PNG}, 403),
        ("DELETE", f"/user/delete-image/{bob.id}", None, 403),
        ("POST", f"/admin-users/update-image/{bob.id}", {"image": PNG}, 403),
        ("DELETE", f"/admin-users/delete-image/{bob.id}", None, 403),
        ("POST", f"/user/collection/update/{bob.item_id}", {"price": 1, "date": "2020-01-01"}, 404),
        ("DELETE", f"/user/collection/delete/{bob.item_id}", None, 404),
        # Series ids name the caller's own entries: Bob's status of series 2 is not Alice's to touch.
        ("POST", "/user/reading-status/update/2", STATUS, 404),
        ("DELETE", "/user/reading-status/delete/2", None, 404),
        ("POST", "/user/series-rating/update/2", {"rating": 1}, 404),
        ("DELETE", "/user/series-rating/delete/2", None, 404),
    ]
    for method, path, body, status in attempts:
        reply = await alice.api.request(method, path, json_body=body)
        assert reply.status == status, (method, path, reply.body)
        assert reply.body["code"] == status
    assert await snapshot(db, bob.id) == before


async def test_no_route_shows_alice_bobs_data(alice: Reader, bob: Reader) -> None:
    assert (await alice.api.get("/user/reading-status/id/2")).raw == b"null"  # Bob's, not hers
    assert (await alice.api.get("/user/series-rating/id/2")).raw == b"null"
    history = (await alice.api.get("/user/reading-history")).body
    assert [entry["id"] for entry in history["series"]] == [1] and history["max"] == 1
    collection = (await alice.api.get("/user/collection?client=1")).body
    assert [item["collection"]["item_id"] for item in collection["volumes"]] == [alice.item_id]
    stats = (await alice.api.get("/user/collection/stats/general?client=1")).body
    assert (stats["total_items"], stats["total_spent"]) == (1, 9.5)
    me = (await alice.api.get("/auth/me")).body["user"]
    assert me["id"] == alice.id and bob.id not in str(me)


async def test_admin_routes_need_the_edit_users_permission(alice: Reader, bob: Reader, db: AsyncDatabase) -> None:
    for role, status in [("member", 403), ("banned", 403), ("admin", 200)]:
        await set_role(db, "alice", role)
        updated = await alice.api.post(f"/admin-users/update-image/{bob.id}", {"image": PNG})
        assert updated.status == status, (role, updated.body)
        settings = await alice.api.post(f"/users/{bob.id}/save-settings", {"settings": {"theme": "dark"}})
        assert settings.status == status, (role, settings.body)
    assert (await alice.api.delete(f"/admin-users/delete-image/{bob.id}")).status == 200
    unknown = await alice.api.delete("/admin-users/delete-image/000000000000000000000000")
    assert (unknown.status, unknown.body["data"]) == (404, "User not found")


async def test_a_banned_user_keeps_their_own_lists_but_cannot_rate(
    running: RunningApp, bob: Reader, db: AsyncDatabase
) -> None:
    await set_role(db, "bob", "banned")
    api = running.client()
    signed_in = await api.login("bob")
    assert signed_in.status == 200 and signed_in.body["user"]["permissions"] == []
    allowed: list[tuple[str, str, Any]] = [
        ("GET", "/user/reading-history", None), ("GET", "/user/reading-status/id/1", None),
        ("POST", "/user/reading-status/update/1", STATUS), ("DELETE", "/user/reading-status/delete/2", None),
        ("GET", "/user/series-rating/id/1", None), ("GET", "/user/collection?client=1", None),
        ("POST", f"/user/collection/update/{bob.item_id}", {"price": 3, "date": "2024-01-01"}),
        ("POST", "/user/collection/add/21", None), ("POST", f"/users/{bob.id}/save-settings", {"settings": {"theme": "dark"}}),
        ("DELETE", f"/user/delete-image/{bob.id}", None),
    ]
    for method, path, body in allowed:
        reply = await api.request(method, path, json_body=body)
        assert reply.status == 200, (method, path, reply.body)
    refused: list[tuple[str, str, Any]] = [
        ("POST", "/user/series-rating/add/2", {"rating": 5}), ("POST", "/user/series-rating/update/1", {"rating": 5}),
        ("DELETE", "/user/series-rating/delete/1", None),
        ("POST", "/admin-users/update-image/000000000000000000000000", {"image": PNG}),
        ("POST", f"/user/update-image/{bob.id}", {"image": PNG}),  # a banned user's image is not shown
    ]
    for method, path, body in refused:
        reply = await api.request(method, path, json_body=body)
        assert (reply.status, reply.body) == (403, FORBIDDEN), (method, path)
    assert (await api.post("/auth/logout")).status == 200


def authenticated_requests() -> list[tuple[str, str]]:
    """Every authenticated operation of the route table, with placeholder ids."""
    requests = []
    for route in all_routes():
        for method, operation in route.handler.api.items():
            if operation.auth:
                requests.append((method.upper(), re.sub(r"\{\w+\}", "1", route.path)))
    return requests


async def every_route_refuses(api: ApiClient, cookie: str | None,
                              headers: dict[str, str] | None = None) -> list[tuple[str, str, Reply]]:
    """The requests that did not answer 401 "Unauthorized" with the challenge RFC 6750 asks for:
    the token refused when one was sent, the scheme alone otherwise."""
    wrong = []
    headers = {**(headers or {}), **({"Cookie": f"refreshToken={cookie}"} if cookie is not None else {})}
    challenge = 'Bearer error="invalid_token"' if "Authorization" in headers else "Bearer"
    for method, path in authenticated_requests():
        reply = await api.request(method, path, json_body={} if method == "POST" else None, headers=headers,
                                  send_cookies=False)
        if (reply.status, reply.body, reply.headers.get("WWW-Authenticate")) != (401, UNAUTHORIZED, challenge):
            wrong.append((method, path, reply))
    return wrong


async def test_every_authenticated_route_refuses_a_missing_forged_revoked_or_expired_session(
    running: RunningApp, alice: Reader, db: AsyncDatabase
) -> None:
    assert len(authenticated_requests()) >= 20
    probe = running.client()
    assert await every_route_refuses(probe, None) == []
    assert await every_route_refuses(probe, "forged-" + "a" * 40) == []
    assert await every_route_refuses(probe, "x" * 5000) == []

    revoked = alice.api.cookies["refreshToken"]
    assert (await alice.api.post("/auth/logout")).status == 200
    assert await every_route_refuses(probe, revoked) == []

    phone, laptop = running.client(), running.client()
    assert (await phone.login("alice")).status == 200 and (await laptop.login("alice")).status == 200
    assert (await laptop.post("/auth/logout", {"all": True})).status == 200
    assert await every_route_refuses(probe, phone.cookies["refreshToken"]) == []

    expired = running.client()
    assert (await expired.login("alice")).status == 200
    old = utc_now() - timedelta(days=91)
    await db.users.update_one({"_id": alice.id}, {"$set": {"sessions.$[].created": old}})
    assert await every_route_refuses(probe, expired.cookies["refreshToken"]) == []


async def test_no_log_line_holds_a_token_cookie_password_or_hash(tmp_path: Path) -> None:
    password = "Sup3r-Secret-Passw0rd"
    async with running_service(tmp_path / "data", LOG_LEVEL="debug") as service:
        api = service.client()
        user = await api.sign_up("carol", password)
        token = api.cookies["refreshToken"]
        await api.get("/auth/me")
        await api.post(f"/users/{user['id']}/save-settings", {"settings": {"theme": password}})  # 400, echoed?
        await ApiClient(service.base_url).login("carol", password + "-wrong")
        await ApiClient(service.base_url).register("x", password)  # 422
        # A malformed request that Tornado itself logs, with the header that holds the cookie.
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(f"GET /auth/me HTTP/1.1\r\nHost: x\r\nCookie: refreshToken={token}\0\r\n\r\n".encode())
        await reader.read(65536)
        writer.close()
        await api.post("/auth/logout")
        stored = await api_hash(service)
        output = service.output()
    session_secret = token.partition(".")[2]
    token_hash = hashlib.sha256(session_secret.encode()).hexdigest()
    for secret in (token, session_secret, token_hash, password, stored, "$argon2"):
        assert secret not in output, secret
    # The log was read, and it has the lines that could have leaked.
    assert "POST /auth/login 200" in output and "POST /auth/login 401" in output and "GET /auth/me 200" in output
    assert "refreshToken=***" in output  # Tornado's line about the malformed request, scrubbed


async def api_hash(service: Any) -> str:
    """Carol's stored password hash, read from the database the service uses."""
    from pymongo import AsyncMongoClient

    from tests.service_process import run_command

    uri = run_command(["database-uri"], service.env).stdout.strip()
    client: AsyncMongoClient = AsyncMongoClient(uri)
    try:
        document = await client.get_default_database().users.find_one({"username": "carol"})
    finally:
        await client.close()
    assert document is not None
    return str(document["password_hash"])


async def test_every_operation_that_declares_a_permission_enforces_it(
    running: RunningApp, alice: Reader, db: AsyncDatabase
) -> None:
    # One declaration (`Operation.permission`) drives the OpenAPI description and the check.
    declared = [(method.upper(), re.sub(r"\{\w+\}", alice.id if "image" in route.path else "1", route.path),
                 operation.permission) for route in all_routes() for method, operation in route.handler.api.items()
                if operation.permission is not None]
    assert {permission for _, _, permission in declared} == {"rate-series", "edit-users"}
    await set_role(db, "alice", "banned")
    for method, path, permission in declared:
        reply = await alice.api.request(method, path, json_body={"rating": 5, "image": PNG} if method == "POST" else None)
        assert (reply.status, reply.body) == (403, FORBIDDEN), (method, path, permission)
    document = (await running.client().get("/openapi.json")).body
    described = {(method.upper(), path) for path, item in document["paths"].items() for method, op in item.items()
                 if "Requires the permission" in op.get("description", "")}
    assert len(described) == len(declared)
