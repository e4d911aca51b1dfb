"""Register, login, me and logout, as the contract's Authentication section states them."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.conftest import CommandCounter, StartApp

pytestmark = pytest.mark.asyncio


def refresh_cookie(header_values: list[str]) -> SimpleCookie:
    cookie = SimpleCookie()
    for value in header_values:
        if value.startswith("refreshToken="):
            cookie.load(value)
    assert "refreshToken" in cookie, header_values
    return cookie


async def test_register_answers_201_with_the_contract_message(api: ApiClient) -> None:
    reply = await api.register("alice")
    assert (reply.status, reply.body) == (201, {"data": "User created successfully", "code": 201})


async def test_registering_a_taken_username_in_other_case_answers_409_naming_the_field(api: ApiClient) -> None:
    await api.register("Alice")
    reply = await api.register("aLICE")
    # `errors` names the field, as the 422s of a refused name do: a form puts the message beside it.
    assert (reply.status, reply.body) == (409, {"data": "Username already taken", "code": 409, "errors": [
        {"field": "username", "message": "Username already taken"}]})


@pytest.mark.parametrize("username", ["ab", "x" * 33, "has space", "emoji😀", "semi;colon", "a/b", "", "$where"])
async def test_register_refuses_a_bad_username_with_422(api: ApiClient, username: str) -> None:
    reply = await api.register(username)
    assert (reply.status, reply.body) == (422, {"data": "Invalid username", "code": 422, "errors": [
        {"field": "username", "message": "3 to 32 letters, digits, '_', '.' or '-'"}]})


@pytest.mark.parametrize("username", ["abc", "x" * 32, "a_b.c-d", "Z9"+"z"])
async def test_register_accepts_usernames_at_the_edges(api: ApiClient, username: str) -> None:
    assert (await api.register(username)).status == 201


@pytest.mark.parametrize("password", ["short", "1234567", "p" * 129])
async def test_register_refuses_a_bad_password_with_422(api: ApiClient, password: str) -> None:
    reply = await api.register("alice", password)
    assert (reply.status, reply.body) == (422, {"data": "Invalid password", "code": 422, "errors": [
        {"field": "password", "message": "8 to 128 characters of valid Unicode"}]})


@pytest.mark.parametrize("password", ["12345678", "p" * 128])
async def test_register_accepts_passwords_at_the_edges(api: ApiClient, password: str) -> None:
    assert (await api.register("alice", password)).status == 201
    assert (await api.login("alice", password)).status == 200


@pytest.mark.parametrize("body", [{}, {"username": "alice"}, {"password": "long enough"}])
async def test_register_without_a_field_answers_400_missing(api: ApiClient, body: dict) -> None:
    reply = await api.post("/auth/register", body)
    assert reply.status == 400
    assert reply.body["data"] == "Required parameters missing"
    assert reply.body["code"] == 400


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": 12345678},
        {"username": {"$gt": ""}, "password": "long enough"},
        {"username": "alice", "password": "long enough", "role": "admin"},
        ["alice", "long enough"],
    ],
)
async def test_register_with_malformed_fields_answers_400_invalid(api: ApiClient, body: object) -> None:
    reply = await api.post("/auth/register", body)
    assert reply.status == 400
    assert reply.body["data"] == "Invalid parameters"
    assert reply.body["errors"], reply.body


async def test_password_is_stored_only_as_an_argon2id_hash(api: ApiClient, db: AsyncDatabase) -> None:
    await api.register("alice", "my secret pw")
    stored = await db.users.find_one({"slug": "alice"})
    assert stored["password_hash"].startswith("$argon2id$")
    assert "my secret pw" not in repr(stored)


async def test_login_answers_the_user_object(api: ApiClient) -> None:
    await api.register("Alice")
    reply = await api.login("alice")
    assert reply.status == 200
    user = reply.body["user"]
    assert set(user) == {"id", "username", "slug", "profile_image", "registered", "age_verified",
                         "roles", "permissions", "settings"}
    assert user["username"] == "Alice" and user["slug"] == "alice"
    assert user["roles"] == ["member"] and user["permissions"] == ["rate-series"]
    assert user["profile_image"] is None and user["age_verified"] is False
    assert user["settings"]["theme"] == "light" and user["settings"]["show-drag-indicator"] is True
    registered = datetime.fromisoformat(user["registered"].replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - registered) < timedelta(minutes=1)


async def test_login_sets_an_httponly_lax_secure_cookie_for_30_days(api: ApiClient) -> None:
    await api.register("alice")
    reply = await api.login("alice")
    morsel = refresh_cookie(reply.set_cookies)["refreshToken"]
    assert morsel["httponly"] and morsel["secure"]
    assert morsel["samesite"] == "Lax" and morsel["path"] == "/"
    expires = datetime.strptime(morsel["expires"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc)
    assert timedelta(days=29, hours=23) < expires - datetime.now(timezone.utc) <= timedelta(days=30)
    assert len(morsel.value) >= 43  # 256 bits, base64url


async def test_cookie_is_not_secure_when_the_setting_turns_it_off(start_app: StartApp) -> None:
    client = (await start_app(cookie_secure=False)).client()
    await client.register("alice")
    morsel = refresh_cookie((await client.login("alice")).set_cookies)["refreshToken"]
    assert not morsel["secure"] and morsel["httponly"]


async def test_the_cookie_is_the_user_id_and_a_secret_of_which_only_the_sha256_is_stored(
    api: ApiClient, db: AsyncDatabase
) -> None:
    user = await api.sign_up("alice")
    user_id, dot, secret = api.cookies["refreshToken"].partition(".")
    assert (user_id, dot) == (user["id"], ".")
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32  # 256 bits
    stored = await db.users.find_one({"_id": user["id"]})
    assert secret not in repr(stored)
    assert [s["token_hash"] for s in stored["sessions"]] == [hashlib.sha256(secret.encode()).hexdigest()]


@pytest.mark.parametrize("cookie", [
    "no-dot-at-all", "not-an-id.{secret}", "{user_id}", "{user_id}.", "{user_id}.short",
    "{user_id}.{secret}x", "{user_id}.{secret}.{secret}", "{other_id}.{secret}", "{upper_id}.{secret}",
    "{user_id}.{other_secret}",
])
async def test_a_malformed_or_mismatched_cookie_is_a_plain_401(api: ApiClient, cookie: str) -> None:
    user = await api.sign_up("alice")
    secret = api.cookies["refreshToken"].partition(".")[2]
    value = cookie.format(user_id=user["id"], secret=secret, other_id="0" * 24, upper_id=user["id"].upper(),
                          other_secret="A" * 43)
    reply = await api.get("/auth/me", headers={"Cookie": f"refreshToken={value}"}, send_cookies=False)
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


async def test_login_with_a_wrong_password_answers_401(api: ApiClient) -> None:
    await api.register("alice")
    reply = await api.login("alice", "wrong password")
    assert (reply.status, reply.body) == (401, {"data": "Invalid credentials", "code": 401})
    assert "refreshToken" not in api.cookies


async def test_login_of_an_unknown_user_answers_401(api: ApiClient) -> None:
    reply = await api.login("nobody")
    assert (reply.status, reply.body) == (401, {"data": "Invalid credentials", "code": 401})


async def test_login_without_a_password_answers_400(api: ApiClient) -> None:
    reply = await api.post("/auth/login", {"username": "alice"})
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")


async def test_login_with_an_operator_instead_of_a_name_answers_400(api: ApiClient) -> None:
    await api.register("alice")
    reply = await api.post("/auth/login", {"username": {"$ne": None}, "password": "correct horse"})
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")


async def test_me_answers_the_signed_in_user(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    reply = await api.get("/auth/me")
    assert reply.status == 200 and reply.body == {"user": user, "accessToken": reply.body["accessToken"]}


async def test_me_without_a_cookie_answers_401(api: ApiClient) -> None:
    reply = await api.get("/auth/me")
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


@pytest.mark.parametrize("token", ["garbage", "x" * 500, "%00", "\u00e9"])
async def test_me_with_an_unknown_token_answers_401(api: ApiClient, token: str) -> None:
    reply = await api.get("/auth/me", headers={"Cookie": f"refreshToken={token}"}, send_cookies=False)
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


async def test_logout_revokes_the_session_and_clears_the_cookie(api: ApiClient) -> None:
    await api.sign_up("alice")
    token = api.cookies["refreshToken"]
    reply = await api.post("/auth/logout")
    assert (reply.status, reply.body) == (200, {"data": "Logged out", "code": 200})
    assert any(c.startswith("refreshToken=;") or c.startswith('refreshToken="";') for c in reply.set_cookies)
    assert "refreshToken" not in api.cookies
    # The old token is dead even if a client kept it.
    replay = await api.get("/auth/me", headers={"Cookie": f"refreshToken={token}"}, send_cookies=False)
    assert replay.status == 401


async def test_logout_keeps_the_other_sessions(running, api: ApiClient) -> None:
    await api.sign_up("alice")
    phone = running.client()
    assert (await phone.login("alice")).status == 200
    assert (await api.post("/auth/logout")).status == 200
    assert (await phone.get("/auth/me")).status == 200


async def test_logout_all_revokes_every_session(running, api: ApiClient) -> None:
    await api.sign_up("alice")
    phone = running.client()
    assert (await phone.login("alice")).status == 200
    assert (await api.post("/auth/logout", {"all": True})).status == 200
    assert (await phone.get("/auth/me")).status == 401
    assert (await api.get("/auth/me")).status == 401


async def test_logout_without_a_session_answers_401(api: ApiClient) -> None:
    reply = await api.post("/auth/logout")
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


async def test_logout_with_a_bad_body_answers_400(api: ApiClient) -> None:
    await api.sign_up("alice")
    reply = await api.post("/auth/logout", {"all": "yes please"})
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")
    assert (await api.get("/auth/me")).status == 200


async def test_a_user_keeps_at_most_twenty_sessions(running, api: ApiClient, db: AsyncDatabase) -> None:
    await api.register("alice")
    for _ in range(23):
        assert (await running.client().login("alice")).status == 200
    stored = await db.users.find_one({"slug": "alice"})
    assert len(stored["sessions"]) == 20


async def test_login_and_registration_round_trips(api: ApiClient, commands: CommandCounter) -> None:
    commands.reset()
    assert (await api.register("alice")).status == 201
    # The attempt counter, then one transaction: the name, the user, the user's row in the
    # directory of public users and its count (read, then counted), the commit.
    assert commands.log == ["findAndModify", "insert", "insert", "update", "find", "update", "commitTransaction"]
    commands.reset()
    assert (await api.login("alice")).status == 200
    # The address's attempt counter and the name's, the name, the user, clearing the name's
    # counter, giving back the address's attempt, the new session.
    assert commands.log == ["findAndModify", "findAndModify", "find", "find", "delete", "update", "update"]
