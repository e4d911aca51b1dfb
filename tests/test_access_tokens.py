"""The accessToken (issue 30, point 1): login, me and refresh answer it; `Authorization: Bearer`
authenticates like the cookie, in the same one read, and stops the moment its session does."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from tests.api_client import ApiClient, Reply
from tests.bodies import STATUS
from tests.catalog_data import series, volume
from tests.conftest import CommandCounter, RunningApp
from tests.roles import make_admin, set_roles
from tests.service_process import running_service
from tests.test_access_control import every_route_refuses

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1)]), series(2, "Berserk")]
UNAUTHORIZED = {"data": "Unauthorized", "code": 401}
PASSWORD = "correct horse"


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read without its key (as any holder of it can)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def bearer(running: RunningApp, method: str, path: str, token: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> Reply:
    """A request with the token and no cookie."""
    return await running.client().request(method, path, json_body=body,
                                          headers={"Authorization": f"Bearer {token}", **(headers or {})})


async def signed_in(running: RunningApp, username: str = "alice", *, register: bool = True) -> tuple[ApiClient, str]:
    api = running.client()
    if register:
        assert (await api.register(username)).status == 201
    reply = await api.login(username)
    assert reply.status == 200, reply.body
    return api, reply.body["accessToken"]


async def test_login_answers_an_access_token_for_its_session_and_the_user(running: RunningApp, catalog: None) -> None:
    api = running.client()
    assert (await api.register("alice")).status == 201
    reply = await api.login("alice")
    assert reply.status == 200 and set(reply.body) == {"accessToken", "user"}
    assert reply.body["user"]["username"] == "alice" and "refreshToken" in api.cookies
    payload = claims(reply.body["accessToken"])
    sessions = (await api.get("/auth/sessions")).body["sessions"]
    assert (payload["sub"], payload["sid"], payload["typ"]) == (reply.body["user"]["id"], sessions[0]["id"], "access")
    assert payload["exp"] - payload["iat"] == 15 * 60


async def test_me_and_refresh_answer_a_new_token_from_the_cookie(running: RunningApp, catalog: None) -> None:
    api, _ = await signed_in(running)
    me = await api.get("/auth/me")
    assert me.status == 200 and set(me.body) == {"accessToken", "user"}
    refreshed = await api.post("/auth/refresh")
    assert refreshed.status == 200 and set(refreshed.body) == {"accessToken"}
    for token in (me.body["accessToken"], refreshed.body["accessToken"]):
        assert (await bearer(running, "GET", "/auth/me", token)).body["user"] == me.body["user"]


async def test_a_token_does_not_renew_itself(running: RunningApp, catalog: None) -> None:
    _, token = await signed_in(running)
    assert (await bearer(running, "POST", "/auth/refresh", token)).body == UNAUTHORIZED
    me = await bearer(running, "GET", "/auth/me", token)
    assert me.status == 200 and me.body["accessToken"] == token  # the same one, not a later expiry
    assert (await running.client().post("/auth/refresh")).body == UNAUTHORIZED  # no cookie, no token


async def test_bearer_reads_and_writes_without_a_cookie_or_a_set_cookie(running: RunningApp, catalog: None) -> None:
    api, token = await signed_in(running)
    added = await bearer(running, "POST", "/user/reading-status/add/1", token, STATUS)
    assert added.status == 200 and added.set_cookies == []
    read = await bearer(running, "GET", "/user/reading-status/id/1", token)
    assert read.status == 200 and read.body["series_id"] == 1
    assert (await api.get("/user/reading-status/id/1")).body == read.body  # the cookie's user sees the same
    assert (await bearer(running, "DELETE", "/user/reading-status/delete/1", token)).status == 200


async def test_bearer_is_held_to_the_users_permissions(running: RunningApp, db: AsyncDatabase, catalog: None) -> None:
    _, alice = await signed_in(running, "alice")
    bob, _ = await signed_in(running, "bob")
    bob_id = (await bob.get("/auth/me")).body["user"]["id"]
    settings = {"settings": {"theme": "dark"}}
    refused = await bearer(running, "POST", f"/users/{bob_id}/save-settings", alice, settings)
    assert (refused.status, refused.body) == (403, {"data": "Forbidden", "code": 403})
    alice_id = claims(alice)["sub"]
    await make_admin(db, alice_id)
    assert (await bearer(running, "POST", f"/users/{bob_id}/save-settings", alice, settings)).status == 200
    assert (await bob.get("/auth/me")).body["user"]["settings"]["theme"] == "dark"


async def test_bearer_needs_no_origin_check_while_the_cookie_does(running: RunningApp, catalog: None) -> None:
    api, token = await signed_in(running)
    elsewhere = {"Origin": "https://evil.example"}
    by_cookie = await api.post("/user/reading-status/add/1", STATUS, headers=elsewhere)
    assert by_cookie.status == 403
    by_token = await bearer(running, "POST", "/user/reading-status/add/1", token, STATUS, headers=elsewhere)
    assert by_token.status == 200
    # A GET that writes asks a cookie for proof of a trusted page; a token is that proof itself.
    assert (await api.get("/volumes/toggle-collection/id/11?client=1")).status == 403
    toggled = await bearer(running, "GET", "/volumes/toggle-collection/id/11?client=1", token)
    assert toggled.status == 200 and toggled.body["in_collection"] is True


async def test_a_token_and_a_cookie_of_another_user_answer_as_the_token(running: RunningApp, catalog: None) -> None:
    alice, _ = await signed_in(running, "alice")
    _, bob = await signed_in(running, "bob")
    reply = await alice.get("/auth/me", headers={"Authorization": f"Bearer {bob}"})
    assert reply.body["user"]["username"] == "bob"
    broken = await alice.get("/auth/me", headers={"Authorization": f"Bearer {bob}x"})
    assert broken.body == UNAUTHORIZED  # a bad token is refused, not replaced by the cookie
    assert "refreshToken" in alice.cookies  # and the cookie is not cleared for it


async def test_an_expired_a_forged_or_a_malformed_token_answers_401(running: RunningApp, catalog: None) -> None:
    _, token = await signed_in(running)
    payload = claims(token)
    tokens = running.app.services.access_tokens  # type: ignore[attr-defined]
    expired = tokens.issue(payload["sub"], payload["sid"], utc_now() - timedelta(minutes=15, seconds=1))
    header, body, signature = token.split(".")
    raised = dict(payload, sub="0" * 24)
    other_user = base64.urlsafe_b64encode(json.dumps(raised).encode()).rstrip(b"=").decode()
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    for bad in (expired, f"{header}.{body}.{signature[:-2]}AA", f"{header}.{other_user}.{signature}",
                f"{unsigned}.{body}.", "not-a-token", "", "e" * 5000):
        reply = await bearer(running, "GET", "/auth/me", bad)
        assert reply.body == UNAUTHORIZED, bad[:40]
    assert (await bearer(running, "GET", "/auth/me", token)).status == 200  # the real one still works


async def test_every_401_says_how_to_authenticate_and_whether_the_token_was_refused(
        running: RunningApp, catalog: None) -> None:
    api, token = await signed_in(running)
    anyone = running.client()
    # No credential, a dead cookie, a wrong password at sign-in: the scheme alone (RFC 6750, 3).
    assert (await anyone.get("/auth/me")).headers["WWW-Authenticate"] == "Bearer"
    dead_cookie = await anyone.get("/auth/me", headers={"Cookie": "refreshToken=" + "0" * 24 + "." + "a" * 43},
                                   send_cookies=False)
    assert (dead_cookie.status, dead_cookie.headers["WWW-Authenticate"]) == (401, "Bearer")
    wrong = await anyone.login("alice", "wrong password")
    assert (wrong.status, wrong.headers["WWW-Authenticate"]) == (401, "Bearer")
    # A token sent and refused says so (RFC 6750, 3.1), also where only the cookie is taken.
    for refused in (await bearer(running, "GET", "/auth/me", token + "x"),
                    await bearer(running, "POST", "/auth/refresh", token)):
        assert (refused.status, refused.headers["WWW-Authenticate"]) == (401, 'Bearer error="invalid_token"')
    # The token was fine and the password was not: no word against the token.
    changed = await bearer(running, "POST", "/auth/change-password", token,
                           {"current_password": "wrong password", "new_password": "another horse"})
    assert (changed.status, changed.body["data"], changed.headers["WWW-Authenticate"]) == \
        (401, "Invalid credentials", "Bearer")
    # The same 401 held for an Idempotency-Key, then replayed for it (schemathesis found both
    # without the header): the challenge comes with the saved answer too.
    for replayed in ("", "true"):
        kept = await api.post("/auth/change-password", {"current_password": "wrong password",
                                                        "new_password": "another horse"},
                              headers={"Idempotency-Key": "wrong-password-once"})
        assert (kept.status, kept.headers.get("Idempotent-Replayed", ""), kept.headers["WWW-Authenticate"]) == \
            (401, replayed, "Bearer")
    # Only a 401 challenges.
    assert "WWW-Authenticate" not in (await bearer(running, "GET", "/auth/me", token)).headers
    assert "WWW-Authenticate" not in (await api.get("/auth/me")).headers


async def test_logging_out_ends_the_sessions_tokens(running: RunningApp, catalog: None) -> None:
    api, token = await signed_in(running)
    assert (await bearer(running, "GET", "/user/reading-history", token)).status == 200
    assert (await api.post("/auth/logout")).status == 200
    assert (await bearer(running, "GET", "/user/reading-history", token)).body == UNAUTHORIZED


async def test_a_token_can_log_its_own_session_out(running: RunningApp, catalog: None) -> None:
    api, token = await signed_in(running)
    assert (await bearer(running, "POST", "/auth/logout", token)).status == 200
    assert (await bearer(running, "GET", "/auth/me", token)).body == UNAUTHORIZED
    assert (await api.get("/auth/me")).body == UNAUTHORIZED  # the cookie's session was that one


async def test_ending_the_session_elsewhere_ends_its_tokens(running: RunningApp, catalog: None) -> None:
    laptop, _ = await signed_in(running)
    _, phone_token = await signed_in(running, register=False)
    sessions = (await laptop.get("/auth/sessions")).body["sessions"]
    phone_session = next(s["id"] for s in sessions if not s["current"])
    assert phone_session == claims(phone_token)["sid"]
    assert (await laptop.delete(f"/auth/sessions/{phone_session}")).status == 200
    assert (await bearer(running, "GET", "/auth/me", phone_token)).body == UNAUTHORIZED
    assert (await laptop.get("/auth/me")).status == 200


async def test_a_password_change_ends_every_access_token_and_the_kept_cookie_gets_a_new_one(
    running: RunningApp, catalog: None
) -> None:
    laptop, laptop_token = await signed_in(running)
    _, phone_token = await signed_in(running, register=False)
    changed = await laptop.post("/auth/change-password",
                                {"current_password": PASSWORD, "new_password": "battery staple"})
    assert changed.status == 200
    assert (await bearer(running, "GET", "/auth/me", phone_token)).body == UNAUTHORIZED
    # The token of the session that changed it ends too (a stolen one must not outlive the
    # change); that session's cookie stays signed in and answers a token for its new id.
    assert (await bearer(running, "GET", "/auth/me", laptop_token)).body == UNAUTHORIZED
    refreshed = await laptop.post("/auth/refresh")
    assert refreshed.status == 200 and claims(refreshed.body["accessToken"])["sid"] != claims(laptop_token)["sid"]
    assert (await bearer(running, "GET", "/auth/me", refreshed.body["accessToken"])).status == 200
    sessions = (await laptop.get("/auth/sessions")).body["sessions"]
    assert [s["id"] for s in sessions] == [claims(refreshed.body["accessToken"])["sid"]]


async def test_a_password_changed_with_an_access_token_ends_that_token(running: RunningApp, catalog: None) -> None:
    _, token = await signed_in(running)
    changed = await bearer(running, "POST", "/auth/change-password", token,
                           {"current_password": PASSWORD, "new_password": "battery staple"})
    assert changed.status == 200, changed.body
    assert (await bearer(running, "GET", "/auth/me", token)).body == UNAUTHORIZED
    assert (await running.client().login("alice", "battery staple")).status == 200


async def test_a_ban_ends_every_token_at_once(running: RunningApp, db: AsyncDatabase, catalog: None) -> None:
    api, token = await signed_in(running)
    assert (await bearer(running, "GET", "/user/reading-history", token)).status == 200
    await set_roles(db, claims(token)["sub"], "banned")
    assert (await bearer(running, "GET", "/user/reading-history", token)).body == UNAUTHORIZED
    assert (await api.get("/auth/me")).body["user"]["roles"] == ["banned"]  # the cookie shows the ban


async def test_deleting_the_account_ends_every_token(running: RunningApp, catalog: None) -> None:
    api, token = await signed_in(running)
    assert (await api.delete("/user/account", json_body={"password": PASSWORD})).status == 200
    assert (await bearer(running, "GET", "/auth/me", token)).body == UNAUTHORIZED


async def test_a_session_stored_without_an_id_gets_one_for_its_token(
    running: RunningApp, db: AsyncDatabase, catalog: None
) -> None:
    api, _ = await signed_in(running)
    user_id = (await api.get("/auth/me")).body["user"]["id"]
    await db.users.update_one({"_id": user_id}, {"$unset": {"sessions.$[].id": ""}})
    token = (await api.get("/auth/me")).body["accessToken"]
    stored = await db.users.find_one({"_id": user_id}, {"sessions": 1})
    assert stored is not None and claims(token)["sid"] == stored["sessions"][0]["id"]
    assert (await bearer(running, "GET", "/auth/me", token)).status == 200


async def test_bearer_costs_the_round_trips_of_the_cookie(
    running: RunningApp, catalog: None, commands: CommandCounter
) -> None:
    api, token = await signed_in(running)
    costs = {}
    for name, send in [
        ("cookie read", lambda: api.get("/user/reading-status/id/1")),
        ("token read", lambda: bearer(running, "GET", "/user/reading-status/id/1", token)),
        ("cookie write", lambda: api.post("/user/reading-status/add/1", STATUS)),
        ("token write", lambda: bearer(running, "POST", "/user/reading-status/update/1", token, STATUS)),
    ]:
        commands.reset()
        assert (await send()).status == 200
        costs[name] = commands.total
    # A write: the session read, the entry's read in the transaction, the write, its change
    # (storage.changes) and the commit.
    assert costs == {"cookie read": 1, "token read": 1, "cookie write": 5, "token write": 5}


async def test_the_openapi_document_declares_both_schemes(running: RunningApp) -> None:
    document = (await running.client().get("/openapi.json")).body
    schemes = document["components"]["securitySchemes"]
    assert schemes["accessToken"]["type"] == "http" and schemes["accessToken"]["scheme"] == "bearer"
    me = document["paths"]["/auth/me"]["get"]
    assert me["security"] == [{"refreshToken": []}, {"accessToken": []}]
    assert me["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    refresh = document["paths"]["/auth/refresh"]["post"]["responses"]["200"]["content"]["application/json"]
    assert refresh["schema"] == {"$ref": "#/components/schemas/AccessTokenAnswer"}


async def test_tornados_line_about_a_malformed_authorization_header_has_no_token(
    running: RunningApp, catalog: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, token = await signed_in(running)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(f"GET /auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\0\r\n\r\n".encode())
    assert (await asyncio.wait_for(reader.read(65536), 5)).startswith(b"HTTP/1.1 400 ")
    writer.close()
    refused = [record.getMessage() for record in caplog.records if "Invalid header value" in record.getMessage()]
    assert refused and all("'Bearer ***" in message for message in refused), refused
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


async def test_every_authenticated_route_refuses_a_dead_token(running: RunningApp, catalog: None) -> None:
    api, token = await signed_in(running)
    payload = claims(token)
    expired = running.app.services.access_tokens.issue(  # type: ignore[attr-defined]
        payload["sub"], payload["sid"], utc_now() - timedelta(minutes=16))
    assert (await api.post("/auth/logout")).status == 200
    probe = running.client()
    for dead in (token, expired, token[:-4] + "AAAA"):
        assert await every_route_refuses(probe, None, {"Authorization": f"Bearer {dead}"}) == []



async def test_public_pages_read_the_viewer_from_a_token_too(running: RunningApp, catalog: None) -> None:
    _, token = await signed_in(running)
    assert (await bearer(running, "POST", "/user/collection/add/11", token)).status == 200
    shown = await bearer(running, "GET", "/series/volumes/1", token)
    assert shown.status == 200 and [v["in_collection"] for v in shown.body["volumes"]] == [True]
    profile = await bearer(running, "GET", "/users/alice", token)
    assert profile.status == 200 and "Authorization" in profile.headers["Vary"]  # a cache keeps viewers apart
    dead = await bearer(running, "GET", "/series/volumes/1", token + "x")
    assert dead.status == 200 and [v["in_collection"] for v in dead.body["volumes"]] == [False]  # anyone's view


async def test_tokens_outlive_a_restart_and_a_rotation_keeps_them_for_their_15_minutes(
    tmp_path: Path, mongo_uri: str, db: AsyncDatabase
) -> None:
    """The real command, restarted: the key made in DATA_DIR is the same at the next start, so a
    token signed before it still works; moving to ACCESS_TOKEN_SECRET with the file's key gone
    refuses it, and a rotation (the new secret, the old one as ACCESS_TOKEN_PREVIOUS_SECRET)
    keeps accepting what the old one signed until that setting is removed."""
    data = tmp_path / "data"
    env = {"MONGODB_URI": mongo_uri, "MONGODB_DB": db.name}
    first, second = "a" * 40, "b" * 40

    async def me(token: str, **settings: str) -> int:
        async with running_service(data, **env, **settings) as service:
            return (await ApiClient(service.base_url).request(
                "GET", "/auth/me", headers={"Authorization": f"Bearer {token}"})).status

    async with running_service(data, **env) as service:
        api = ApiClient(service.base_url)
        assert (await api.register("alice")).status == 201
        from_file = (await api.login("alice")).body["accessToken"]
    assert (data / "access-token-secret").stat().st_mode & 0o777 == 0o600
    assert await me(from_file) == 200  # the same key, read from the file
    assert await me(from_file, ACCESS_TOKEN_SECRET=first) == 401
    async with running_service(data, **env, ACCESS_TOKEN_SECRET=first) as service:
        signed_by_first = (await ApiClient(service.base_url).login("alice")).body["accessToken"]
    assert await me(signed_by_first, ACCESS_TOKEN_SECRET=second, ACCESS_TOKEN_PREVIOUS_SECRET=first) == 200
    assert await me(signed_by_first, ACCESS_TOKEN_SECRET=second) == 401
