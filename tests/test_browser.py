"""A real browser: Debian's headless Chromium, driven by Playwright, runs a small page served from
another origin of the same site (`http://localhost:<port>` for the page and for the API), as the
web client is deployed. It registers, logs in, saves settings, adds a status, uploads an avatar and
shows it in an <img>; a page from an origin the API does not list can neither read nor act."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import tornado.web
from pymongo.asynchronous.database import AsyncDatabase
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from tests.catalog_data import load_catalog, series
from tests.conftest import StartApp

pytestmark = pytest.mark.asyncio

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PAGES = Path(__file__).resolve().parent / "browser"
# As the machine's own probe starts it: no background traffic, which this closed network refuses.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"BROWSER TEST SKIPPED: no Chromium at {CHROMIUM}; `make test` installs it with apt-get "
                "(package chromium) where it can. Install it to run this test.", allow_module_level=True)


class Pages:
    """Static pages on a port of their own, as `http://localhost:<port>`."""

    def __init__(self) -> None:
        self.sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.origin = f"http://localhost:{self.sockets[0].getsockname()[1]}"
        app = tornado.web.Application([(r"/(.*)", tornado.web.StaticFileHandler, {"path": str(PAGES)})])
        self.server = HTTPServer(app)
        self.server.add_sockets(self.sockets)

    async def close(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()


@pytest_asyncio.fixture
async def pages() -> AsyncIterator[tuple[Pages, Pages]]:
    client, foreign = Pages(), Pages()
    yield client, foreign
    await client.close()
    await foreign.close()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def test_the_web_client_works_from_another_origin_of_the_same_site_and_a_foreign_page_cannot(
    start_app: StartApp, db: AsyncDatabase, pages: tuple[Pages, Pages], browser: Any,
    caplog: pytest.LogCaptureFixture
) -> None:
    await load_catalog(db, [series(1, "Yotsuba to!")])
    client_pages, foreign_pages = pages
    running = await start_app(cors_origins=(client_pages.origin,), cookie_secure=False)
    api = f"http://localhost:{running.port}"

    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{client_pages.origin}/client.html")
    steps = await page.evaluate("([api, name]) => signUpAndUse(api, name)", [api, "browser_reader"])
    assert steps["register"]["status"] == 201, steps["register"]
    assert steps["login"]["status"] == 200, steps["login"]
    assert steps["settings"]["status"] == 200, steps["settings"]
    assert steps["status"]["status"] == 200, steps["status"]
    assert steps["upload"]["status"] == 200, steps["upload"]
    me = steps["me"]["body"]["user"]
    assert steps["me"]["status"] == 200 and me["settings"]["theme"] == "dark"
    assert steps["image"] == {"width": 256, "height": 256}  # the scaled avatar, decoded by the browser
    assert steps["cookieVisibleToScript"] is False  # HttpOnly
    cookies = await context.cookies(api)
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [("refreshToken", True, "Lax")]

    foreign = await context.new_page()  # same browser, same cookie jar: the user is signed in
    await foreign.goto(f"{foreign_pages.origin}/foreign.html")
    outcome = await foreign.evaluate("([api, id]) => attack(api, id)", [api, me["id"]])
    assert outcome == {"read": "blocked", "write": "blocked"}

    after = await page.evaluate("(api) => call(api, 'GET', '/auth/me')", api)
    assert after["status"] == 200, "the foreign page's logout must have been refused"
    assert after["body"]["user"]["settings"]["theme"] == "dark", "the foreign page's settings must have been refused"
    # They did reach the API, with the cookie, and the Origin check refused them.
    refused = [r.getMessage() for r in caplog.records if " 403 " in r.getMessage()]
    assert any(m.startswith("POST /auth/logout 403") and "user=" + me["id"] in m for m in refused), refused
    assert any(m.startswith(f"POST /users/{me['id']}/save-settings 403") for m in refused), refused
    await context.close()

