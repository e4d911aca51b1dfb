"""Database faults at every step: MongoDB's `failCommand` fail point, injected into each command
that each route sends, answers 503 or a clean 4xx, never a 500, never a hang, never half a change."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

import storage.user_directory as directory
from storage.database import connect, database, is_unavailable
from tests.api_client import ApiClient, Reply
from tests.bodies import STATUS as BASE_STATUS
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import CommandCounter, FailPoints, RunningApp, StartApp
from tests.images import b64, image_bytes

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1), volume(12, 2)]), series(2, "Berserk")]
STATUS = {**BASE_STATUS, "priority": "mid"}
IMAGE = {"image": b64(image_bytes("PNG", (64, 48)))}
UNAVAILABLE = {"data": "Service unavailable", "code": 503}

# (name, the fail point's data): what a database in trouble answers.
FAULTS = [
    ("network error", {"closeConnection": True}),
    ("not writable primary", {"errorCode": 10107}),
    ("operation timed out", {"errorCode": 50}),
    ("write concern error", {"writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}}),
]
# After these the driver finds the server again before its retry, about a second each. A failed
# command is not run whatever the fault, so the state a fault leaves depends on the command's
# position, which the other faults try at every position; how these two are answered depends on
# the command, so a network error is tried on each command's first occurrence, and "not writable
# primary", which the driver and the service treat as they treat a network error (rediscovery, one
# retry, then 503), on each route's first command (the suite's time: issues 16 and 19).
REDISCOVERY_FAULTS = ("network error", "not writable primary")
# Commands that carry a write concern; a write concern error means nothing to the others.
WRITE_COMMANDS = {"insert", "update", "delete", "findAndModify", "commitTransaction", "abortTransaction"}
_names = itertools.count()


@dataclass
class Caller:
    """A signed-in client and what its setup created."""

    api: ApiClient
    user: dict[str, Any]
    item_id: str = ""


@dataclass(frozen=True)
class Scenario:
    method: str
    path: str  # `{id}` is the caller's user id, `{item}` the collection item it set up
    ok: int = 200
    body: Any = None
    setup: tuple[str, ...] = ()  # what the caller has before the request: status, rating, item, image
    signed_in: bool = True
    touches: tuple[str, ...] = field(default=())  # invariants to check: ratings, avatars, directory

    def url(self, caller: Caller) -> str:
        return self.path.format(id=caller.user.get("id", ""), item=caller.item_id)


SCENARIOS = {
    "register": Scenario("POST", "/auth/register", 201, body="credentials", signed_in=False, touches=("directory",)),
    "login": Scenario("POST", "/auth/login", body="credentials", signed_in=False),
    "me": Scenario("GET", "/auth/me"),
    "own profile": Scenario("GET", "/user/me"),
    "browse users": Scenario("GET", "/users?search=user&order=name-desc", signed_in=False),
    "logout": Scenario("POST", "/auth/logout"),
    "save settings": Scenario("POST", "/users/{id}/save-settings", body={"theme": "dark"}),
    "read status": Scenario("GET", "/user/reading-status/id/1", setup=("status",)),
    "add status": Scenario("POST", "/user/reading-status/add/1", body=STATUS),
    "update status": Scenario("POST", "/user/reading-status/update/1", body={**STATUS, "progress": 4},
                              setup=("status",)),
    "delete status": Scenario("DELETE", "/user/reading-status/delete/1", setup=("status",)),
    "history": Scenario("GET", "/user/reading-history", setup=("status",)),
    "history by name": Scenario("GET", "/user/reading-history?order=name-asc&search=yotsuba", setup=("status",)),
    "history stats": Scenario("GET", "/user/reading-history/stats/general?client=1", setup=("status",)),
    "read rating": Scenario("GET", "/user/series-rating/1", setup=("rating",)),
    "add rating": Scenario("POST", "/user/series-rating/add/1", body={"rating": 7}, touches=("ratings",)),
    "update rating": Scenario("POST", "/user/series-rating/update/1", body={"rating": 3}, setup=("rating",),
                              touches=("ratings",)),
    "delete rating": Scenario("DELETE", "/user/series-rating/delete/1", setup=("rating",), touches=("ratings",)),
    "add item": Scenario("POST", "/user/collection/add/11", body={"price": 7.99, "date": "2024-01-02"}),
    "update item": Scenario("POST", "/user/collection/update/{item}", body={"price": 1.5, "date": None},
                            setup=("item",)),
    "delete item": Scenario("DELETE", "/user/collection/delete/{item}", setup=("item",)),
    "list items": Scenario("GET", "/user/collection?client=1", setup=("item",)),
    "item stats": Scenario("GET", "/user/collection/stats/general?client=1", setup=("item",)),
    "upload image": Scenario("POST", "/user/update-image/{id}", body=IMAGE, setup=("image",),
                             touches=("avatars", "directory")),
    "delete image": Scenario("DELETE", "/user/delete-image/{id}", setup=("image",), touches=("avatars", "directory")),
    "serve image": Scenario("GET", "/user/avatar/{id}/scaled", setup=("image",), signed_in=False),
}


async def prepared_caller(running: RunningApp, scenario: Scenario) -> Caller:
    api = running.client()
    username = f"user{next(_names)}"
    if scenario.body == "credentials":
        if scenario.path == "/auth/login":
            assert (await api.register(username)).status == 201
        return Caller(api, {"username": username})
    user = await api.sign_up(username)
    caller = Caller(api, user)
    if "status" in scenario.setup:
        assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    if "rating" in scenario.setup:
        assert (await api.post("/user/series-rating/add/1", {"rating": 5})).status == 200
    if "item" in scenario.setup:
        reply = await api.post("/user/collection/add/11", {"price": 2.5})
        assert reply.status == 200
        caller.item_id = reply.body["item_id"]
    if "image" in scenario.setup:
        assert (await api.post(f"/user/update-image/{user['id']}", IMAGE)).status == 200
    if not scenario.signed_in:
        api.cookies.clear()
    return caller


async def send(caller: Caller, scenario: Scenario) -> Reply:
    body = scenario.body
    if body == "credentials":
        body = {"username": caller.user["username"], "password": "correct horse"}
    return await caller.api.request(scenario.method, scenario.url(caller), json_body=body)


async def check_ratings_exact(db: AsyncDatabase) -> None:
    """The series aggregate equals what the users' ratings say: no change was half made."""
    ratings = [r["rating"] async for user in db.users.find({}, {"ratings": 1}) for r in user.get("ratings") or []
               if r["series_id"] == 1]
    stored = await db.series.find_one({"_id": 1}, {"rating_count": 1, "rating_half_points": 1})
    assert (stored.get("rating_count", 0), stored.get("rating_half_points", 0)) == (
        len(ratings), round(sum(ratings) * 2))


async def check_avatars_whole(db: AsyncDatabase) -> None:
    """Every current image reference points at stored files with all their bytes, and no chunk
    is left without its file (a failed upload deletes what it wrote before it answers)."""
    files = set(await db["avatars.files"].distinct("_id"))
    assert set(await db["avatars.chunks"].distinct("files_id")) <= files
    async for user in db.users.find({"profile_image": {"$type": "object"}}, {"profile_image": 1}):
        for resolution in ("high", "scaled"):
            stored = await db["avatars.files"].find_one({"_id": user["profile_image"][resolution]})
            assert stored is not None
            chunks = await db["avatars.chunks"].count_documents({"files_id": stored["_id"]})
            assert chunks == -(-stored["length"] // stored["chunkSize"])


async def check_directory_exact(db: AsyncDatabase) -> None:
    """The directory of public users lists exactly the users with their images' versions, and its
    ranges count exactly its rows: no registration or change of image was half made."""
    users = {user["_id"]: (user.get("profile_image") or {}).get("version")
             async for user in db.users.find({}, {"profile_image.version": 1})}
    rows = {row["_id"]: row["image_version"] async for row in db[directory.ROWS].find({}, {"image_version": 1})}
    assert rows == users
    ranges = await db[directory.RANGES].find_one({})
    assert sum(entry["n"] for entry in ranges["name"]) == sum(entry["n"] for entry in ranges["since"]) == len(rows)


def assert_clean_answer(reply: Reply, scenario: Scenario, fault: str, command: str) -> None:
    where = f"{fault} on {command}"
    assert reply.status != 500 and reply.status < 504, (where, reply.status, reply.body)
    if reply.status == 503:
        assert {k: reply.body[k] for k in ("data", "code")} == UNAVAILABLE, where
    elif reply.status >= 400:
        assert isinstance(reply.body, dict) and reply.body["code"] == reply.status, where
    else:
        assert reply.status == scenario.ok, (where, reply.status, reply.body)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_a_fault_in_any_command_of_a_route_answers_503_or_4xx_and_leaves_no_half_change(
    name: str, running: RunningApp, db: AsyncDatabase, commands: CommandCounter, fail_points: FailPoints
) -> None:
    scenario = SCENARIOS[name]
    await load_catalog(db, CATALOG)
    caller = await prepared_caller(running, scenario)
    commands.reset()
    assert (await send(caller, scenario)).status == scenario.ok
    sequence = list(commands.log)
    assert sequence, "the route sends no command"
    for index, command in enumerate(sequence):
        for fault, data in FAULTS:
            if "writeConcernError" in data and command not in WRITE_COMMANDS:
                continue
            if fault in REDISCOVERY_FAULTS and command in sequence[:index]:
                continue
            if fault == "not writable primary" and index > 0:
                continue  # answered as a network error is (both end in rediscovery); once per route
            caller = await prepared_caller(running, scenario)
            # Fail this command and its retry: the driver retries a failed write or read once.
            await fail_points.fail([command], {"skip": sequence[:index].count(command), "times": 2}, **data)
            started = time.monotonic()
            try:
                reply = await send(caller, scenario)
            finally:
                await fail_points.off()
            assert time.monotonic() - started < 12, f"{fault} on {command} took too long"
            assert_clean_answer(reply, scenario, fault, command)
            if "ratings" in scenario.touches:
                await check_ratings_exact(db)
            if "avatars" in scenario.touches:
                await check_avatars_whole(db)
            if "directory" in scenario.touches:
                await check_directory_exact(db)


_REPLICATION_TIMEOUT = {"code": 64, "errmsg": "waiting for replication timed out"}


def bulk_write_error(write_errors: Sequence[dict[str, Any]] = (), concern_errors: Sequence[dict[str, Any]] = (),
                     labels: Sequence[str] = ()) -> BulkWriteError:
    """What pymongo raises from `bulk_write`: every write's errors gathered under code 65."""
    details: dict[str, Any] = {"writeErrors": list(write_errors), "writeConcernErrors": list(concern_errors),
                               "nInserted": 0, "nUpserted": 0, "nMatched": 1, "nModified": 1, "nRemoved": 0,
                               "upserted": []}
    if labels:
        details["errorLabels"] = list(labels)
    return BulkWriteError(details)


@pytest.mark.parametrize("error, unavailable", [
    (bulk_write_error(concern_errors=[_REPLICATION_TIMEOUT]), True),
    (bulk_write_error(concern_errors=[{"code": 100, "errmsg": "unsatisfiable write concern"}]), True),
    (bulk_write_error(write_errors=[{"index": 0, "code": 91, "errmsg": "shutting down"}]), True),
    (bulk_write_error(labels=["TransientTransactionError"]), True),
    (bulk_write_error(write_errors=[{"index": 0, "code": 11000, "errmsg": "duplicate key"}]), False),
    # A request that is wrong stays a bug even when the database was also slow to replicate it.
    (bulk_write_error(write_errors=[{"index": 1, "code": 11000, "errmsg": "duplicate key"}],
                      concern_errors=[_REPLICATION_TIMEOUT]), False),
    (bulk_write_error(), False),
], ids=["write concern", "other write concern", "transient write error", "transient label", "duplicate key",
        "duplicate key and write concern", "nothing"])
async def test_a_bulk_write_error_is_unavailable_only_when_what_it_gathered_says_so(
    error: BulkWriteError, unavailable: bool
) -> None:
    assert is_unavailable(error) is unavailable


async def test_a_failed_write_is_retried_once_so_the_client_never_sees_it(
    api: ApiClient, db: AsyncDatabase, fail_points: FailPoints
) -> None:
    await load_catalog(db, CATALOG)
    await api.sign_up("alice")
    await fail_points.fail(["update"], {"times": 1}, closeConnection=True)
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    await fail_points.off()
    stored = await db.users.find_one({}, {"statuses": 1})
    assert [s["series_id"] for s in stored["statuses"]] == [1]  # written exactly once


async def test_a_rating_whose_series_increment_fails_is_rolled_back_whole(
    api: ApiClient, db: AsyncDatabase, fail_points: FailPoints
) -> None:
    await load_catalog(db, CATALOG)
    await api.sign_up("alice")
    # The user's write (a findAndModify) and its change succeed, the series' $inc (the first
    # update) fails, with no label that would retry it.
    await fail_points.fail(["update"], {"times": 1}, errorCode=50, errorLabels=[])
    reply = await api.post("/user/series-rating/add/1", {"rating": 8})
    await fail_points.off()
    assert (reply.status, reply.body) == (503, UNAVAILABLE)
    assert (await api.get("/user/series-rating/1")).body is None  # the user's write was undone too
    await check_ratings_exact(db)
    assert (await api.post("/user/series-rating/add/1", {"rating": 8})).status == 200
    series_doc = await db.series.find_one({"_id": 1})
    assert (series_doc["rating_count"], series_doc["rating_half_points"]) == (1, 16)


async def test_a_transient_conflict_in_a_rating_transaction_is_retried_and_counted_once(
    api: ApiClient, db: AsyncDatabase, fail_points: FailPoints
) -> None:
    await load_catalog(db, CATALOG)
    await api.sign_up("alice")
    await fail_points.fail(["update"], {"times": 1}, errorCode=112,  # the series' $inc
                           errorLabels=["TransientTransactionError"])
    assert (await api.post("/user/series-rating/add/1", {"rating": 8})).status == 200
    await fail_points.off()
    series_doc = await db.series.find_one({"_id": 1})
    assert (series_doc["rating_count"], series_doc["rating_half_points"]) == (1, 16)


async def test_a_database_that_stops_answering_gives_503_within_the_operation_timeout(
    start_app: StartApp, mongo_uri: str, fail_points: FailPoints
) -> None:
    # The service bounds every operation (10 s); a client with a 1 s bound shows the same path quickly.
    client = connect(mongo_uri, operation_timeout_ms=1000)
    try:
        app = await start_app(database(client, "hung"))
        api = app.client()
        await fail_points.fail(["find"], "alwaysOn", blockConnection=True, blockTimeMS=5000)
        started = time.monotonic()
        reply = await api.get("/auth/me", headers={"Cookie": "refreshToken=" + "0" * 24 + "." + "a" * 43}, send_cookies=False)
        elapsed = time.monotonic() - started
        await fail_points.off()
        assert (reply.status, reply.body) == (503, UNAVAILABLE)
        assert elapsed < 3
    finally:
        await client.drop_database("hung")
        await client.close()

