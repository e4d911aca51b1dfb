"""A real browser: Debian's headless Chromium, driven by Playwright, runs a small page served from
another origin of the same site (`http://localhost:<port>` for the page and for the API), as the
web client is deployed. It registers, logs in, saves settings, adds a status, uploads an avatar and
shows it in an <img>; a page from an origin the API does not list can neither read nor act.

The collection toggle, a GET that writes: the web client's fetch() toggles, and a link, a form or
an image aimed at it from another site (`http://127.0.0.1:<port>`: another site than `localhost`)
or from a sibling origin of the same site changes nothing, though the browser sends the cookie."""

from __future__ import annotations

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

from tests.catalog_data import load_catalog, series, volume
from tests.chromium import CHROMIUM
from tests.conftest import StartApp

pytestmark = pytest.mark.asyncio

PAGES = Path(__file__).resolve().parent / "browser"

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



async def test_a_toggle_link_form_or_image_on_another_page_changes_nothing_while_the_web_client_toggles(
    start_app: StartApp, db: AsyncDatabase, pages: tuple[Pages, Pages], browser: Any,
    caplog: pytest.LogCaptureFixture
) -> None:
    await load_catalog(db, [series(1, "Yotsuba to!", volumes=[volume(11, 1), volume(12, 2)])])
    client_pages, foreign_pages = pages
    running = await start_app(cors_origins=(client_pages.origin,), cookie_secure=False)
    api = f"http://localhost:{running.port}"
    toggle = f"{api}/volumes/toggle-collection/id"

    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{client_pages.origin}/client.html")
    login = await page.evaluate("""async (api) => {
        await call(api, "POST", "/auth/register", {username: "toggler", password: "correct horse"});
        return await call(api, "POST", "/auth/login", {username: "toggler", password: "correct horse"});
    }""", api)
    assert login["status"] == 200, login
    user_id = login["body"]["user"]["id"]

    async def from_web_client(volume_id: int) -> Any:
        answer = await page.evaluate("([api, id]) => call(api, 'GET', `/volumes/toggle-collection/id/${id}?client=1`)",
                                     [api, volume_id])
        assert answer["status"] == 200, answer
        return answer["body"]["in_collection"]

    async def owned() -> list[int]:
        listed = await page.evaluate("(api) => call(api, 'GET', '/user/collection?client=1')", api)
        return [v["id"] for v in listed["body"]["volumes"]]

    # The web client, on its allowed origin: fetch() sends its Origin, and the toggle works both ways.
    assert [await from_web_client(12), await from_web_client(11), await from_web_client(11)] == [True, True, False]
    assert await owned() == [12]

    # Another site (127.0.0.1 is not localhost's site), then a sibling origin of the API's own site
    # that CORS_ORIGINS does not list. Volume 11 is out (a toggle would add it), 12 is in.
    cross_site, same_site = foreign_pages.origin.replace("localhost", "127.0.0.1"), foreign_pages.origin
    foreign = await context.new_page()  # same browser, same cookie jar: the reader is signed in
    for origin in (cross_site, same_site):
        for control, volume_id in (("#link", 11), ("#submit", 12)):
            await foreign.goto(f"{origin}/links.html")
            await foreign.evaluate("(url) => aim(url)", f"{toggle}/{volume_id}")
            async with foreign.expect_navigation() as navigation:
                await foreign.click(control)
            answer = await navigation.value
            assert answer is not None and answer.status == 403, (origin, control, answer and answer.status)
            assert await answer.json() == {"data": "Cross-site request refused", "code": 403}
        await foreign.goto(f"{origin}/links.html")
        for volume_id in (11, 12):
            assert await foreign.evaluate("(url) => placeImage(url)", f"{toggle}/{volume_id}") == "error"
        assert await owned() == [12], origin

    # A page of the API's own origin: its fetch() says Sec-Fetch-Site: same-origin.
    own = await context.new_page()
    await own.goto(f"{api}/health")
    same_origin = await own.evaluate("""async () => {
        const response = await fetch("/volumes/toggle-collection/id/11?client=1");
        return {status: response.status, body: await response.json()};
    }""")
    assert same_origin["status"] == 200 and same_origin["body"]["in_collection"] is True, same_origin
    assert await owned() == [11, 12]

    # The links and forms did reach the API with the cookie (user=...): the guard refused them, not
    # SameSite. A cross-site image goes without the cookie (401); a same-site one with it (403).
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GET /volumes/toggle-collection/")]
    answered = sorted(line.split(" ")[2] + (" signed-in" if line.endswith(f"user={user_id}") else "") for line in lines)
    assert answered == ["200 signed-in"] * 4 + ["401"] * 2 + ["403 signed-in"] * 6, lines
    await context.close()
