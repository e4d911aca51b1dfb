"""A user's own sessions (GET /auth/sessions, DELETE /auth/sessions/:id) and changing the password."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.conftest import FRONTEND_ORIGIN, RunningApp, StartApp

pytestmark = pytest.mark.asyncio

PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple"


async def second_device(running: RunningApp, username: str, user_agent: str = "Phone/1.0",
                        password: str = PASSWORD) -> ApiClient:
    client = running.client()
    assert (await client.post("/auth/login", {"username": username, "password": password},
                              headers={"User-Agent": user_agent})).status == 200
    return client


async def test_sessions_are_listed_newest_first_with_device_and_address(running: RunningApp) -> None:
    laptop = running.client()
    assert (await laptop.register("alice")).status == 201
    assert (await laptop.post("/auth/login", {"username": "alice", "password": PASSWORD},
                              headers={"User-Agent": "Laptop/2.0"})).status == 200
    phone = await second_device(running, "alice", "P" * 300)

    reply = await laptop.get("/auth/sessions")
    assert reply.status == 200
    sessions = reply.body["sessions"]
    assert [s["user_agent"] for s in sessions] == ["P" * 200, "Laptop/2.0"]  # newest first, shortened to 200
    assert [s["current"] for s in sessions] == [False, True]
    assert {s["address"] for s in sessions} == {"127.0.0.1"}
    assert set(sessions[0]) == {"id", "created", "last_seen", "current", "user_agent", "address"}
    assert sessions[0]["created"] >= sessions[1]["created"]
    assert [s["current"] for s in (await phone.get("/auth/sessions")).body["sessions"]] == [True, False]


async def test_a_session_id_is_neither_the_token_nor_its_hash(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("alice")
    secret = api.cookies["refreshToken"].split(".", 1)[1]
    stored = (await db.users.find_one({"slug": "alice"}))["sessions"][0]["token_hash"]
    reply = await api.get("/auth/sessions")
    assert secret.encode() not in reply.raw and stored.encode() not in reply.raw
    assert hashlib.sha256(secret.encode()).hexdigest() == stored  # what was looked for is what is stored
    assert len(reply.body["sessions"][0]["id"]) == 16


async def test_the_address_is_the_client_address_behind_a_trusted_proxy(start_app: StartApp) -> None:
    client = (await start_app(trust_proxy=True)).client()
    assert (await client.register("alice")).status == 201
    assert (await client.post("/auth/login", {"username": "alice", "password": PASSWORD},
                              headers={"X-Forwarded-For": "203.0.113.7"})).status == 200
    assert (await client.get("/auth/sessions")).body["sessions"][0]["address"] == "203.0.113.7"


async def test_an_untrusted_forwarded_header_is_not_the_address(running: RunningApp) -> None:
    client = running.client()
    assert (await client.register("alice")).status == 201
    assert (await client.post("/auth/login", {"username": "alice", "password": PASSWORD},
                              headers={"X-Forwarded-For": "203.0.113.7"})).status == 200
    assert (await client.get("/auth/sessions")).body["sessions"][0]["address"] == "127.0.0.1"


async def test_ending_another_session_signs_that_device_out(running: RunningApp) -> None:
    laptop = running.client()
    await laptop.sign_up("alice")
    phone = await second_device(running, "alice")
    phone_id = next(s["id"] for s in (await laptop.get("/auth/sessions")).body["sessions"] if not s["current"])

    reply = await laptop.delete(f"/auth/sessions/{phone_id}")
    assert (reply.status, reply.body) == (200, {"data": "Session ended", "code": 200})
    assert not any(c.startswith("refreshToken=") for c in reply.set_cookies)  # the laptop stays signed in
    assert (await phone.get("/auth/me")).status == 401
    assert (await laptop.get("/auth/me")).status == 200
    assert len((await laptop.get("/auth/sessions")).body["sessions"]) == 1
    again = await laptop.delete(f"/auth/sessions/{phone_id}")
    assert (again.status, again.body["data"]) == (404, "Session not found")


async def test_ending_the_current_session_is_a_logout(api: ApiClient) -> None:
    await api.sign_up("alice")
    own = (await api.get("/auth/sessions")).body["sessions"][0]["id"]
    reply = await api.delete(f"/auth/sessions/{own}")
    assert reply.status == 200
    assert any(c.startswith("refreshToken=;") or c.startswith('refreshToken="";') for c in reply.set_cookies)
    assert (await api.get("/auth/me")).status == 401


async def test_another_users_session_is_not_found_and_keeps_working(running: RunningApp) -> None:
    alice, bob = running.client(), running.client()
    await alice.sign_up("alice")
    await bob.sign_up("bob")
    bobs = (await bob.get("/auth/sessions")).body["sessions"][0]["id"]
    reply = await alice.delete(f"/auth/sessions/{bobs}")
    assert (reply.status, reply.body) == (404, {"data": "Session not found", "code": 404})
    assert (await bob.get("/auth/me")).status == 200


@pytest.mark.parametrize("session_id", ["nope", "x" * 65, "%24ne", "..", "a%2Fb"])
async def test_an_unknown_or_malformed_session_id_is_not_found(api: ApiClient, session_id: str) -> None:
    await api.sign_up("alice")
    reply = await api.delete(f"/auth/sessions/{session_id}")
    assert (reply.status, reply.body["data"]) == (404, "Session not found")
    assert (await api.get("/auth/me")).status == 200


async def test_an_empty_session_id_is_a_missing_parameter(api: ApiClient) -> None:
    await api.sign_up("alice")
    reply = await api.delete("/auth/sessions/")
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")


async def test_session_routes_need_a_session(api: ApiClient) -> None:
    assert (await api.get("/auth/sessions")).status == 401
    assert (await api.delete("/auth/sessions/abc")).status == 401


async def test_a_session_stored_before_ids_gets_one_that_stays(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("alice")
    now = datetime.now(timezone.utc)
    await db.users.update_one({"slug": "alice"}, {"$push": {"sessions": {
        "token_hash": "0" * 64, "created": now - timedelta(days=3), "last_seen": now - timedelta(days=1)}}})
    first = (await api.get("/auth/sessions")).body["sessions"]
    second = (await api.get("/auth/sessions")).body["sessions"]
    assert [s["id"] for s in first] == [s["id"] for s in second] and len(first) == 2
    old = first[1]
    assert (old["user_agent"], old["address"], old["current"]) == (None, None, False)
    assert (await api.delete(f"/auth/sessions/{old['id']}")).status == 200
    assert [s["token_hash"] for s in (await db.users.find_one({"slug": "alice"}))["sessions"]] != ["0" * 64]
    assert len((await db.users.find_one({"slug": "alice"}))["sessions"]) == 1


async def test_a_cross_site_delete_is_refused(api: ApiClient) -> None:
    await api.sign_up("alice")
    own = (await api.get("/auth/sessions")).body["sessions"][0]["id"]
    reply = await api.delete(f"/auth/sessions/{own}", headers={"Origin": "https://evil.test"})
    assert (reply.status, reply.body["data"]) == (403, "Forbidden")
    assert (await api.delete(f"/auth/sessions/{own}", headers={"Origin": FRONTEND_ORIGIN})).status == 200


# ---- POST /auth/change-password ----

async def change(client: ApiClient, current: str = PASSWORD, new: str = NEW_PASSWORD, **kwargs: object):
    return await client.post("/auth/change-password", {"current_password": current, "new_password": new}, **kwargs)


async def test_changing_the_password_ends_every_other_session(running: RunningApp) -> None:
    laptop = running.client()
    await laptop.sign_up("alice")
    phone = await second_device(running, "alice")
    tablet = await second_device(running, "alice", "Tablet/3")

    reply = await change(laptop)
    assert (reply.status, reply.body) == (200, {"data": "Password changed", "code": 200})
    assert (await laptop.get("/auth/me")).status == 200
    assert (await phone.get("/auth/me")).status == 401 and (await tablet.get("/auth/me")).status == 401
    assert [s["current"] for s in (await laptop.get("/auth/sessions")).body["sessions"]] == [True]
    assert (await running.client().login("alice", PASSWORD)).status == 401
    assert (await running.client().login("alice", NEW_PASSWORD)).status == 200


async def test_a_wrong_current_password_changes_nothing(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("alice")
    before = (await db.users.find_one({"slug": "alice"}))["password_hash"]
    reply = await change(api, current="not my password")
    assert (reply.status, reply.body) == (401, {"data": "Invalid credentials", "code": 401})
    assert (await db.users.find_one({"slug": "alice"}))["password_hash"] == before
    assert (await api.get("/auth/me")).status == 200  # a wrong password does not sign the user out


async def test_wrong_current_passwords_count_against_the_login_limit(start_app: StartApp) -> None:
    running = await start_app(login_failures_per_15_min=3)
    api = running.client()
    await api.sign_up("alice")  # the successful login cleared its own count
    for _ in range(3):
        assert (await change(api, current="guess")).status == 401
    reply = await change(api, current="guess")
    assert (reply.status, reply.body["data"]) == (429, "Too many requests.")
    assert (await change(api)).status == 429  # the right one too, until the window passes
    assert (await running.client().login("alice")).status == 429  # the same budget as the login


@pytest.mark.parametrize("new", ["short", "x" * 129])
async def test_an_invalid_new_password_is_422(api: ApiClient, new: str) -> None:
    await api.sign_up("alice")
    reply = await change(api, new=new)
    assert (reply.status, reply.body["data"]) == (422, "Invalid password")
    assert [error["field"] for error in reply.body["errors"]] == ["new_password"]
    assert (await api.login("alice", PASSWORD)).status == 200


@pytest.mark.parametrize("body", [{}, {"current_password": PASSWORD}, {"new_password": NEW_PASSWORD},
                                  {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "$set": 1},
                                  {"current_password": 1, "new_password": NEW_PASSWORD}])
async def test_a_malformed_change_is_400(api: ApiClient, body: dict) -> None:
    await api.sign_up("alice")
    assert (await api.post("/auth/change-password", body)).status == 400
    assert (await api.login("alice", PASSWORD)).status == 200


async def test_change_password_needs_a_session_and_the_own_origin(api: ApiClient) -> None:
    assert (await change(api)).status == 401
    await api.sign_up("alice")
    assert (await change(api, headers={"Origin": "https://evil.test"})).status == 403
    assert (await api.login("alice", PASSWORD)).status == 200
