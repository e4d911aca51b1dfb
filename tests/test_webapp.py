"""The reference web app (webapp/, served at `/`), in a real browser: Debian's headless Chromium
driven by Playwright, as tests/test_browser.py starts it. One test per journey of a screen, found
by the accessible names a keyboard or screen reader user meets ("Username", "Search series", the
combobox "Status"...). Each journey writes screenshots at phone and desktop width into
docs/screenshots/ (the README links them); a journey that fails fails the suite.

The page's own rules are asserted too: its Content-Security-Policy, ETags and 304 on its files,
and that nothing but the HttpOnly cookie holds the session (no token in Web Storage)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from handlers.webapp import CONTENT_SECURITY_POLICY
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import RunningApp, StartApp

pytestmark = pytest.mark.asyncio

# As tests/test_browser.py: Debian's Chromium, started with no background traffic.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "correct horse"
# Waits on a condition (Playwright's expect), never a fixed sleep; a journey takes about a second.
WAIT_MS = 10_000

if not Path(CHROMIUM).exists():
    pytest.skip(f"WEB APP TESTS SKIPPED: no Chromium at {CHROMIUM}; `make test` installs it with apt-get "
                "(package chromium) where it can. Install it to run these tests.", allow_module_level=True)

# 25 series: more than the catalog's page of 20. Berserk has volumes to own.
NAMES = ["Berserk", "Yotsuba to!", "Monster", "Vagabond", "Pluto", "Dorohedoro", "Blame!", "Mushishi", "Akira",
         "Nausicaa", "Planetes", "Homunculus", "Frieren", "Dungeon Meshi", "Kingdom", "Slam Dunk", "Vinland Saga",
         "Oyasumi Punpun", "Solanin", "Witch Hat Atelier", "Chainsaw Man", "Hellsing", "Claymore", "Trigun",
         "Bakuman"]
CATALOG = [series(1, "Berserk", volumes=[volume(11, 1), volume(12, 2)]),
           *(series(i + 1, name) for i, name in enumerate(NAMES) if i > 0)]


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest_asyncio.fixture
async def app(start_app: StartApp, db: AsyncDatabase) -> RunningApp:
    await load_catalog(db, CATALOG)
    # Plain http on 127.0.0.1, as a reader's `make run`: the cookie cannot be Secure there.
    return await start_app(cookie_secure=False)


@pytest_asyncio.fixture
async def page(browser: Any, app: RunningApp) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport=DESKTOP)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    # A CSP violation is reported on the console: the page must cause none.
    opened.on("console", lambda message: errors.append(message.text)
              if "Content Security Policy" in message.text else None)
    yield opened
    await context.close()
    assert errors == [], errors


def expect(target: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


async def screenshots(page: Any, name: str) -> None:
    """`name`-phone.png and `name`-desktop.png: the screen as it is now, at both widths."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=False)
    await page.set_viewport_size(DESKTOP)


async def error_beside(page: Any, label: str) -> str:
    """The error line that the control labelled `label` names in its aria-describedby."""
    control = page.get_by_label(label, exact=True)
    described = await control.get_attribute("aria-describedby")
    return str(await page.locator(f"#{described}").text_content())


async def sign_in(page: Any, app: RunningApp, username: str) -> None:
    await page.goto(f"{app.base_url}/#/signin")
    await page.get_by_label("Username", exact=True).fill(username)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_text(f"Signed in as {username}")).to_be_visible(timeout=WAIT_MS)


async def fetch_json(page: Any, path: str) -> Any:
    """What the API answers the page's own session (its cookie) for `path`."""
    return await page.evaluate("async (path) => (await fetch(path)).json()", path)


async def test_the_page_has_a_strict_csp_and_its_files_answer_etags_and_304(app: RunningApp) -> None:
    client = app.client()
    page = await client.get("/")
    assert page.status == 200 and page.raw.startswith(b"<!doctype html>")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-cache"
    assert b"<script>" not in page.raw and b"style=" not in page.raw  # nothing inline for the CSP to allow
    script = await client.get("/app/app.js")
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    etag = script.headers["ETag"]
    again = await client.get("/app/app.js", headers={"If-None-Match": etag})
    assert again.status == 304 and again.raw == b""
    assert (await client.get("/", headers={"If-None-Match": page.headers["ETag"]})).status == 304
    head = await client.request("HEAD", "/")
    assert (head.status, head.raw, head.headers["ETag"]) == (200, b"", page.headers["ETag"])
    refused = await client.post("/", {})
    assert (refused.status, refused.body) == (405, {"data": "Method not allowed", "code": 405})
    missing = await client.get("/app/nothing.js")
    assert (missing.status, missing.body) == (404, {"data": "Not found", "code": 404})
    outside = await client.get("/app/..%2Fserver.py")
    assert outside.status in (403, 404) and b"import" not in outside.raw
    # The API keeps its paths and its answers.
    assert (await client.get("/health")).body["status"] == "ok"
    assert (await client.get("/nothing")).body == {"data": "Not found", "code": 404}


async def test_a_reader_signs_up_signs_out_and_signs_in_and_only_the_httponly_cookie_holds_the_session(
    page: Any, app: RunningApp
) -> None:
    await page.goto(f"{app.base_url}/#/signup")
    await page.get_by_label("Username", exact=True).fill("reader")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await screenshots(page, "sign-up")
    await page.get_by_role("button", name="Sign up", exact=True).click()
    await expect(page.get_by_text("Signed in as reader")).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("heading", name="My list")).to_be_visible()

    stored = await page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]")
    assert stored == [0, 0, ""], stored
    cookies = await page.context.cookies(app.base_url)
    assert [(c["name"], c["httpOnly"]) for c in cookies] == [("refreshToken", True)]

    await page.get_by_role("button", name="Sign out", exact=True).click()
    await expect(page.get_by_role("link", name="Sign in", exact=True)).to_be_visible(timeout=WAIT_MS)
    assert await page.context.cookies(app.base_url) == []

    await sign_in(page, app, "reader")
    await screenshots(page, "signed-in")
    assert await page.evaluate("() => [localStorage.length, sessionStorage.length]") == [0, 0]
    assert (await fetch_json(page, "/auth/me"))["user"]["username"] == "reader"


async def test_the_api_words_an_error_beside_the_control_it_concerns(page: Any, app: RunningApp) -> None:
    assert (await app.client().register("taken_name")).status == 201
    await page.goto(f"{app.base_url}/#/signup")
    await page.get_by_label("Username", exact=True).fill("taken_name")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign up", exact=True).click()
    username = page.get_by_label("Username", exact=True)
    await expect(username).to_have_attribute("aria-invalid", "true", timeout=WAIT_MS)
    assert await error_beside(page, "Username") == "Username already taken"
    assert await error_beside(page, "Password") == ""

    await username.fill("fresh_name")
    await page.get_by_label("Password", exact=True).fill("short")
    await page.get_by_role("button", name="Sign up", exact=True).click()
    await expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true",
                                                                              timeout=WAIT_MS)
    assert (await error_beside(page, "Password")).startswith("Invalid password")
    assert await error_beside(page, "Username") == ""
    await screenshots(page, "sign-up-error")


async def test_a_reader_browses_and_searches_the_catalog_and_adds_rates_and_owns_a_series(
    page: Any, app: RunningApp
) -> None:
    await app.client().sign_up("collector")
    await sign_in(page, app, "collector")
    await page.goto(f"{app.base_url}/#/")
    await expect(page.get_by_text("Series 1–20 of 25")).to_be_visible(timeout=WAIT_MS)
    await screenshots(page, "catalog")
    await page.get_by_role("button", name="Next page").click()
    await expect(page.get_by_text("Series 21–25 of 25")).to_be_visible(timeout=WAIT_MS)

    search = page.get_by_role("searchbox", name="Search series")
    await search.fill("berserk")
    await search.press("Enter")
    await expect(page.get_by_text("Series 1–1 of 1")).to_be_visible(timeout=WAIT_MS)
    await page.get_by_role("link", name="Berserk").click()
    await expect(page.get_by_role("heading", name="Berserk", level=1)).to_be_visible(timeout=WAIT_MS)

    await page.get_by_role("combobox", name="Status").select_option("started")
    await page.get_by_label("Progress", exact=True).fill("2")
    await page.get_by_role("button", name="Add to list").click()
    await expect(page.get_by_role("button", name="Save status")).to_be_visible(timeout=WAIT_MS)
    status = await fetch_json(page, "/user/reading-status/id/1")
    assert (status["status"], status["progress"]) == ("started", 2)

    await page.get_by_role("combobox", name="Rating").select_option("8.5")
    await page.get_by_role("button", name="Rate").click()
    await expect(page.get_by_role("button", name="Remove rating")).to_be_visible(timeout=WAIT_MS)
    assert (await fetch_json(page, "/user/series-rating/1"))["rating"] == 8.5

    first = page.get_by_role("form", name="Volume 1")
    await first.get_by_label("Price").fill("9.99")
    await first.get_by_label("Date bought").fill("2024-05-01")
    await first.get_by_role("button", name="Mark owned").click()
    await expect(first.get_by_text("In your collection")).to_be_visible(timeout=WAIT_MS)
    owned = (await fetch_json(page, "/user/collection?client=1"))["volumes"]
    assert [(v["id"], v["collection"]["price"], v["collection"]["buy_date"]) for v in owned] == [
        (11, 9.99, "2024-05-01")]
    await screenshots(page, "series")

    # Removing goes through the GET toggle, which asks for proof that the app's own page sent it.
    await first.get_by_role("button", name="Remove from collection").click()
    await expect(first.get_by_role("button", name="Mark owned")).to_be_visible(timeout=WAIT_MS)
    assert (await fetch_json(page, "/user/collection?client=1"))["volumes"] == []


async def test_the_list_searches_orders_pages_and_edits_and_removes_a_status(page: Any, app: RunningApp) -> None:
    client = app.client()
    await client.sign_up("lister")
    statuses = ["started", "completed", "paused", "dropped", "planned"]
    for series_id in range(1, 13):
        body = {"visibility": "private", "progress_type": "volumes", "progress": series_id,
                "status": statuses[series_id % 5], "priority": "mid", "client": 1}
        assert (await client.post(f"/user/reading-status/add/{series_id}", body)).status == 200
    await sign_in(page, app, "lister")
    await page.goto(f"{app.base_url}/#/list")
    await expect(page.get_by_text("Entries 1–12 of 12")).to_be_visible(timeout=WAIT_MS)

    await page.get_by_role("combobox", name="Per page").select_option("10")
    await expect(page.get_by_text("Entries 1–10 of 12")).to_be_visible(timeout=WAIT_MS)
    await page.get_by_role("button", name="Next page").click()
    await expect(page.get_by_text("Entries 11–12 of 12")).to_be_visible(timeout=WAIT_MS)

    await page.get_by_role("combobox", name="Order").select_option("name-asc")
    await expect(page.get_by_text("Entries 1–10 of 12")).to_be_visible(timeout=WAIT_MS)
    titles = await page.locator(".entry > a").all_text_contents()
    assert titles == sorted(NAMES[:12], key=str.casefold)[:10]
    await screenshots(page, "list")

    search = page.get_by_role("searchbox", name="Search my list")
    await search.fill("mon")
    await search.press("Enter")
    await expect(page.get_by_text("Entries 1–1 of 1")).to_be_visible(timeout=WAIT_MS)
    await page.get_by_role("link", name="Monster").click()

    await page.get_by_role("combobox", name="Status").select_option("completed")
    await page.get_by_role("button", name="Save status").click()
    await expect(page.get_by_text("Status saved")).to_be_visible(timeout=WAIT_MS)
    assert (await fetch_json(page, "/user/reading-status/id/3"))["status"] == "completed"
    await page.get_by_role("button", name="Remove from list").click()
    await expect(page.get_by_role("button", name="Add to list")).to_be_visible(timeout=WAIT_MS)
    assert await fetch_json(page, "/user/reading-status/id/3") is None


async def test_the_statistics_screen_shows_the_reading_and_collection_figures(page: Any, app: RunningApp) -> None:
    client = app.client()
    await client.sign_up("counter")
    for series_id, status in ((1, "completed"), (2, "completed"), (3, "started")):
        body = {"visibility": "public", "progress_type": "volumes", "progress": 4, "status": status,
                "priority": "mid", "client": 1}
        assert (await client.post(f"/user/reading-status/add/{series_id}", body)).status == 200
    for volume_id, price, date in ((11, 9.99, "2024-01-02"), (12, 5.5, "2024-03-04")):
        added = await client.post(f"/user/collection/add/{volume_id}", {"price": price, "date": date})
        assert added.status == 200, added.body
    await sign_in(page, app, "counter")
    await page.get_by_role("link", name="Statistics").click()
    await expect(page.get_by_role("heading", name="Statistics", level=1)).to_be_visible(timeout=WAIT_MS)

    async def figure(term: str) -> str:
        return str(await page.locator(f"dt:text-is('{term}') + dd").text_content())

    assert [await figure(term) for term in ("Entries", "Completed", "Reading", "Plan to read", "Volumes read")] == [
        "3", "2", "1", "0", "12"]
    assert [await figure(term) for term in ("Volumes owned", "Series owned", "Total spent", "First bought",
                                            "Last bought")] == ["2", "1", "15.49", "2024-01-02", "2024-03-04"]
    await screenshots(page, "statistics")
