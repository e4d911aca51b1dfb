"""A real browser (headless Chromium, as test_browser.py drives it) with the page on one site and the
API on another, both over https with a self-signed certificate: with COOKIE_SAMESITE=none the
session cookie the login sets comes back on the page's next call; with lax, the default, the
browser drops it (issue 30: login 200, then 401 on every call)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import tornado.web
from pymongo.asynchronous.database import AsyncDatabase

from tests.catalog_data import load_catalog, series
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import StartApp
from tests.test_browser import PAGES  # importing it skips this module without Chromium
from tests.tls import served_over_tls
from web.connections import GuardedHTTPServer

pytestmark = pytest.mark.asyncio

SIGN_IN_AND_ASK = """async (api) => {
    const register = await call(api, "POST", "/auth/register", {username: "reader", password: "correct horse"});
    const login = await call(api, "POST", "/auth/login", {username: "reader", password: "correct horse"});
    const me = await call(api, "GET", "/auth/me");
    return {register: register.status, login: login.status, me: me.status, id: me.body?.user?.id};
}"""


@pytest_asyncio.fixture
async def profile(tmp_path: Path) -> AsyncIterator[Any]:
    """A browser with a profile of its own that allows third-party cookies, certificate errors
    ignored. As installed, this Chromium blocks every third-party cookie, SameSite=None or not
    (DevTools says `blockedReasons: UserPreferences`), as Safari does and as any browser set to
    block them does: a cookie is the frontend's credential only where the browser allows it."""
    from playwright.async_api import async_playwright

    preferences = tmp_path / "profile" / "Default" / "Preferences"
    preferences.parent.mkdir(parents=True)
    preferences.write_text(json.dumps({"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}))
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=CHROMIUM, args=CHROMIUM_ARGS, ignore_https_errors=True)
        yield context
        await context.close()


@pytest.mark.parametrize("samesite, me_status", [("none", 200), ("lax", 401)])
async def test_a_page_on_another_site_stays_signed_in_exactly_with_samesite_none(
    start_app: StartApp, profile: Any, samesite: str, me_status: int
) -> None:
    pages = tornado.web.Application([(r"/(.*)", tornado.web.StaticFileHandler, {"path": str(PAGES)})])
    # The page is https://localhost:…, the API https://127.0.0.1:…: two sites.
    async with served_over_tls(pages, host="localhost") as page_origin:
        running = await start_app(cors_origins=(page_origin,), cookie_secure="auto", cookie_samesite=samesite)
        async with served_over_tls(running.app, GuardedHTTPServer) as api:
            page = await profile.new_page()
            await page.goto(f"{page_origin}/client.html")
            steps = await page.evaluate(SIGN_IN_AND_ASK, api)
            steps.pop("id", None)
            assert steps == {"register": 201, "login": 200, "me": me_status}
            if samesite == "none":
                cookies = await profile.cookies(api)
                assert [(c["name"], c["secure"], c["sameSite"]) for c in cookies] == [("refreshToken", True, "None")]


async def test_with_samesite_none_a_page_of_another_origin_still_cannot_act_with_the_cookie(
    start_app: StartApp, profile: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pages = tornado.web.Application([(r"/(.*)", tornado.web.StaticFileHandler, {"path": str(PAGES)})])
    async with served_over_tls(pages, host="localhost") as page_origin, \
            served_over_tls(pages, host="localhost") as foreign_origin:
        running = await start_app(cors_origins=(page_origin,), cookie_secure="auto", cookie_samesite="none")
        async with served_over_tls(running.app, GuardedHTTPServer) as api:
            page = await profile.new_page()
            await page.goto(f"{page_origin}/client.html")
            user_id = (await page.evaluate(SIGN_IN_AND_ASK, api))["id"]
            assert user_id
            foreign = await profile.new_page()  # the same cookie jar: the user is signed in
            await foreign.goto(f"{foreign_origin}/foreign.html")
            assert await foreign.evaluate("([api, id]) => attack(api, id)", [api, user_id]) == {
                "read": "blocked", "write": "blocked"}
            after = await page.evaluate("(api) => call(api, 'GET', '/auth/me')", api)
    assert after["status"] == 200, "the foreign page's logout must have been refused"
    # The cookie went along (SameSite=None) and the Origin check refused the writes.
    refused = [r.getMessage() for r in caplog.records if " 403 " in r.getMessage()]
    assert any(m.startswith("POST /auth/logout 403") and "user=" + user_id in m for m in refused), refused
    assert any(m.startswith(f"POST /users/{user_id}/save-settings 403") and "user=" + user_id in m
               for m in refused), refused


async def test_a_page_on_another_site_works_with_the_access_token_alone(
    start_app: StartApp, db: AsyncDatabase, profile: Any
) -> None:
    """The defaults (SameSite=Lax, under which the cookie is lost across sites, as the test above
    shows) and a page that never sends a cookie (`credentials: "omit"`): MangaDB's accessToken as
    `Authorization: Bearer` is the whole credential. The preflight lets the page send
    Authorization, and the page can read an answer's ETag."""
    await load_catalog(db, [series(1, "Yotsuba to!")])
    pages = tornado.web.Application([(r"/(.*)", tornado.web.StaticFileHandler, {"path": str(PAGES)})])
    async with served_over_tls(pages, host="localhost") as page_origin:
        running = await start_app(cors_origins=(page_origin,))
        async with served_over_tls(running.app, GuardedHTTPServer) as api:
            page = await profile.new_page()
            await page.goto(f"{page_origin}/client.html")
            steps = await page.evaluate("(api) => signInWithBearer(api, 'reader')", api)
    assert steps == {"register": 201, "login": 200, "meWithoutToken": 401, "me": 200, "status": 200,
                     "history": [200, 1], "profileEtag": True, "logout": 200, "meAfterLogout": 401,
                     "cookieVisibleToScript": False}
