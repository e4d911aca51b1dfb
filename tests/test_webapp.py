"""The reference web app (webapp/, served at `/`), in a real browser: Debian's headless Chromium
driven by Playwright, as tests/test_browser.py starts it. One test per journey of a screen, found
by the accessible names a keyboard or screen reader user meets ("Username", "Search series", the
combobox "Status"...). Each journey writes screenshots at phone and desktop width into
docs/screenshots/ (the README links them); a journey that fails fails the suite.

The journeys share one app, database, catalog and browser (starting them took about 2 s a
journey); each has a browser context of its own and signs up readers of its own, so none sees
another's lists. Screenshots are the same from run to run: times and a token's secret are
covered, and a file is written only when its picture changes (beyond raster noise).

The page's own rules are asserted too: its Content-Security-Policy, ETags and 304 on its files,
and that nothing but the HttpOnly cookie holds the session (no token in Web Storage)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image, ImageChops

from handlers.webapp import CONTENT_SECURITY_POLICY
from tests.api_client import ApiClient
from tests.catalog_data import load_catalog, series, volume
from tests.chromium import CHROMIUM, launched_chromium
from tests.conftest import RunningApp, fresh_database, serve, stop_serving, suite_settings
from tests.images import image_bytes
from tests.mal_files import mal_file, manga

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple"
PERSONAL_TOKEN = re.compile(r"^tsu_pat_\S+_[A-Za-z0-9_-]{43}$")
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(mongo_uri: str) -> AsyncIterator[RunningApp]:
    """The module's app, on a database of its own with the catalog."""
    async with fresh_database(mongo_uri, []) as shared:
        await load_catalog(shared, CATALOG)
        # Plain http on 127.0.0.1, as a reader's `make run`: the cookie cannot be Secure there.
        running = serve(suite_settings().with_overrides(cookie_secure=False), shared)
        yield running
        await stop_serving([running.server])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_browser() -> AsyncIterator[Any]:
    async with launched_chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def page(module_browser: Any, app: RunningApp) -> AsyncIterator[Any]:
    # A fixed language and time zone: the screenshots show dates as they did last time.
    context = await module_browser.new_context(viewport=DESKTOP, locale="en-US", timezone_id="UTC",
                                               reduced_motion="reduce")
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


# What differs from one run to the next, covered in the screenshots (the app gives each time the
# same width): the times and dates the API answers, and a personal token's secret.
VARYING = "time, code.token"
MASK_COLOUR = "#cfd6e2"  # the page's own line colour: a grey bar where the text was


async def screenshots(page: Any, name: str) -> None:
    """`name`-phone.png and `name`-desktop.png: the screen as it is now, at both widths. A file is
    written only when the picture changes, so a run leaves the working tree as it found it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        # At the new width the page is laid out anew: what has focus (what the journey just did,
        # or the notice that says so) is brought back into view.
        await page.evaluate("() => document.activeElement?.scrollIntoView({block: 'center'})")
        shot = await page.screenshot(full_page=False, animations="disabled", caret="hide",
                                     mask=[page.locator(VARYING)], mask_color=MASK_COLOUR)
        path = SCREENSHOTS / f"{name}-{width}.png"
        if not path.exists() or not same_picture(path.read_bytes(), shot):
            path.write_bytes(shot)
    await page.set_viewport_size(DESKTOP)


# Chromium's raster differs by a level or two of a colour channel from one run to the next at the
# edge of a rounded corner (seen: 12 pixels of one screenshot, by 1): no one sees that; a change of
# the page changes pixels by far more.
RASTER_NOISE = 4


def same_picture(stored: bytes, shot: bytes) -> bool:
    """Whether two PNGs show the same picture, but for raster noise."""
    if stored == shot:
        return True
    with Image.open(io.BytesIO(stored)) as old, Image.open(io.BytesIO(shot)) as new:
        if old.size != new.size:
            return False
        extremes = ImageChops.difference(old.convert("RGB"), new.convert("RGB")).getextrema()
    return all(high <= RASTER_NOISE for _, high in extremes)


async def error_beside(scope: Any, label: str) -> str:
    """The error line that the control labelled `label` (in a page, or one form of it) names in its
    aria-describedby."""
    control = scope.get_by_label(label, exact=True)
    described = await control.get_attribute("aria-describedby")
    return str(await scope.locator(f"#{described}").text_content())


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


async def test_a_reader_browses_and_searches_the_catalog_adds_rates_and_owns_a_series_and_edits_its_price(
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

    # An owned volume's price and date are changed where they were entered; the API's refusal of a
    # price is said beside it.
    await expect(first.get_by_label("Price")).to_have_value("9.99")
    await expect(first.get_by_label("Date bought")).to_have_value("2024-05-01")
    await first.get_by_label("Price").fill("12.555")
    await first.get_by_role("button", name="Save price and date").click()
    await expect(first.get_by_label("Price")).to_have_attribute("aria-invalid", "true", timeout=WAIT_MS)
    assert await error_beside(first, "Price") == "Invalid parameters: must have at most 2 decimals"
    await first.get_by_label("Price").fill("12.5")
    await first.get_by_label("Date bought").fill("2024-06-02")
    await first.get_by_role("button", name="Save price and date").click()
    await expect(page.get_by_text("Volume 1: price and date saved")).to_be_visible(timeout=WAIT_MS)
    await expect(first.get_by_label("Price")).to_have_value("12.5")
    item = (await fetch_json(page, "/user/collection?client=1"))["volumes"][0]["collection"]
    assert (item["price"], item["buy_date"]) == (12.5, "2024-06-02")
    await screenshots(page, "series")

    await first.get_by_role("button", name="Remove from collection").click()
    await expect(first.get_by_role("button", name="Mark owned")).to_be_visible(timeout=WAIT_MS)
    assert (await fetch_json(page, "/user/collection?client=1"))["volumes"] == []


async def test_the_list_searches_filters_by_status_orders_pages_and_edits_and_removes_a_status(page: Any, app: RunningApp) -> None:
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

    # One of the five statuses: Yotsuba to!, Blame! and Homunculus (2, 7, 12) are paused.
    await page.get_by_role("combobox", name="Show").select_option("paused")
    await expect(page.get_by_text("Entries 1–3 of 3")).to_be_visible(timeout=WAIT_MS)
    assert await page.locator(".entry > a").all_text_contents() == ["Blame!", "Homunculus", "Yotsuba to!"]
    assert set(await page.locator(".entry .badge").all_text_contents()) == {"Paused"}
    await expect(page).to_have_url(re.compile(r"status=paused"))
    # Kept in the address like the order: a reload shows the same filter.
    await page.reload()
    await expect(page.get_by_role("combobox", name="Show")).to_have_value("paused", timeout=WAIT_MS)
    await expect(page.get_by_text("Entries 1–3 of 3")).to_be_visible()
    # A status and a search combine: Monster and Mushishi (3, 8) are dropped, one has "mon".
    await page.get_by_role("combobox", name="Show").select_option("dropped")
    await expect(page.get_by_text("Entries 1–2 of 2")).to_be_visible(timeout=WAIT_MS)

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


async def add_status(client: ApiClient, series_id: int, visibility: str, status: str = "started") -> None:
    body = {"visibility": visibility, "progress_type": "volumes", "progress": 3, "status": status,
            "priority": "mid", "client": 1}
    assert (await client.post(f"/user/reading-status/add/{series_id}", body)).status == 200


async def test_the_profile_uploads_and_removes_an_image_and_a_saved_setting_outlives_a_reload(
    page: Any, app: RunningApp, tmp_path: Path
) -> None:
    await app.client().sign_up("pictured")
    await sign_in(page, app, "pictured")
    await page.get_by_role("link", name="Profile", exact=True).click()
    await expect(page.get_by_role("heading", name="Profile", level=1)).to_be_visible(timeout=WAIT_MS)

    # A file that is no image: the API's words, beside the file input.
    (tmp_path / "notes.txt").write_text("not a picture")
    await page.get_by_label("Profile image", exact=True).set_input_files(str(tmp_path / "notes.txt"))
    await page.get_by_role("button", name="Upload image").click()
    await expect(page.get_by_label("Profile image", exact=True)).to_have_attribute("aria-invalid", "true",
                                                                                  timeout=WAIT_MS)
    assert await error_beside(page, "Profile image") == "Image must be JPEG, PNG, WebP or GIF"

    (tmp_path / "me.png").write_bytes(image_bytes("PNG", (64, 64), "teal"))
    await page.get_by_label("Profile image", exact=True).set_input_files(str(tmp_path / "me.png"))
    await page.get_by_role("button", name="Upload image").click()
    avatar = page.get_by_role("img", name="Your profile image")
    # Loaded, not just placed: the service's 256x256 crop, decoded by the browser.
    await expect(avatar).to_have_js_property("naturalWidth", 256, timeout=WAIT_MS)
    assert (await fetch_json(page, "/auth/me"))["user"]["profile_image"] == await avatar.get_attribute("src")

    await page.get_by_role("combobox", name="Theme").select_option("dark")
    await page.get_by_label("Show the drag indicator").uncheck()
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.get_by_text("Settings saved")).to_be_visible(timeout=WAIT_MS)
    await screenshots(page, "profile")
    await page.reload()
    await expect(page.get_by_role("combobox", name="Theme")).to_have_value("dark", timeout=WAIT_MS)
    await expect(page.get_by_label("Show the drag indicator")).not_to_be_checked()
    settings = (await fetch_json(page, "/auth/me"))["user"]["settings"]
    assert (settings["theme"], settings["show-drag-indicator"], settings["view-mode"]) == ("dark", False, "column")

    await page.get_by_role("button", name="Remove image").click()
    await expect(page.get_by_text("No profile image yet.")).to_be_visible(timeout=WAIT_MS)
    assert (await fetch_json(page, "/auth/me"))["user"]["profile_image"] is None


async def profile_beside_another_session(page: Any, app: RunningApp, username: str) -> ApiClient:
    """A new reader signed in on another device (the client answered) and on the page, which shows
    their profile."""
    elsewhere = app.client()
    await elsewhere.sign_up(username)
    await sign_in(page, app, username)
    await page.goto(f"{app.base_url}/#/profile")
    await expect(page.get_by_role("heading", name="Profile", level=1)).to_be_visible(timeout=WAIT_MS)
    return elsewhere


async def test_a_personal_token_is_shown_once_works_and_is_revoked_and_another_session_is_signed_out(
    page: Any, app: RunningApp
) -> None:
    elsewhere = await profile_beside_another_session(page, app, "tokened")

    await page.get_by_role("button", name="Create token").click()
    await expect(page.get_by_label("Token name", exact=True)).to_have_attribute("aria-invalid", "true",
                                                                                timeout=WAIT_MS)
    assert (await error_beside(page, "Token name")).startswith("Invalid parameters")

    await page.get_by_label("Token name", exact=True).fill("reader app")
    await page.get_by_label("Write (includes read)").check()
    await page.get_by_label("Days until it expires", exact=True).fill("7")
    await page.get_by_role("button", name="Create token").click()
    secret = page.locator("code.token")
    await expect(secret).to_have_text(PERSONAL_TOKEN, timeout=WAIT_MS)
    await expect(page.get_by_text("it is shown only once")).to_be_visible()
    token = str(await secret.text_content())
    listed = (await fetch_json(page, "/auth/tokens"))["tokens"]
    assert [(t["name"], t["scopes"]) for t in listed] == [("reader app", ["read", "write"])]
    assert await page.evaluate("() => [localStorage.length, sessionStorage.length]") == [0, 0]
    assert (await app.client().get("/user/me", headers={"Authorization": f"Bearer {token}"})).status == 200

    sessions = page.get_by_role("region", name="Where you are signed in")
    await expect(sessions.get_by_role("listitem")).to_have_count(2)
    await expect(sessions.get_by_text("This session", exact=True)).to_have_count(1)
    await screenshots(page, "profile-tokens")

    # Another section's action leaves the secret where it is; a reload shows it nowhere.
    await sessions.get_by_role("button", name="Sign out this session").click()
    await expect(page.get_by_text("Session signed out")).to_be_visible(timeout=WAIT_MS)
    await expect(sessions.get_by_role("listitem")).to_have_count(1)
    assert (await elsewhere.get("/user/me")).status == 401
    await expect(secret).to_have_text(token)
    await page.reload()
    await expect(page.get_by_role("button", name="Revoke reader app")).to_be_visible(timeout=WAIT_MS)
    assert token not in await page.content()

    await page.get_by_role("button", name="Revoke reader app").click()
    await expect(page.get_by_text("No personal tokens.")).to_be_visible(timeout=WAIT_MS)
    assert (await app.client().get("/user/me", headers={"Authorization": f"Bearer {token}"})).status == 401


async def test_changing_the_password_ends_the_other_sessions_and_words_each_refusal_beside_its_field(
    page: Any, app: RunningApp
) -> None:
    elsewhere = await profile_beside_another_session(page, app, "changer")
    sessions = page.get_by_role("region", name="Where you are signed in")
    await expect(sessions.get_by_role("listitem")).to_have_count(2, timeout=WAIT_MS)
    section = page.get_by_role("region", name="Change password")
    current, new = section.get_by_label("Current password"), section.get_by_label("New password")
    change = section.get_by_role("button", name="Change password")

    await current.fill("not the password")
    await new.fill(NEW_PASSWORD)
    await change.click()
    await expect(current).to_have_attribute("aria-invalid", "true", timeout=WAIT_MS)
    assert (await error_beside(page, "Current password"), await error_beside(page, "New password")) == (
        "Invalid credentials", "")
    await current.fill(PASSWORD)
    await new.fill("short")
    await change.click()
    await expect(new).to_have_attribute("aria-invalid", "true", timeout=WAIT_MS)
    assert (await error_beside(page, "New password")).startswith("Invalid password")
    assert await error_beside(page, "Current password") == ""

    await new.fill(NEW_PASSWORD)
    await change.click()
    await expect(page.get_by_text("Password changed. Your other sessions are signed out.")).to_be_visible(
        timeout=WAIT_MS)
    await expect(sessions.get_by_role("listitem")).to_have_count(1)
    await expect(current).to_have_value("")
    await screenshots(page, "profile-password")
    assert (await elsewhere.get("/user/me")).status == 401
    assert (await fetch_json(page, "/auth/me"))["user"]["username"] == "changer"  # this session stays
    assert (await app.client().login("changer", NEW_PASSWORD)).status == 200
    assert (await app.client().login("changer", PASSWORD)).status == 401


async def end_the_pages_session(elsewhere: ApiClient) -> None:
    """Another device of the same reader signs out the page's session, as the profile does."""
    others = [s for s in (await elsewhere.get("/auth/sessions")).body["sessions"] if not s["current"]]
    assert len(others) == 1, others
    assert (await elsewhere.delete(f"/auth/sessions/{others[0]['id']}")).status == 200


async def test_a_session_ended_elsewhere_shows_the_app_signed_out_and_the_export_saves_no_401(
    page: Any, app: RunningApp
) -> None:
    elsewhere = await profile_beside_another_session(page, app, "ended")
    await end_the_pages_session(elsewhere)
    # The export link is followed only once the session holds: else the browser would save the
    # API's 401 as the account file.
    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    await page.get_by_role("link", name="Export my account").click()
    await expect(page.get_by_text("Your session has ended. Sign in again to go on.")).to_be_visible(
        timeout=WAIT_MS)
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Sign in", exact=True)).to_be_visible()
    await expect(nav.get_by_text("Signed in as")).to_have_count(0)
    await expect(page.get_by_text("to see your profile")).to_be_visible()
    assert downloads == []
    await screenshots(page, "session-ended")

    # Signed in again, the link downloads; ended again, any call that answers 401 signs the app out.
    await sign_in(page, app, "ended")
    await page.goto(f"{app.base_url}/#/profile")
    await expect(page.get_by_role("heading", name="Profile", level=1)).to_be_visible(timeout=WAIT_MS)
    async with page.expect_download() as started:
        await page.get_by_role("link", name="Export my account").click()
    assert (await started.value).suggested_filename.startswith("tsundoku-ended-")
    await end_the_pages_session(elsewhere)
    await nav.get_by_role("link", name="My list").click()
    await expect(page.get_by_text("Your session has ended. Sign in again to go on.")).to_be_visible(
        timeout=WAIT_MS)
    await expect(nav.get_by_text("Signed in as")).to_have_count(0)
    await expect(nav.get_by_role("link", name="Sign in", exact=True)).to_be_visible()
    await expect(page.get_by_text("to see your list")).to_be_visible()


async def test_the_account_file_downloads_and_deleting_the_account_asks_the_password_and_signs_out(
    page: Any, app: RunningApp
) -> None:
    client = app.client()
    await client.sign_up("leaving")
    await add_status(client, 1, "private")
    await sign_in(page, app, "leaving")
    await page.goto(f"{app.base_url}/#/profile")
    async with page.expect_download() as started:
        await page.get_by_role("link", name="Export my account").click()
    download = await started.value
    assert download.suggested_filename.startswith("tsundoku-leaving-")
    assert download.suggested_filename.endswith(".json")
    exported = json.loads(Path(await download.path()).read_text())
    assert (exported["format"], exported["profile"]["username"]) == ("tsundoku-export", "leaving")
    assert [s["series_id"] for s in exported["reading_statuses"]] == [1]

    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Delete my account").click()
    await expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true",
                                                                              timeout=WAIT_MS)
    assert await error_beside(page, "Password") == "Invalid credentials"
    await screenshots(page, "profile-delete")

    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Delete my account").click()
    await expect(page.get_by_text("Account deleted")).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    assert await page.context.cookies(app.base_url) == []
    await page.get_by_label("Username", exact=True).fill("leaving")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.locator(".form-error")).to_have_text("Invalid credentials", timeout=WAIT_MS)


async def test_a_myanimelist_file_is_checked_imported_and_undone(page: Any, app: RunningApp, tmp_path: Path) -> None:
    await app.client().sign_up("importer")
    file = tmp_path / "mangalist.xml"
    file.write_bytes(mal_file([
        manga(manga_title="Berserk", my_status="Reading", my_read_volumes=2),
        manga(manga_title="Monster", my_status="Completed", my_read_volumes=18, my_score=9),
        manga(manga_title="A Title Nobody Has", my_status="Plan to Read"),
    ]))
    await sign_in(page, app, "importer")
    await page.get_by_role("link", name="Import", exact=True).click()
    await expect(page.get_by_role("heading", name="Import", level=1)).to_be_visible(timeout=WAIT_MS)
    await page.get_by_label("MyAnimeList export", exact=True).set_input_files(str(file))
    await page.get_by_role("button", name="Check", exact=True).click()
    await expect(page.get_by_role("heading", name="What the import would do")).to_be_visible(timeout=WAIT_MS)

    async def figure(term: str) -> str:
        return str(await page.locator(f"dt:text-is('{term}') + dd").text_content())

    assert [await figure(term) for term in ("Entries in the file", "To add", "To update", "Not imported")] == [
        "3", "2", "0", "1"]
    await expect(page.get_by_text("A Title Nobody Has")).to_be_visible()
    await expect(page.get_by_text("no series in the catalog has this title")).to_be_visible()
    assert (await fetch_json(page, "/user/reading-history"))["max"] == 0  # the check wrote nothing
    await screenshots(page, "import")

    await page.get_by_role("button", name="Import", exact=True).click()
    await expect(page.get_by_text("Imported: 2 added, 0 updated")).to_be_visible(timeout=WAIT_MS)
    await page.get_by_role("link", name="My list").click()
    await expect(page.get_by_text("Entries 1–2 of 2")).to_be_visible(timeout=WAIT_MS)
    assert sorted(await page.locator(".entry > a").all_text_contents()) == ["Berserk", "Monster"]

    await page.go_back()
    await page.get_by_role("button", name="Undo import").click()
    await expect(page.get_by_text("Import undone: 2 removed, 0 restored")).to_be_visible(timeout=WAIT_MS)
    assert (await fetch_json(page, "/user/reading-history"))["max"] == 0
    await expect(page.get_by_role("button", name="Undo import")).to_have_count(0)


async def test_an_account_file_exported_from_one_account_is_checked_and_imported_into_another(
    page: Any, app: RunningApp, tmp_path: Path
) -> None:
    giver = app.client()
    await giver.sign_up("giver")
    await add_status(giver, 1, "private", "completed")
    await add_status(giver, 2, "public")
    assert (await giver.post("/user/collection/add/11", {"price": 9.99})).status == 200
    exported = await giver.get("/user/export")
    assert exported.status == 200
    (tmp_path / "tsundoku-giver.json").write_bytes(exported.raw)
    (tmp_path / "other.json").write_text('{\n "format": "something else"\n}\n')
    await app.client().sign_up("taker")
    await sign_in(page, app, "taker")
    await page.goto(f"{app.base_url}/#/import")
    card = page.get_by_role("form", name="From a Tsundoku account file")
    file = card.get_by_label("Account file", exact=True)

    await file.set_input_files(str(tmp_path / "other.json"))
    await card.get_by_role("button", name="Check account file").click()
    await expect(file).to_have_attribute("aria-invalid", "true", timeout=WAIT_MS)
    assert (await error_beside(card, "Account file")).startswith("Invalid account file at line 2")

    await file.set_input_files(str(tmp_path / "tsundoku-giver.json"))
    await card.get_by_role("button", name="Check account file").click()
    await expect(card.get_by_role("heading", name="What the import would do")).to_be_visible(timeout=WAIT_MS)

    async def counts(row: str) -> list[str]:
        return await card.locator("tr", has=page.get_by_role("rowheader", name=row)).locator("td").all_text_contents()

    # To add, left as they are, unchanged (nothing skipped: no column for it).
    assert [await counts(row) for row in ("Reading list", "Collection")] == [["2", "0", "0"], ["1", "0", "0"]]
    assert (await fetch_json(page, "/user/reading-history"))["max"] == 0  # the check wrote nothing
    await screenshots(page, "import-account-file")

    await card.get_by_role("button", name="Import account file").click()
    await expect(page.get_by_text("Account file imported: 3 added, 0 replaced")).to_be_visible(timeout=WAIT_MS)
    await page.get_by_role("link", name="My list").click()
    await expect(page.get_by_text("Entries 1–2 of 2")).to_be_visible(timeout=WAIT_MS)
    assert sorted(await page.locator(".entry > a").all_text_contents()) == ["Berserk", "Yotsuba to!"]
    owned = (await fetch_json(page, "/user/collection?client=1"))["volumes"]
    assert [(v["id"], v["collection"]["price"]) for v in owned] == [(11, 9.99)]


async def test_a_public_page_shows_public_entries_and_words_what_the_api_refuses(page: Any, app: RunningApp) -> None:
    sharer = app.client()
    user = await sharer.sign_up("sharer")
    await add_status(sharer, 1, "public", "completed")
    await add_status(sharer, 2, "public")
    await add_status(sharer, 3, "private")  # Monster: on no public page
    assert (await sharer.post(f"/users/{user['id']}/save-settings", {"collection-visibility": "public"})).status == 200
    assert (await sharer.post("/user/collection/add/11", {"price": 9.99})).status == 200
    keeper = app.client()
    await keeper.sign_up("keeper")
    await add_status(keeper, 4, "private")

    await sign_in(page, app, "sharer")
    await page.goto(f"{app.base_url}/#/profile")
    await page.get_by_role("link", name="Your public page").click()
    await expect(page.get_by_role("heading", name="sharer", level=1)).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_text("Entries 1–2 of 2")).to_be_visible()
    assert sorted(await page.locator(".entry > a").all_text_contents()) == ["Berserk", "Yotsuba to!"]
    assert await page.locator("dt:text-is('Public entries') + dd").text_content() == "2"
    await expect(page.get_by_role("heading", name="Collection (1 volume)")).to_be_visible()
    assert "9.99" not in await page.content()  # never a price
    await screenshots(page, "public-profile")

    await page.goto(f"{app.base_url}/#/users/keeper")
    await expect(page.get_by_role("heading", name="keeper", level=1)).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_text("No entries")).to_be_visible()
    collection = page.get_by_role("region", name="Collection")
    await expect(collection.locator("[data-answer=collection]")).to_have_text("This collection is private")

    await page.goto(f"{app.base_url}/#/users/nobody_here")
    await expect(page.get_by_role("alert")).to_have_text("User not found", timeout=WAIT_MS)


async def test_the_readers_directory_searches_orders_and_pages_and_links_each_public_page(
    page: Any, app: RunningApp
) -> None:
    client = app.client()
    names = [f"shelf_{letter}" for letter in "abcdefghijkl"]
    for name in names:
        assert (await client.register(name)).status == 201
    await page.goto(f"{app.base_url}/#/")  # no one signed in: the directory is public
    await page.get_by_role("link", name="Readers").click()
    await expect(page.get_by_role("heading", name="Readers", level=1)).to_be_visible(timeout=WAIT_MS)
    search = page.get_by_role("searchbox", name="Search readers")
    await search.fill("SHELF_")  # the beginning of a name, in any case
    await search.press("Enter")
    await expect(page.get_by_text("Readers 1–12 of 12")).to_be_visible(timeout=WAIT_MS)
    await page.get_by_role("combobox", name="Per page").select_option("10")
    await expect(page.get_by_text("Readers 1–10 of 12")).to_be_visible(timeout=WAIT_MS)
    readers = page.locator(".person > a")
    assert await readers.all_text_contents() == names[:10]
    await screenshots(page, "readers")
    await page.get_by_role("button", name="Next page").click()
    await expect(page.get_by_text("Readers 11–12 of 12")).to_be_visible(timeout=WAIT_MS)
    assert await readers.all_text_contents() == names[10:]

    await page.get_by_role("combobox", name="Order").select_option("name-desc")
    await expect(page.get_by_text("Readers 1–10 of 12")).to_be_visible(timeout=WAIT_MS)
    assert await readers.all_text_contents() == names[::-1][:10]
    await page.get_by_role("link", name="shelf_l", exact=True).click()
    await expect(page.get_by_role("heading", name="shelf_l", level=1)).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_text("No entries")).to_be_visible()
    await page.get_by_role("link", name="All readers").click()
    await expect(page.get_by_role("heading", name="Readers", level=1)).to_be_visible(timeout=WAIT_MS)


# Every control the page draws, that is rendered, with no visible label naming it: an input,
# select or textarea needs a <label> of its own with text that is on screen; a button, text of its
# own. What a screen reader announces is then what a sighted reader reads.
UNLABELLED = """() => {
    const shown = (element) => element.getClientRects().length > 0;
    const offenders = [];
    let checked = 0;
    for (const control of document.querySelectorAll("input, select, textarea, button")) {
        if (control.type === "hidden" || !shown(control) && !control.labels?.length) continue;
        checked += 1;
        const label = control.tagName === "BUTTON"
            ? control.textContent.trim()
            : [...(control.labels || [])].filter(shown).map((l) => l.textContent.trim()).join(" ");
        if (!label) offenders.push(control.outerHTML.slice(0, 120));
    }
    return checked > 0 ? offenders : ["no control at all"];
}"""


async def tab_to(page: Any, control: Any) -> None:
    """Presses Tab, as a keyboard user does, until `control` has the focus (at most 60 times)."""
    for _ in range(60):
        if await control.evaluate("(element) => element === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {control}")


async def test_a_keyboard_alone_signs_in_searches_and_adds_a_series_and_every_control_has_a_visible_label(
    page: Any, app: RunningApp
) -> None:
    await app.client().sign_up("keyboarder")
    await page.goto(f"{app.base_url}/#/signin")
    await expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible(timeout=WAIT_MS)
    assert await page.evaluate(UNLABELLED) == []
    await tab_to(page, page.get_by_label("Username", exact=True))
    await page.keyboard.type("keyboarder")
    await tab_to(page, page.get_by_label("Password", exact=True))
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Signed in as keyboarder")).to_be_visible(timeout=WAIT_MS)

    await page.goto(f"{app.base_url}/#/")
    await expect(page.get_by_text("Series 1–20 of 25")).to_be_visible(timeout=WAIT_MS)
    await tab_to(page, page.get_by_role("searchbox", name="Search series"))
    await page.keyboard.type("berserk")
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Series 1–1 of 1")).to_be_visible(timeout=WAIT_MS)
    await tab_to(page, page.get_by_role("link", name="Berserk"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Berserk", level=1)).to_be_visible(timeout=WAIT_MS)
    series_page = page.url
    await tab_to(page, page.get_by_role("combobox", name="Status"))
    before = await page.get_by_role("combobox", name="Status").input_value()
    await page.keyboard.press("ArrowUp")  # a closed select takes the option above ("planned" is last)
    chosen = await page.get_by_role("combobox", name="Status").input_value()
    assert chosen != before
    await tab_to(page, page.get_by_role("button", name="Add to list"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Save status")).to_be_visible(timeout=WAIT_MS)
    assert (await fetch_json(page, "/user/reading-status/id/1"))["status"] == chosen

    # Every screen, signed in and out: no control without a visible label.
    for screen, heading in (("#/", "Catalog"), (series_page, "Berserk"), ("#/list", "My list"),
                            ("#/stats", "Statistics"), ("#/profile", "Profile"), ("#/import", "Import"),
                            ("#/users", "Readers"), ("#/users/keyboarder", "keyboarder")):
        await page.goto(screen if screen.startswith("http") else f"{app.base_url}/{screen}")
        await page.reload(wait_until="networkidle")  # every section of the screen drawn
        await expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible(timeout=WAIT_MS)
        assert await page.evaluate(UNLABELLED) == [], screen
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await expect(page.get_by_role("link", name="Sign in", exact=True)).to_be_visible(timeout=WAIT_MS)
    await page.goto(f"{app.base_url}/#/signup")
    await expect(page.get_by_role("button", name="Sign up", exact=True)).to_be_visible(timeout=WAIT_MS)
    assert await page.evaluate(UNLABELLED) == []
