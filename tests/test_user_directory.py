"""GET /users: the users with a public profile (every user who is not banned), by name or by
registration, searched by the beginning of the username, paged; banned users in neither the page
nor `max`; nothing but what a public profile shows; and every read bounded, however many users."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

import storage.user_directory as directory
from storage.indexes import prepare_database
from storage.user_directory import DERIVED_COLLECTIONS, RANGES, ROWS, UserDirectory
from storage.users import UserStore
from tests.api_client import ApiClient
from tests.conftest import CommandCounter, RunningApp

pytestmark = pytest.mark.asyncio

LISTED_FIELDS = {"id", "slug", "username", "profile_image", "registered", "image_version"}


async def set_role(db: AsyncDatabase, username: str, role: str) -> None:
    """As `server.py set-role` does: the only way a role changes."""
    assert await UserStore(db).set_roles(username, [role])


def names_of(reply: Any) -> list[str]:
    return [user["username"] for user in reply.body["users"]]


async def test_each_user_is_shown_as_their_public_profile_shows_them(running: RunningApp, api: ApiClient) -> None:
    alice = await api.sign_up("Alice")
    await running.client().sign_up("bob")
    anyone = running.client()
    reply = await anyone.get("/users")
    assert reply.status == 200, reply.body
    assert (reply.body["max"], reply.body["count"], reply.body["from"], reply.body["to"]) == (2, 2, 0, 2)
    assert names_of(reply) == ["Alice", "bob"]
    shown = reply.body["users"][0]
    assert set(shown) == LISTED_FIELDS
    profile = (await anyone.get("/users/alice")).body["user"]
    assert shown == {**profile, "image_version": None} and shown["id"] == alice["id"]
    # Nothing a profile does not show: no roles, settings, sessions, hashes, e-mail or notes.
    for secret in ("password", "session", "token", "settings", "roles", "email", "notes", "age_verified"):
        assert secret not in reply.raw.decode(), secret
    assert reply.headers["Cache-Control"] == "public, max-age=60" and not reply.set_cookies

    # The image's version follows each change of the image, as the profile's does.
    assert (await api.post(f"/user/update-image/{alice['id']}", {"image": _png()})).status == 200
    pictured = (await anyone.get("/users")).body["users"][0]
    assert (pictured["image_version"], pictured["profile_image"]) == (1, f"/user/avatar/{alice['id']}/scaled?v=1")
    assert pictured == {**(await anyone.get("/users/alice")).body["user"], "image_version": 1}
    assert (await api.delete(f"/user/delete-image/{alice['id']}")).status == 200
    assert (await anyone.get("/users")).body["users"][0]["image_version"] is None
    assert (await api.post(f"/user/update-image/{alice['id']}", {"image": _png()})).status == 200
    assert (await anyone.get("/users?search=alice")).body["users"][0]["image_version"] == 3


def _png() -> str:
    from tests.images import b64, image_bytes

    return b64(image_bytes("PNG", (32, 32)))


async def test_banned_users_are_neither_listed_nor_counted(running: RunningApp, db: AsyncDatabase) -> None:
    for name in ("alice", "bob", "carol", "bobby"):
        await running.client().sign_up(name)
    bob = running.client()
    assert (await bob.login("bob")).status == 200
    bob_id = (await bob.get("/auth/me")).body["user"]["id"]
    assert (await bob.post(f"/user/update-image/{bob_id}", {"image": _png()})).status == 200
    await set_role(db, "bob", "banned")
    anyone = running.client()
    for query in ("", "?order=registered-desc", "?search=b", "?search=BOB&order=registered-asc", "?offset=1&limit=1"):
        reply = await anyone.get(f"/users{query}")
        assert reply.status == 200, (query, reply.body)
        assert "bob" not in names_of(reply), query
    assert (await anyone.get("/users")).body["max"] == 3
    assert (await anyone.get("/users?search=b")).body["max"] == 1  # bobby
    await set_role(db, "bob", "member")  # the ban lifted: listed again, where the name sorts, with the image
    assert names_of(await anyone.get("/users")) == ["alice", "bob", "bobby", "carol"]
    assert (await anyone.get("/users?search=bob&limit=1")).body["users"][0]["image_version"] == 1
    await set_role(db, "bob", "admin")  # a role that is not a ban changes nothing here
    assert (await anyone.get("/users")).body["max"] == 4
    carol = running.client()
    assert (await carol.login("carol")).status == 200
    assert (await carol.request("DELETE", "/user/account", json_body={"password": "correct horse"})).status == 200
    assert names_of(await anyone.get("/users")) == ["alice", "bob", "bobby"]
    assert (await anyone.get("/users?search=c")).body == {"users": [], "max": 0, "count": 0, "from": 0, "to": 0}


NAMES = ["Zed", "amy", "Alice", "alina", "al.x", "al_y", "al-z", "Bob", "boo", "bob.k", "b0b", "carl", "Carla",
         "dave", "Dana", "eve", "edd", "Edna", "f00", "gus", "ALB", "albert", "alf", "max", "Mia"]


async def test_every_order_search_and_page_is_the_slice_of_all_users_sorted(
        running: RunningApp, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ranges of a few rows, so that registrations split them and removals empty some.
    monkeypatch.setattr(directory, "SPLIT_ABOVE", 3)
    for name in NAMES:
        await running.client().sign_up(name)
    for name in ("Bob", "al.x", "Dana"):
        await set_role(db, name, "banned")
    await set_role(db, "al.x", "member")
    ranges = await db[RANGES].find_one({})
    assert len(ranges["name"]) > 4 and len(ranges["since"]) > 4 and max(r["n"] for r in ranges["name"]) <= 3
    users = [user async for user in db.users.find({"roles": {"$ne": "banned"}}, {"username": 1, "registered": 1})]
    by_name = sorted(users, key=lambda user: user["username"].lower())
    by_registration = sorted(users, key=lambda user: (user["registered"], user["username"].lower()))
    anyone = running.client()
    for search, order, offset, limit in itertools.product((None, "al", "A", "b", "ALB", "z", "q"),
                                                          ("name-asc", "name-desc", "registered-asc",
                                                           "registered-desc"),
                                                          (0, 2, 7, 30), (1, 3, 44)):
        every = by_name if order.startswith("name") else by_registration
        if search is not None:
            every = [user for user in every if user["username"].lower().startswith(search.lower())]
        if order.endswith("desc"):
            every = every[::-1]
        expected = [user["username"] for user in every[offset:offset + limit]]
        query = f"order={order}&offset={offset}&limit={limit}" + (f"&search={search}" if search else "")
        reply = await anyone.get(f"/users?{query}")
        assert reply.status == 200, (query, reply.body)
        assert (names_of(reply), reply.body["max"], reply.body["count"], reply.body["from"], reply.body["to"]) == \
            (expected, len(every), len(expected), offset, offset + len(expected)), query


async def test_a_search_is_the_beginning_of_the_name_in_any_case_and_never_a_pattern(
        running: RunningApp, commands: CommandCounter) -> None:
    for name in ("Alice", "alina", "malice", "al.ice"):
        await running.client().sign_up(name)
    anyone = running.client()
    assert names_of(await anyone.get("/users?search=ALI")) == ["Alice", "alina"]
    assert names_of(await anyone.get("/users?search=%20al.%20")) == ["al.ice"]  # trimmed; `.` is a character
    assert names_of(await anyone.get("/users?search=lic")) == []  # not a substring search
    for text in ("a.*", "%5Ea", "a%25", "%24ne", "a%20b", "al%C3%AF", "a" * 33):
        commands.reset()
        reply = await anyone.get(f"/users?search={text}")
        assert (reply.status, reply.body["users"], reply.body["max"]) == (200, [], 0), text
        assert commands.log == [], text  # no name begins so: nothing to ask the database


async def test_malformed_parameters_are_400_and_a_large_limit_is_capped(running: RunningApp) -> None:
    anyone = running.client()
    for query in ("order=newest", "order=name", "limit=-1", "limit=x", "offset=-1", "offset=10000001",
                  "search=" + "a" * 101):
        reply = await anyone.get(f"/users?{query}")
        assert (reply.status, reply.body["data"]) == (400, "Invalid parameters"), query
    assert (await anyone.get("/users?limit=1000")).status == 200
    await running.client().sign_up("alice")
    beyond = await anyone.get("/users?offset=5")
    assert (beyond.body["users"], beyond.body["max"], beyond.body["from"], beyond.body["to"]) == ([], 1, 5, 5)


async def test_a_search_by_registration_matching_too_many_users_is_refused(
        running: RunningApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "REGISTRATION_ORDER_MATCHES", 2)
    for name in ("ann", "anna", "annie", "bob"):
        await running.client().sign_up(name)
    anyone = running.client()
    refused = await anyone.get("/users?search=an&order=registered-desc")
    assert (refused.status, refused.body["data"]) == (400, "Invalid parameters")
    assert refused.body["errors"] == [{"field": "search", "message": "matches 3 users; ordered by registration a "
                                       "search may match at most 2 (ordered by name, any search is taken)"}]
    assert names_of(await anyone.get("/users?search=anni&order=registered-desc")) == ["annie"]
    assert (await anyone.get("/users?search=an&order=name-desc")).body["max"] == 3  # name orders take any search


async def test_a_database_from_before_the_directory_gets_it_at_the_next_start(running: RunningApp,
                                                                              db: AsyncDatabase) -> None:
    for name in ("bob", "Alice", "carol"):
        await running.client().sign_up(name)
    await set_role(db, "carol", "banned")
    for name in DERIVED_COLLECTIONS:
        await db[name].drop()
    assert (await running.client().get("/users")).body["max"] == 0
    await prepare_database(db)  # what every start runs first
    reply = await running.client().get("/users?order=registered-asc")
    assert (names_of(reply), reply.body["max"]) == (["bob", "Alice"], 2)
    await running.client().sign_up("dave")  # and it is kept from there
    assert names_of(await running.client().get("/users?order=registered-desc&limit=1")) == ["dave"]


# ---- bounded at scale ----

# A scale model: ranges of FILL rows over USERS users are read as ranges of BUILD_FILL are over
# a hundred thousand (a read spans the same two ranges at most); SecantusDB takes about 2 ms to
# drop each document at the test's end, which keeps the model small.
USERS = 600
FILL = 24
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


async def many_users(db: AsyncDatabase) -> list[dict[str, Any]]:
    """USERS users as registration stores them (half sharing one long prefix, every 50th
    banned), and the directory built from them as a start builds it."""
    users = []
    for index in range(USERS):
        name = f"reader{index:04d}" if index % 2 else f"{'kmxpq'[index % 5]}{index * 7919 % 10007:05d}x"
        users.append({"_id": f"{index:024x}", "username": name, "slug": name.lower(),
                      "registered": START + timedelta(seconds=index // 3),  # some share a second
                      "roles": ["banned" if index % 50 == 0 else "member"], "settings": {}, "profile_image": None})
    await db.users.insert_many(users)
    await db.usernames.insert_many([{"_id": user["slug"], "user_id": user["_id"]} for user in users])
    await db[RANGES].delete_many({})
    await UserDirectory(db).build()
    return [user for user in users if "banned" not in user["roles"]]


def reads_of_rows(commands: CommandCounter) -> list[dict[str, Any]]:
    """The filter of each read of the directory's rows the app sent (a page or a count is an
    aggregation; a search's ranks within one range a find)."""
    return [sent["pipeline"][0]["$match"] if name == "aggregate" else sent["filter"]
            for name, sent in zip(commands.log, commands.sent, strict=True)
            if name in ("aggregate", "find") and sent[name] == ROWS]


async def test_pages_and_searches_read_a_bounded_number_of_rows_however_many_users(
        running: RunningApp, db: AsyncDatabase, commands: CommandCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "BUILD_FILL", FILL)
    monkeypatch.setattr(directory, "SPLIT_ABOVE", 2 * FILL)
    monkeypatch.setattr(directory, "REGISTRATION_ORDER_MATCHES", 100)
    listed = await many_users(db)
    anyone = running.client()
    by_name = sorted(user["username"].lower() for user in listed)
    readers = [name for name in by_name if name.startswith("reader")]
    cases = [
        ("order=name-asc", 2, by_name[:44]),
        ("order=name-asc&offset=550", 2, by_name[550:594]),
        ("order=name-desc&offset=300&limit=30", 2, by_name[::-1][300:330]),
        ("order=registered-asc&offset=345&limit=20", 2, None),
        ("order=registered-desc", 2, None),
        # The ranks of a search's bounds: one read when one range holds both, else a count each.
        ("search=reader&offset=200&limit=20", 4, readers[200:220]),  # 300 names share the prefix
        ("search=R&order=name-desc&limit=10", 4, [n for n in by_name if n.startswith("r")][::-1][:10]),
        ("search=k0", 4, [n for n in by_name if n.startswith("k0")][:44]),
        ("search=k00", 3, [n for n in by_name if n.startswith("k00")][:44]),
    ]
    for query, round_trips, expected in cases:
        commands.reset()
        reply = await anyone.get(f"/users?{query}")
        assert reply.status == 200, (query, reply.body)
        assert commands.total == round_trips, (query, commands.log)
        if expected is not None:
            assert [user["slug"] for user in reply.body["users"]] == expected, query
        # Every read (a search's counts, the page) reads at most the ranges its first and last
        # rows fall in and the page between them, whether the page is the first or the last,
        # however many names a search matches.
        for where in reads_of_rows(commands):
            plan = await db.command("explain", {"find": ROWS, "filter": where}, verbosity="executionStats")
            assert plan["queryPlanner"]["winningPlan"]["inputStage"]["stage"] == "IXSCAN", (query, where)
            assert plan["executionStats"]["totalDocsExamined"] <= 2 * FILL + 44, (query, plan["executionStats"])
    assert (await anyone.get("/users")).body["max"] == len(listed) == USERS - USERS // 50
    assert (await anyone.get("/users?search=reader")).body["max"] == len(readers) == 300
    # Ordered by registration, a search reads its matches: at most REGISTRATION_ORDER_MATCHES.
    commands.reset()
    assert (await anyone.get("/users?search=reader02&order=registered-asc&limit=100")).body["count"] == 50
    page = reads_of_rows(commands)[-1]
    plan = await db.command("explain", {"find": ROWS, "filter": page}, verbosity="executionStats")
    assert plan["executionStats"]["totalDocsExamined"] == 50
    refused = await anyone.get("/users?search=reader&order=registered-asc")
    assert refused.status == 400 and refused.body["errors"][0]["message"].startswith("matches 300 users; ")
