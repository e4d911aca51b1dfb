"""A frontend on another site: the CORS headers it needs, and the session cookie's Secure and
SameSite for each setting and for requests over http and https (directly or through the proxy)."""

from __future__ import annotations

from http.cookies import Morsel, SimpleCookie

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.api_client import ApiClient
from tests.conftest import FRONTEND_ORIGIN, StartApp
from tests.tls import served_over_tls
from web.connections import GuardedHTTPServer

pytestmark = pytest.mark.asyncio

PASSWORD = {"username": "alice", "password": "correct horse"}
OVER_HTTPS = {"X-Forwarded-Proto": "https"}


def session_morsel(set_cookies: list[str]) -> Morsel[str]:
    cookie: SimpleCookie = SimpleCookie()
    for value in set_cookies:
        if value.startswith("refreshToken="):
            cookie.load(value)
    assert "refreshToken" in cookie, set_cookies
    return cookie["refreshToken"]


async def login_cookie(client: ApiClient, headers: dict[str, str] | None = None) -> Morsel[str]:
    """The session cookie a login sets, sent with `headers`."""
    reply = await client.request("POST", "/auth/login", json_body=PASSWORD, headers=headers)
    assert reply.status == 200, reply.body
    return session_morsel(reply.set_cookies)


def attributes(morsel: Morsel[str]) -> tuple[bool, str]:
    return bool(morsel["secure"]), morsel["samesite"]


# ---- CORS ----


async def test_a_preflight_from_an_allowed_origin_allows_authorization(api: ApiClient) -> None:
    reply = await api.request("OPTIONS", "/auth/me", headers={
        "Origin": FRONTEND_ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == FRONTEND_ORIGIN
    allowed = [name.strip() for name in reply.headers["Access-Control-Allow-Headers"].split(",")]
    assert allowed == ["Content-Type", "Idempotency-Key", "Authorization", "If-Match", "If-None-Match"]


async def test_answers_to_an_allowed_origin_expose_the_headers_a_frontend_reads(api: ApiClient) -> None:
    # Errors too: a 429's Retry-After, a 401's WWW-Authenticate (a refused token).
    for path, status in (("/health", 200), ("/auth/me", 401)):
        reply = await api.get(path, headers={"Origin": FRONTEND_ORIGIN})
        assert reply.status == status
        exposed = [name.strip() for name in reply.headers["Access-Control-Expose-Headers"].split(",")]
        assert exposed == ["Idempotent-Replayed", "ETag", "Content-Disposition", "Retry-After",
                           "WWW-Authenticate"], path


async def test_without_cors_origins_no_origin_gets_cors_headers_or_a_preflight(start_app: StartApp) -> None:
    client = (await start_app(cors_origins=())).client()
    reply = await client.get("/health", headers={"Origin": FRONTEND_ORIGIN})
    assert reply.status == 200
    assert not [name for name in reply.headers if name.lower().startswith("access-control-")]
    preflight = await client.request("OPTIONS", "/auth/me", headers={
        "Origin": FRONTEND_ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status == 403
    assert not [name for name in preflight.headers if name.lower().startswith("access-control-")]


# ---- the session cookie ----


@pytest.mark.parametrize("samesite, written", [("lax", "Lax"), ("strict", "Strict"), ("none", "None")])
async def test_the_cookie_has_the_samesite_of_the_setting(start_app: StartApp, samesite: str, written: str) -> None:
    client = (await start_app(cookie_secure=True, cookie_samesite=samesite)).client()
    assert (await client.register("alice")).status == 201
    assert attributes(await login_cookie(client)) == (True, written)


async def test_auto_makes_the_cookie_secure_exactly_over_https_through_the_trusted_proxy(
    start_app: StartApp
) -> None:
    client = (await start_app(cookie_secure="auto", trust_proxy=True)).client()
    assert (await client.register("alice")).status == 201
    assert attributes(await login_cookie(client)) == (False, "Lax")  # plain http, no proxy header
    assert attributes(await login_cookie(client, {"X-Forwarded-Proto": "http"})) == (False, "Lax")
    assert attributes(await login_cookie(client, OVER_HTTPS)) == (True, "Lax")


async def test_auto_does_not_believe_x_forwarded_proto_without_trust_proxy(start_app: StartApp) -> None:
    client = (await start_app(cookie_secure="auto", trust_proxy=False)).client()
    assert (await client.register("alice")).status == 201
    assert attributes(await login_cookie(client, OVER_HTTPS)) == (False, "Lax")


async def test_true_and_false_hold_whatever_the_scheme(start_app: StartApp) -> None:
    always = (await start_app(cookie_secure=True, trust_proxy=True)).client()
    assert (await always.register("alice")).status == 201
    assert attributes(await login_cookie(always)) == (True, "Lax")
    never = (await start_app(cookie_secure=False, trust_proxy=True)).client()
    assert attributes(await login_cookie(never, OVER_HTTPS)) == (False, "Lax")


async def test_samesite_none_with_auto_is_none_and_secure_over_https_and_lax_over_http(
    start_app: StartApp
) -> None:
    # A browser drops SameSite=None without Secure: over plain http (a developer's machine) the
    # cookie is Lax instead, so that same-site pages stay signed in.
    client = (await start_app(cookie_secure="auto", cookie_samesite="none", trust_proxy=True)).client()
    assert (await client.register("alice")).status == 201
    assert attributes(await login_cookie(client, OVER_HTTPS)) == (True, "None")
    assert attributes(await login_cookie(client)) == (False, "Lax")


async def test_the_cookie_is_cleared_with_the_attributes_it_was_set_with(start_app: StartApp) -> None:
    client = (await start_app(cookie_secure="auto", cookie_samesite="none", trust_proxy=True)).client()
    assert (await client.register("alice")).status == 201
    stale = (await login_cookie(client, OVER_HTTPS)).value
    logout = await client.request("POST", "/auth/logout", headers=OVER_HTTPS)
    assert logout.status == 200
    cleared = session_morsel(logout.set_cookies)
    assert cleared.value in ("", '""') and attributes(cleared) == (True, "None")
    # A cookie naming a session that is gone is cleared by authentication, the same way.
    refused = await client.request("GET", "/auth/me", headers={**OVER_HTTPS, "Cookie": f"refreshToken={stale}"},
                                   send_cookies=False)
    assert refused.status == 401
    assert attributes(session_morsel(refused.set_cookies)) == (True, "None")


async def test_auto_makes_the_cookie_secure_over_https_served_directly(start_app: StartApp) -> None:
    running = await start_app(cookie_secure="auto", cookie_samesite="none")
    assert (await running.client().register("alice")).status == 201
    async with served_over_tls(running.app, GuardedHTTPServer) as base_url:
        response = await AsyncHTTPClient().fetch(
            base_url + "/auth/login", method="POST", body='{"username": "alice", "password": "correct horse"}',
            headers={"Content-Type": "application/json"}, validate_cert=False, raise_error=False)
    assert response.code == 200
    assert attributes(session_morsel(response.headers.get_list("Set-Cookie"))) == (True, "None")


# ---- CSRF stays closed ----


async def test_with_samesite_none_a_cookie_write_from_a_foreign_origin_is_still_refused(start_app: StartApp) -> None:
    client = (await start_app(cookie_secure=True, cookie_samesite="none")).client()
    user = await client.sign_up("alice")
    path = f"/users/{user['id']}/save-settings"
    refused = await client.post(path, {"theme": "dark"}, headers={"Origin": "https://evil.test"})
    assert (refused.status, refused.body) == (403, {"data": "Forbidden", "code": 403})
    assert (await client.get("/auth/me")).body["user"]["settings"]["theme"] == "light"
    assert (await client.post(path, {"theme": "dark"}, headers={"Origin": FRONTEND_ORIGIN})).status == 200
