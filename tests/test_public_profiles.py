"""GET /users/{slug}, /users/{slug}/reading-history, /users/{slug}/collection: private entries
invisible in every way, banned users gone, caching, the 18+ rule, the shared collection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import CommandCounter, RunningApp
from tests.roles import set_roles

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "Yotsuba to!", volumes=[volume(11, 1)]),
    series(2, "Berserk", type="Manga", volumes=[volume(21, 1)]),
    series(3, "Secret Title", type="Light Novel", volumes=[volume(31, 1)]),
    series(4, "Adult Series", nsfw18=1, volumes=[volume(41, 1)]),
]
NOT_FOUND = {"data": "User not found", "code": 404}


@pytest_asyncio.fixture
async def alice(running: RunningApp, api: ApiClient, db: AsyncDatabase) -> dict[str, Any]:
    await load_catalog(db, CATALOG)
    user = await api.sign_up("Alice")
    # Series 4 is 18+: Alice shows 18+ while she adds it (no one else can), then no longer does, so
    # that her own view of her public page is anyone's.
    await show_18_plus(db, user["id"], True)
    for series_id, fields in ((1, {"status": "completed", "score": 8, "end": "2024-05-01", "notes": "mine"}),
                              (2, {"status": "started", "progressType": "chapters", "progress": 40}),
                              (3, {"status": "completed", "visibility": "private", "score": 2, "end": "2020",
                                   "notes": "hidden"}),
                              (4, {"status": "started", "score": 10})):
        reply = await api.post(f"/user/reading-status/add/{series_id}", {**STATUS, **fields})
        assert reply.status == 200, reply.body
    for volume_id in (11, 31, 41):
        assert (await api.post(f"/user/collection/add/{volume_id}", {"price": 12.5, "date": "2024-01-02"})).status == 200
    await show_18_plus(db, user["id"], False)
    return user


async def show_18_plus(db: AsyncDatabase, user_id: str, shown: bool) -> None:
    mode = "settings.nsfw.show-nsfw-18" if shown else "settings.nsfw.hide-nsfw"
    await db.users.update_one({"_id": user_id}, {"$set": {"age_verified": shown, "settings.nsfw-mode": mode}})


async def test_private_entries_are_invisible_in_every_way(running: RunningApp, api: ApiClient, alice: dict) -> None:
    anyone = running.client()
    profile = await anyone.get("/users/alice")
    assert profile.status == 200, profile.body
    assert profile.body["user"] == {"id": alice["id"], "username": "Alice", "slug": "alice", "profile_image": None,
                                    "registered": alice["registered"]}
    stats = profile.body["stats"]
    # Series 3 is private, series 4 is 18+: neither counts for an anonymous viewer.
    assert (stats["entries"], stats["by_status"]["completed"], stats["mean_score"], stats["by_type"],
            stats["completed_by_year"]) == (2, 1, 8.0, {"Manga": 2}, {"2024": 1})
    assert "collection" not in stats
    history = await anyone.get("/users/alice/reading-history?order=name-asc")
    assert (history.body["max"], [s["id"] for s in history.body["series"]]) == (2, [2, 1])
    assert all("notes" not in s["reading-history"] for s in history.body["series"])
    searched = await anyone.get("/users/alice/reading-history?search=secret")
    assert (searched.status, searched.body["max"], searched.body["series"]) == (200, 0, [])
    assert b"hidden" not in history.raw and b"Secret" not in history.raw and b"mine" not in history.raw
    # The owner's own list still has everything.
    assert (await api.get("/user/reading-history")).body["max"] == 4


async def test_a_public_list_takes_the_status_filter_of_the_owners_list(running: RunningApp, alice: dict) -> None:
    anyone = running.client()
    completed = (await anyone.get("/users/alice/reading-history?status=completed")).body
    # Series 3 is completed too, but private: neither shown nor counted.
    assert ([s["id"] for s in completed["series"]], completed["max"]) == ([1], 1)
    assert (await anyone.get("/users/alice/reading-history?status=dropped")).body["max"] == 0
    refused = await anyone.get("/users/alice/reading-history?status=secret")
    assert (refused.status, [e["field"] for e in refused.body["errors"]]) == (400, ["status"])


async def test_unknown_and_banned_users_are_404_and_admins_see_no_more(running: RunningApp, api: ApiClient,
                                                                       db: AsyncDatabase, alice: dict) -> None:
    anyone = running.client()
    for path in ("/users/nobody", "/users/nobody/reading-history", "/users/nobody/collection?client=1",
                 "/users/" + "x" * 100):
        reply = await anyone.get(path)
        assert (reply.status, reply.body) == (404, NOT_FOUND), path
    anonymous_view = (await anyone.get("/users/alice/reading-history")).body
    admin = running.client()
    root = await admin.sign_up("root")
    await db.users.update_one({"_id": root["id"]}, {"$set": {"roles": ["admin"], "age_verified": True}})
    assert (await admin.get("/users/alice/reading-history")).body == anonymous_view
    assert (await api.get("/users/alice/reading-history")).body == anonymous_view  # the owner too, here
    # Any username has a profile at its lower-cased name, dots and all.
    dotted = running.client()
    await dotted.sign_up("J.R-R_T")
    assert (await anyone.get("/users/j.r-r_t")).body["user"]["username"] == "J.R-R_T"
    assert (await anyone.get("/users/J.R-R_T")).status == 200
    await set_roles(db, alice["id"], "banned")
    for path in ("/users/alice", "/users/alice/reading-history", "/users/alice/collection?client=1"):
        assert (await anyone.get(path)).body == NOT_FOUND, path  # a banned user has no profile to be private on


async def test_answers_are_cacheable_and_the_tag_follows_public_changes_only(running: RunningApp, api: ApiClient,
                                                                             alice: dict) -> None:
    anyone = running.client()
    first = await anyone.get("/users/alice")
    assert first.headers["Cache-Control"] == "public, max-age=60"
    tag = first.headers["ETag"]
    again = await anyone.request("GET", "/users/alice", headers={"If-None-Match": tag})
    assert (again.status, again.raw) == (304, b"")
    # A private entry changes: nothing public changed, the tag stays.
    assert (await api.post("/user/reading-status/update/3", {**STATUS, "visibility": "private",
                                                             "progress": 99})).status == 200
    assert (await anyone.get("/users/alice")).headers["ETag"] == tag
    # A public one changes: a new tag, and the old one no longer gives 304.
    assert (await api.post("/user/reading-status/update/2", {**STATUS, "progress": 41})).status == 200
    changed = await anyone.request("GET", "/users/alice", headers={"If-None-Match": tag})
    assert changed.status == 200 and changed.headers["ETag"] != tag


async def test_18_plus_series_only_for_age_verified_viewers_who_show_them(running: RunningApp, db: AsyncDatabase,
                                                                         alice: dict) -> None:
    viewer = running.client()
    bob = await viewer.sign_up("bob")
    hidden = (await viewer.get("/users/alice/reading-history")).body
    assert 4 not in [s["id"] for s in hidden["series"]] and hidden["max"] == 2
    await db.users.update_one({"_id": bob["id"]}, {"$set": {"age_verified": True,
                                                             "settings.nsfw-mode": "settings.nsfw.show-nsfw-18"}})
    shown = await viewer.get("/users/alice/reading-history")
    assert 4 in [s["id"] for s in shown.body["series"]] and shown.body["max"] == 3
    assert shown.headers["Cache-Control"] == "private, max-age=60"
    assert (await viewer.get("/users/alice")).body["stats"]["entries"] == 3
    anyone = running.client()
    assert (await anyone.get("/users/alice")).body["stats"]["entries"] == 2


async def test_the_collection_is_shown_only_when_shared_and_never_with_prices(running: RunningApp, api: ApiClient,
                                                                             alice: dict) -> None:
    anyone = running.client()
    # Her profile tells that Alice exists: a collection she keeps to herself says so, to anyone
    # (herself included, as these routes show what anyone sees).
    for viewer in (anyone, api):
        kept = await viewer.get("/users/alice/collection?client=1")
        assert (kept.status, kept.body) == (403, {"data": "This collection is private", "code": 403})
    assert (await api.post(f"/users/{alice['id']}/save-settings", {"collection-visibility": "public"})).status == 200
    shared = await anyone.get("/users/alice/collection?client=1")
    assert shared.status == 200, shared.body
    # Volume 41 belongs to an 18+ series: not for an anonymous viewer.
    assert (shared.body["max"], [v["id"] for v in shared.body["volumes"]]) == (2, [31, 11])
    assert shared.body["volumes"][0]["collection"] == {"buy_date": "2024-01-02"}
    assert b"price" not in shared.raw and b"12.5" not in shared.raw
    assert (await anyone.get("/users/alice/collection")).status == 400  # client is required, as for the owner


async def test_a_public_page_is_one_read_of_the_user_and_the_pages_catalog_read(
        running: RunningApp, alice: dict, commands: CommandCounter) -> None:
    anyone = running.client()
    await anyone.get("/users/alice/reading-history")  # the process meets the series' keys once
    commands.reset()
    assert (await anyone.get("/users/alice/reading-history")).status == 200
    assert commands.targets() == [("aggregate", "usernames"), ("find", "series")]
    commands.reset()
    assert (await anyone.get("/users/alice")).status == 200
    assert commands.targets() == [("aggregate", "usernames")]


async def viewer_cookies(running: RunningApp, db: AsyncDatabase) -> dict[str, str]:
    """Every kind of refreshToken a viewer may send, by what it is."""
    due = running.client()
    bob = await due.sign_up("bob")
    # Age-verified and showing 18+: the session is read all the way for Alice's 18+ entry.
    await db.users.update_one({"_id": bob["id"]}, {"$set": {
        "age_verified": True, "settings.nsfw-mode": "settings.nsfw.show-nsfw-18",
        "sessions.$[].last_seen": utc_now() - timedelta(hours=2)}})  # a refresh is due
    expired = running.client()
    dave = await expired.sign_up("dave")
    await db.users.update_one({"_id": dave["id"]}, {"$set": {"sessions.$[].created": utc_now() - timedelta(days=91)}})
    return {"not a token": "bogus", "no such session": "0" * 24 + "." + "a" * 43,
            "expired session": expired.cookies["refreshToken"], "session due a refresh": due.cookies["refreshToken"]}


async def test_public_answers_never_set_or_clear_a_cookie_whatever_the_viewer_sends(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, alice: dict) -> None:
    # Carol has no 18+ entry, Alice has one: the answers must not differ in their headers.
    carol = running.client()
    carol_user = await carol.sign_up("carol")
    assert (await carol.post("/user/reading-status/add/1", {**STATUS, "status": "completed"})).status == 200
    for client, user in ((api, alice), (carol, carol_user)):
        assert (await client.post(f"/users/{user['id']}/save-settings",
                                  {"collection-visibility": "public"})).status == 200
    cookies = await viewer_cookies(running, db)
    stored_before = {user["_id"]: user["sessions"] async for user in db.users.find({}, {"sessions": 1})}
    for kind, token in cookies.items():
        for slug in ("alice", "carol"):
            for path in (f"/users/{slug}", f"/users/{slug}/reading-history", f"/users/{slug}/collection?client=1"):
                reply = await running.client().get(path, headers={"Cookie": f"refreshToken={token}"},
                                                   send_cookies=False)
                assert reply.status == 200, (kind, path, reply.body)
                assert reply.set_cookies == [], (kind, path)
                assert "Cookie" in reply.headers["Vary"], (kind, path)
    # Nothing was written either: no session refreshed, none revoked.
    assert {user["_id"]: user["sessions"] async for user in db.users.find({}, {"sessions": 1})} == stored_before
    # The session was read: Bob sees Alice's 18+ entry, privately.
    bob = {"Cookie": f"refreshToken={cookies['session due a refresh']}"}
    shown = await running.client().get("/users/alice", headers=bob, send_cookies=False)
    assert (shown.body["stats"]["entries"], shown.headers["Cache-Control"]) == (3, "private, max-age=60")
