"""Personal access tokens (issue 30, point 2): made, listed and revoked with the cookie or an access
token; as `Authorization: Bearer tsu_pat_…` they reach only the routes that declare one of their
scopes, in the one read authentication takes, and stop at once when revoked or expired."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from auth.personal_tokens import MAX_PERSONAL_TOKENS_PER_USER, READ, WRITE
from handlers.application import all_routes
from tests.api_client import ApiClient, Reply
from tests.bodies import STATUS
from tests.catalog_data import series, volume
from tests.conftest import CommandCounter, RunningApp
from tests.roles import make_admin, set_roles
from tests.test_access_control import every_route_refuses

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1)]), series(2, "Berserk")]
FORBIDDEN = {"data": "Forbidden", "code": 403}
UNAUTHORIZED = {"data": "Unauthorized", "code": 401}
NOT_FOUND = {"data": "Token not found", "code": 404}


async def bearer(running: RunningApp, method: str, path: str, token: str, body: Any = None) -> Reply:
    """A request with the token and no cookie."""
    return await running.client().request(method, path, json_body=body, headers={"Authorization": f"Bearer {token}"})


def secret_of(token: str) -> str:
    """`tsu_pat_<24 hex digits>_<secret>`: the secret may hold `_` itself."""
    return token[len("tsu_pat_") + 25:]


async def signed_in(running: RunningApp, username: str = "alice") -> ApiClient:
    api = running.client()
    assert (await api.register(username)).status == 201 and (await api.login(username)).status == 200
    return api


async def made(api: ApiClient, scopes: list[str], name: str = "Reading app", days: int = 30) -> dict[str, Any]:
    reply = await api.post("/auth/tokens", {"name": name, "scopes": scopes, "expires_in_days": days})
    assert reply.status == 201, reply.body
    return reply.body


async def test_a_token_is_shown_once_and_listed_without_its_secret(running: RunningApp, db: AsyncDatabase,
                                                                   catalog: None) -> None:
    api = await signed_in(running)
    token = await made(api, ["read"], days=7)
    assert set(token) == {"id", "name", "scopes", "created", "expires", "token"}
    assert token["token"].startswith("tsu_pat_") and token["scopes"] == ["read"]
    listed = (await api.get("/auth/tokens")).body["tokens"]
    assert listed == [{key: token[key] for key in ("id", "name", "scopes", "created", "expires")} | {"last_used": None}]
    secret = secret_of(token["token"])
    stored = await db.users.find_one({"username": "alice"}, {"personal_tokens": 1})
    assert secret not in str(stored)
    assert stored["personal_tokens"][0]["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()


async def test_a_read_token_reads_and_a_write_token_writes_too(running: RunningApp, catalog: None) -> None:
    api = await signed_in(running)
    reader, writer = (await made(api, ["read"]))["token"], (await made(api, ["write"]))["token"]
    refused = await bearer(running, "POST", "/user/reading-status/add/1", reader, STATUS)
    assert (refused.status, refused.body) == (403, FORBIDDEN)
    added = await bearer(running, "POST", "/user/reading-status/add/1", writer, STATUS)
    assert added.status == 200 and added.set_cookies == []
    for token in (reader, writer):
        read = await bearer(running, "GET", "/user/reading-status/id/1", token)
        assert read.status == 200 and read.body["series_id"] == 1


async def test_last_use_is_written_once_and_a_bearer_read_takes_one_round_trip(
    running: RunningApp, catalog: None, commands: CommandCounter
) -> None:
    api = await signed_in(running)
    token = (await made(api, ["read"]))["token"]
    costs = []
    for _ in range(3):
        commands.reset()
        assert (await bearer(running, "GET", "/user/reading-status/id/1", token)).status == 200
        costs.append(commands.total)
    assert costs == [2, 1, 1]  # the first use writes last_used; within the hour, no more
    assert (await api.get("/auth/tokens")).body["tokens"][0]["last_used"] is not None


def requests_by_scope() -> dict[str | None, list[tuple[str, str]]]:
    """Every authenticated operation of the route table, with placeholder ids, by its scope."""
    found: dict[str | None, list[tuple[str, str]]] = {None: [], READ: [], WRITE: []}
    for route in all_routes():
        for method, operation in route.handler.api.items():
            if operation.auth:
                found[operation.scope].append((method.upper(), re.sub(r"\{\w+\}", "1", route.path)))
    return found


async def test_every_route_takes_the_scope_it_declares_and_no_other(running: RunningApp, db: AsyncDatabase,
                                                                    catalog: None) -> None:
    api = await signed_in(running)
    await make_admin(db, (await api.get("/auth/me")).body["user"]["id"])  # not even an admin's token acts as one
    reader, writer = (await made(api, ["read"]))["token"], (await made(api, ["read", "write"]))["token"]
    by_scope = requests_by_scope()
    assert len(by_scope[None]) >= 12 and len(by_scope[READ]) >= 10 and len(by_scope[WRITE]) >= 8
    wrong = []
    probe = running.client()
    for scope, tokens in ((None, (reader, writer)), (WRITE, (reader,))):
        for method, path in by_scope[scope]:
            for token in tokens:
                reply = await probe.request(method, path, json_body={} if method == "POST" else None,
                                            headers={"Authorization": f"Bearer {token}"}, send_cookies=False)
                if (reply.status, reply.body) != (403, FORBIDDEN):
                    wrong.append((method, path, reply.status, reply.body))
    for method, path in by_scope[READ]:
        reply = await probe.request(method, path, json_body={} if method == "POST" else None,
                                    headers={"Authorization": f"Bearer {reader}"}, send_cookies=False)
        if reply.status in (401, 403):
            wrong.append((method, path, reply.status, reply.body))
    assert wrong == []
    assert len((await api.get("/auth/tokens")).body["tokens"]) == 2  # nothing was revoked or made by a token


async def test_a_revoked_token_stops_at_once_and_only_the_owner_revokes(running: RunningApp, catalog: None) -> None:
    alice, bob = await signed_in(running, "alice"), await signed_in(running, "bob")
    token = await made(alice, ["read"])
    assert (await bob.delete(f"/auth/tokens/{token['id']}")).body == NOT_FOUND  # another user's: not found
    for unknown in ("0" * 16, "not-an-id"):
        assert (await alice.delete(f"/auth/tokens/{unknown}")).body == NOT_FOUND
    assert (await bearer(running, "GET", "/user/me", token["token"])).status == 200
    assert (await alice.delete(f"/auth/tokens/{token['id']}")).status == 200
    assert (await bearer(running, "GET", "/user/me", token["token"])).body == UNAUTHORIZED
    assert (await alice.delete(f"/auth/tokens/{token['id']}")).body == NOT_FOUND
    assert (await alice.get("/auth/tokens")).body["tokens"] == []


async def test_a_password_change_revokes_the_tokens_other_sessions_made(running: RunningApp, catalog: None) -> None:
    """A thief with a stolen session could make a long-lived token: the password change that ends
    that session ends what it made. The changing session's own tokens stay, also those it made
    with its access token (the same session)."""
    laptop, phone = await signed_in(running), running.client()
    assert (await phone.login("alice")).status == 200
    from_phone = (await made(phone, ["write"], name="made on the phone"))["token"]
    from_laptop = (await made(laptop, ["read"], name="made on the laptop"))["token"]
    laptop_access = (await laptop.get("/auth/me")).body["accessToken"]
    with_access = await running.client().request(
        "POST", "/auth/tokens", json_body={"name": "made with the laptop's access token", "scopes": ["read"],
                                           "expires_in_days": 30},
        headers={"Authorization": f"Bearer {laptop_access}"})
    assert with_access.status == 201, with_access.body
    changed = await laptop.post("/auth/change-password", {"current_password": "correct horse",
                                                          "new_password": "battery staple"})
    assert changed.status == 200
    assert (await bearer(running, "GET", "/user/me", from_phone)).body == UNAUTHORIZED
    for kept in (from_laptop, with_access.body["token"]):
        assert (await bearer(running, "GET", "/user/me", kept)).status == 200
    assert [t["name"] for t in (await laptop.get("/auth/tokens")).body["tokens"]] == [
        "made with the laptop's access token", "made on the laptop"]


async def test_an_expired_forged_or_banned_token_answers_401_everywhere(running: RunningApp, db: AsyncDatabase,
                                                                        catalog: None) -> None:
    api = await signed_in(running)
    expired, live = (await made(api, ["write"]))["token"], (await made(api, ["write"]))["token"]
    await db.users.update_one({"username": "alice"},
                              {"$set": {"personal_tokens.0.expires": utc_now() - timedelta(seconds=1)}})
    assert (await bearer(running, "GET", "/user/me", live)).status == 200
    probe = running.client()
    for dead in (expired, live[:-4] + "AAAA", "tsu_pat_" + "0" * 24 + "_" + "a" * 43, "tsu_pat_x"):
        assert await every_route_refuses(probe, None, {"Authorization": f"Bearer {dead}"}) == []
    await set_roles(db, (await api.get("/auth/me")).body["user"]["id"], "banned")
    assert (await bearer(running, "GET", "/user/me", live)).body == UNAUTHORIZED


async def test_tokens_are_capped_per_user_and_expired_ones_do_not_count(running: RunningApp, db: AsyncDatabase,
                                                                        catalog: None) -> None:
    api = await signed_in(running)
    for n in range(MAX_PERSONAL_TOKENS_PER_USER):
        await made(api, ["read"], name=f"app {n}")
    full = await api.post("/auth/tokens", {"name": "one more", "scopes": ["read"], "expires_in_days": 1})
    assert full.status == 409 and "revoke one" in full.body["data"]
    await db.users.update_one({"username": "alice"},
                              {"$set": {"personal_tokens.3.expires": utc_now() - timedelta(seconds=1)}})
    await made(api, ["read"], name="one more")
    assert len((await api.get("/auth/tokens")).body["tokens"]) == MAX_PERSONAL_TOKENS_PER_USER


@pytest.mark.parametrize("body", [{"name": "", "scopes": ["read"], "expires_in_days": 1},
                                  {"name": "a", "scopes": [], "expires_in_days": 1},
                                  {"name": "a", "scopes": ["admin"], "expires_in_days": 1},
                                  {"name": "a", "scopes": ["read"], "expires_in_days": 0},
                                  {"name": "a", "scopes": ["read"], "expires_in_days": 367},
                                  {"name": "a", "scopes": ["read"]}])
async def test_a_token_request_out_of_bounds_answers_400(running: RunningApp, body: dict[str, Any]) -> None:
    api = await signed_in(running)
    assert (await api.post("/auth/tokens", body)).status == 400


async def test_an_access_token_manages_personal_tokens_too(running: RunningApp, catalog: None) -> None:
    api = running.client()
    assert (await api.register("alice")).status == 201
    access = (await api.login("alice")).body["accessToken"]
    created = await bearer(running, "POST", "/auth/tokens", access,
                           {"name": "sync", "scopes": ["read", "read"], "expires_in_days": 2})
    assert created.status == 201 and created.body["scopes"] == ["read"]
    assert (await bearer(running, "GET", "/auth/tokens", access)).body["tokens"][0]["name"] == "sync"


async def test_no_log_line_holds_a_personal_token(running: RunningApp, catalog: None,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = await signed_in(running)
    token = (await made(api, ["read"]))["token"]
    assert (await bearer(running, "POST", "/auth/tokens", token, {})).status == 403
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(f"GET /user/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\0\r\n\r\n".encode())
    assert (await asyncio.wait_for(reader.read(65536), 5)).startswith(b"HTTP/1.1 400 ")
    writer.close()
    assert any("Invalid header value" in record.getMessage() for record in caplog.records)
    assert secret_of(token) not in caplog.text


async def test_a_read_token_exports_the_lists_but_not_the_sessions(running: RunningApp, catalog: None) -> None:
    # GET /auth/sessions refuses every personal token (no token manages sessions); the account
    # file must not hand an app the same list (where and on what the person signs in) either.
    api = await signed_in(running)
    token = (await made(api, ["read"]))["token"]
    assert (await bearer(running, "GET", "/auth/sessions", token)).body == FORBIDDEN
    with_cookie = await api.get("/user/export")
    assert with_cookie.status == 200 and len(with_cookie.body["sessions"]) == 1
    with_token = await bearer(running, "GET", "/user/export", token)
    assert with_token.status == 200 and with_token.body["profile"] == with_cookie.body["profile"]
    assert with_token.body["sessions"] == []
