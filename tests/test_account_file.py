"""GET /user/export and POST /user/import: the account file, its round trip into a fresh account,
dry runs, merges, and the line of the first problem in a bad file."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from storage.ratings import RatingStore
from tests.api_client import ApiClient, Reply
from tests.bodies import STATUS
from tests.catalog_data import series, volume
from tests.conftest import FRONTEND_ORIGIN, CommandCounter, FailPoints, RunningApp
from tests.images import b64, image_bytes
from tests.roles import set_roles

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1), volume(12, 2)]), series(2, "Berserk"),
           series(3, "Monster", volumes=[volume(31, 1), volume(32, 2)]), series(4, "Other client", client=2)]
LISTS = ("reading_statuses", "ratings", "collection")


async def fill(api: ApiClient, user_id: str) -> None:
    """Statuses with every field, half-point ratings, prices that floats would get wrong, an avatar."""
    await api.post("/users/" + user_id + "/save-settings", {"theme": "dark", "view-mode": "grid"})
    assert (await api.post("/user/reading-status/add/1", {
        **STATUS, "reread": 2, "score": 7.5, "start": "2019-04", "end": "2020-01-31", "notes": "Ä note\nwith lines",
        "progress": 12.5})).status == 200
    assert (await api.post("/user/reading-status/add/3", STATUS)).status == 200
    assert (await api.post("/user/reading-status/add/4", {**STATUS, "client": 2})).status == 200
    for series_id, rating in ((1, 8.5), (2, 3)):
        assert (await api.post(f"/user/series-rating/add/{series_id}", {"rating": rating})).status == 200
    for volume_id, body in ((11, {"price": 19.99, "date": "2024-02-29"}), (12, {"price": 0.1}),
                            (31, {"price": 1234.56, "date": "1999-12-31"}), (32, {})):
        assert (await api.post(f"/user/collection/add/{volume_id}", body)).status == 200
    assert (await api.post(f"/user/update-image/{user_id}", {"image": b64(image_bytes("PNG", (64, 48)))})).status == 200


async def export(api: ApiClient) -> tuple[Reply, dict[str, Any]]:
    reply = await api.get("/user/export")
    assert reply.status == 200, reply.body
    return reply, json.loads(reply.raw)


async def import_file(api: ApiClient, file: Any, query: str = "", **kwargs: Any) -> Reply:
    body = file if isinstance(file, (str, bytes)) else json.dumps(file, indent=1)
    return await api.request("POST", f"/user/import{query}", body=body,
                             headers={"Content-Type": "application/json", **kwargs.pop("headers", {})}, **kwargs)


async def test_the_export_holds_everything_and_no_secret(running: RunningApp, api: ApiClient, db: AsyncDatabase,
                                                         catalog: None) -> None:
    alice = await api.sign_up("alice")
    await fill(api, alice["id"])
    reply, file = await export(api)
    assert reply.headers["Content-Disposition"] == \
        f'attachment; filename="tsundoku-alice-{date.today().isoformat()}.json"'
    assert reply.headers["Content-Type"].startswith("application/json")
    assert (file["format"], file["version"]) == ("tsundoku-export", 1)
    assert file["profile"] == {"id": alice["id"], "username": "alice", "slug": "alice",
                               "registered": alice["registered"], "age_verified": False, "roles": ["member"]}
    assert file["settings"] == {"theme": "dark", "view-mode": "grid"}
    assert [s["series_id"] for s in file["reading_statuses"]] == [1, 3, 4]
    first = file["reading_statuses"][0]
    assert {k: first[k] for k in ("progress", "score", "reread", "start", "end", "notes", "client")} == {
        "progress": 12.5, "score": 7.5, "reread": 2, "start": "2019-04", "end": "2020-01-31",
        "notes": "Ä note\nwith lines", "client": 1}
    assert [(r["series_id"], r["rating"]) for r in file["ratings"]] == [(1, 8.5), (2, 3.0)]
    assert [(i["volume_id"], i["price_cents"], i["buy_date"]) for i in file["collection"]] == [
        (11, 1999, "2024-02-29"), (12, 10, None), (31, 123456, "1999-12-31"), (32, None, None)]
    # The avatar: its URLs, and hashes of exactly the bytes served there.
    for resolution in ("scaled", "high"):
        image = file["avatar"][resolution]
        served = await running.client().get(image["url"])
        assert served.status == 200
        assert (image["bytes"], image["sha256"]) == (len(served.raw), hashlib.sha256(served.raw).hexdigest())
    assert [set(s) for s in file["sessions"]] == [{"id", "created", "last_seen", "user_agent", "address"}]
    stored = await db.users.find_one({"_id": alice["id"]})
    for secret in (stored["password_hash"], stored["sessions"][0]["token_hash"],
                   api.cookies["refreshToken"].split(".")[1]):
        assert secret.encode() not in reply.raw
    assert b"password" not in reply.raw and b"token" not in reply.raw


async def test_export_then_import_into_a_fresh_account_reproduces_the_lists(
    running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None
) -> None:
    alice = await api.sign_up("alice")
    await fill(api, alice["id"])
    _, original = await export(api)
    bob_api = running.client()
    await bob_api.sign_up("bob")

    dry = await import_file(bob_api, original)
    assert dry.status == 200, dry.body
    assert (dry.body["mode"], dry.body["merge"], dry.body["applied"]) == ("dry-run", "keep", False)
    assert [dry.body[name]["add"] for name in LISTS] == [3, 2, 4]
    assert dry.body["settings"]["add"] == 2
    assert (await bob_api.get("/user/reading-history")).body["max"] == 0  # a dry run writes nothing

    applied = await import_file(bob_api, original, "?mode=apply")
    assert applied.status == 200, applied.body
    assert applied.body["applied"] is True
    assert {k: v for k, v in applied.body.items() if k not in ("mode", "applied")} == \
        {k: v for k, v in dry.body.items() if k not in ("mode", "applied")}  # the dry run said what it did
    _, copy = await export(bob_api)
    for name in LISTS:
        assert copy[name] == original[name], name  # field by field: prices to the cent, instants exactly
    assert copy["settings"] == original["settings"]
    assert copy["profile"]["username"] == "bob" and copy["avatar"] is None  # the profile is not taken over
    assert await RatingStore(db).recount() == []
    first = await db.series.find_one({"_id": 1})
    assert (first["rating_count"], first["rating_half_points"]) == (2, 34)  # alice's 8.5 and bob's copy

    again = await import_file(bob_api, original, "?mode=apply")
    assert [again.body[name]["unchanged"] for name in LISTS] == [3, 2, 4]
    assert [again.body[name]["add"] for name in LISTS] == [0, 0, 0]
    assert await RatingStore(db).recount() == []


async def test_keep_leaves_differing_entries_and_replace_takes_the_files(
    running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None
) -> None:
    alice = await api.sign_up("alice")
    await fill(api, alice["id"])
    _, file = await export(api)
    bob_api = running.client()
    await bob_api.sign_up("bob")
    assert (await bob_api.post("/user/reading-status/add/1", {**STATUS, "progress": 99})).status == 200
    assert (await bob_api.post("/user/series-rating/add/1", {"rating": 2})).status == 200
    item = (await bob_api.post("/user/collection/add/11", {"price": 5})).body["item_id"]
    assert (await bob_api.post("/user/reading-status/add/2", STATUS)).status == 200  # only bob has it

    kept = await import_file(bob_api, file, "?mode=apply&merge=keep")
    assert [(kept.body[n]["add"], kept.body[n]["kept"], kept.body[n]["change"]) for n in LISTS] == [
        (2, 1, 0), (1, 1, 0), (3, 1, 0)]
    assert (await bob_api.get("/user/reading-status/id/1")).body["progress"] == 99
    assert (await bob_api.get("/user/series-rating/1")).body["rating"] == 2
    assert await RatingStore(db).recount() == []

    replaced = await import_file(bob_api, file, "?mode=apply&merge=replace")
    assert [(replaced.body[n]["change"], replaced.body[n]["unchanged"]) for n in LISTS] == [(1, 2), (1, 1), (1, 3)]
    assert (await bob_api.get("/user/reading-status/id/1")).body["progress"] == 12.5
    assert (await bob_api.get("/user/series-rating/1")).body["rating"] == 8.5
    assert await RatingStore(db).recount() == []  # the aggregate moved from bob's 2 to 8.5, exactly
    _, copy = await export(bob_api)
    stored_item = next(i for i in copy["collection"] if i["volume_id"] == 11)
    assert (stored_item["item_id"], stored_item["price_cents"]) == (item, 1999)  # bob's id, the file's price
    assert 2 in [s["series_id"] for s in copy["reading_statuses"]]  # entries only bob had stay


async def test_unknown_series_and_volumes_are_reported_and_skipped(
    running: RunningApp, api: ApiClient, catalog: None
) -> None:
    await api.sign_up("alice")
    _, file = await export(api)
    file["reading_statuses"] = [{**STATUS_ENTRY, "series_id": 1}, {**STATUS_ENTRY, "series_id": 777}]
    file["ratings"] = [{"series_id": 778, "rating": 5, "last_update": "2024-01-01T00:00:00Z"}]
    file["collection"] = [{**ITEM, "volume_id": 779}]
    reply = await import_file(api, file, "?mode=apply")
    assert reply.status == 200, reply.body
    assert [(reply.body[n]["add"], reply.body[n]["unknown"]) for n in LISTS] == [(1, [777]), (0, [778]), (0, [779])]
    assert (await api.get("/user/reading-history")).body["max"] == 1


async def test_ratings_are_refused_to_a_user_who_may_not_rate(
    running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None
) -> None:
    alice = await api.sign_up("alice")
    await set_roles(db, alice["id"], "banned")
    _, file = await export(api)
    file["reading_statuses"] = [{**STATUS_ENTRY, "series_id": 1}]
    file["ratings"] = [{"series_id": 1, "rating": 5, "last_update": "2024-01-01T00:00:00Z"}]
    reply = await import_file(api, file, "?mode=apply")
    assert (reply.body["ratings"]["refused"], reply.body["ratings"]["add"], reply.body["reading_statuses"]["add"]) \
        == (1, 0, 1)
    assert (await db.users.find_one({"_id": alice["id"]})).get("ratings") in (None, [])
    assert await RatingStore(db).recount() == []


STATUS_ENTRY = {"series_id": 1, "client": 1, "visibility": "public", "progress_type": "volumes", "progress": 3,
                "status": "started", "reread": None, "score": None, "priority": "high", "start": None, "end": None,
                "notes": None, "last_update": "2024-05-06T07:08:09.123000Z"}
ITEM = {"item_id": "0123456789abcdef01234567", "volume_id": 11, "series_id": 1, "client": 1, "price_cents": 100,
        "buy_date": None, "added": None}


def minimal(**lists: Any) -> dict[str, Any]:
    return {"format": "tsundoku-export", "version": 1, **lists}


@pytest.mark.parametrize("text, line, field", [
    ('{\n "format": "tsundoku-export",\n "version": 1,\n "ratings": [\n  {"series_id": 1,,}\n ]\n}', 5, None),
    ('{\n "format": "tsundoku-export",\n "version": 2\n}', 3, "version"),
    ('{\n "format": "other"\n, "version": 1}', 2, "format"),
    ('{\n "format": "tsundoku-export",\n "version": 1,\n "ratings": [\n  {"series_id": 1, "rating": 5,\n'
     '   "last_update": "2024-01-01T00:00:00Z"},\n  {"series_id": 2,\n   "rating": 11,\n'
     '   "last_update": "2024-01-01T00:00:00Z"}\n ]\n}', 8, "ratings.1.rating"),
    ('{\n "format": "tsundoku-export",\n "version": 1,\n "collection": [\n  {"item_id": "0123456789abcdef01234567",'
     ' "volume_id": 11, "series_id": 1, "client": 1,\n   "price_cents": 1.5, "buy_date": null}\n ]\n}', 6,
     "collection.0.price_cents"),
    ('{\n "format": "tsundoku-export",\n "version": 1,\n "settings": {\n  "theme": "neon"\n }\n}', 5,
     "settings.theme"),
    ('{\n "format": "tsundoku-export",\n "version": 1,\n "secret": {"$set": 1}\n}', 4, "secret"),
    ('[1,\n 2]', 1, "body"),
])
async def test_a_bad_file_is_400_with_the_line_of_the_first_problem(
    api: ApiClient, db: AsyncDatabase, text: str, line: int, field: str | None
) -> None:
    await api.sign_up("alice")
    reply = await import_file(api, text, "?mode=apply")
    assert reply.status == 400, reply.body
    assert reply.body["data"].startswith(f"Invalid account file at line {line}"), reply.body
    if field is not None:
        assert reply.body["errors"][0]["field"] == field, reply.body
    assert (await db.users.find_one({}))["settings"] == {}


async def test_two_entries_for_one_series_are_refused_at_the_second(api: ApiClient, catalog: None) -> None:
    await api.sign_up("alice")
    text = json.dumps(minimal(reading_statuses=[STATUS_ENTRY, {**STATUS_ENTRY, "progress": 4}]), indent=1)
    reply = await import_file(api, text, "?mode=apply")
    second_entry_line = text.splitlines().index(' "reading_statuses": [') + 2 + len(STATUS_ENTRY) + 2
    assert reply.status == 400
    assert reply.body["data"] == f"Invalid account file at line {second_entry_line + 1}", (reply.body, text)
    assert reply.body["errors"][0]["field"] == "reading_statuses.1.series_id"


@pytest.mark.parametrize("body, headers, status", [
    (b"", {}, 400),
    (b"\xff\xfe", {}, 400),
    (b'{"format": "tsundoku-export", "version": 1}', {"Content-Type": "text/plain"}, 415),
    (b'{"format": "tsundoku-export", "version": 1, "ratings": NaN}', {}, 400),
])
async def test_a_body_that_is_no_json_file_is_refused(api: ApiClient, body: bytes, headers: dict, status: int) -> None:
    await api.sign_up("alice")
    reply = await api.request("POST", "/user/import?mode=apply", body=body,
                              headers={"Content-Type": "application/json", **headers})
    assert (reply.status, reply.body["code"]) == (status, status), reply.body


@pytest.mark.parametrize("query", ["?mode=now", "?merge=all", "?mode=apply&extra=1"])
async def test_unknown_modes_are_400(api: ApiClient, query: str) -> None:
    await api.sign_up("alice")
    reply = await import_file(api, minimal(), query)
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")


async def test_a_file_over_16_mb_is_413(api: ApiClient) -> None:
    await api.sign_up("alice")
    reply = await import_file(api, b'{"format": "tsundoku-export", "pad": "' + b"x" * (16 * 1024 * 1024) + b'"}')
    assert (reply.status, reply.body["data"]) == (413, "Request body too large")
    assert reply.body == await api.documented_answer("POST", "/user/import", 413)
    assert (await api.get("/auth/me")).status == 200  # the account is untouched


async def test_export_and_import_need_a_session_and_import_the_own_origin(api: ApiClient) -> None:
    assert (await api.get("/user/export")).status == 401
    assert (await import_file(api, minimal())).status == 401
    await api.sign_up("alice")
    reply = await import_file(api, minimal(), "?mode=apply", headers={"Origin": "https://evil.test"})
    assert (reply.status, reply.body["data"]) == (403, "Forbidden")
    assert (await import_file(api, minimal(), headers={"Origin": FRONTEND_ORIGIN})).status == 200


async def test_an_import_that_fails_at_any_command_changes_nothing(
    running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None, commands: CommandCounter,
    fail_points: FailPoints
) -> None:
    alice = await api.sign_up("alice")
    await fill(api, alice["id"])
    _, file = await export(api)
    bob_api = running.client()
    bob = await bob_api.sign_up("bob")
    assert (await bob_api.post("/user/series-rating/add/1", {"rating": 2})).status == 200
    async def lists() -> dict[str, Any]:
        stored = await db.users.find_one({"_id": bob["id"]}, {"statuses": 1, "ratings": 1, "collection": 1})
        return {name: stored.get(name) or [] for name in ("statuses", "ratings", "collection")}

    before = await lists()
    commands.reset()
    assert (await import_file(bob_api, file, "?mode=apply&merge=replace")).status == 200
    sequence = list(commands.log)
    assert "commitTransaction" in sequence, sequence
    await db.users.update_one({"_id": bob["id"]}, {"$set": before})
    await RatingStore(db).recount()  # back to the state before the import
    recorded = await db.changes.count_documents({"user_id": bob["id"]})
    refused = 0
    for index, command in enumerate(sequence):
        # An operation that timed out, with no label that would have the driver retry it.
        await fail_points.fail([command], {"skip": sequence[:index].count(command), "times": 2}, errorCode=50,
                               errorLabels=[])
        try:
            reply = await import_file(bob_api, file, "?mode=apply&merge=replace")
        finally:
            await fail_points.off()
        if reply.status == 200:
            continue  # the fault hit a read the driver retried, or the session read
        assert reply.status == 503, (command, index, reply.status, reply.body)
        refused += 1
        assert await lists() == before, (command, index)
        # Nor a change in the feed for the import that did not happen.
        assert await db.changes.count_documents({"user_id": bob["id"]}) == recorded, (command, index)
        if command == "commitTransaction":
            # A commit that failed leaves its transaction open on the server (its outcome unknown to
            # the driver), holding the user's document until it expires: end it, as that expiry would.
            await db.client.admin.command("killAllSessions", [])
        assert await RatingStore(db).recount() == [], (command, index)
    assert refused >= len(sequence) // 2, (refused, sequence)


async def test_a_write_concern_error_on_the_aggregates_answers_503_and_imports_nothing(
    running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None, commands: CommandCounter,
    fail_points: FailPoints
) -> None:
    # The aggregates move in one bulk write, whose errors pymongo gathers into a BulkWriteError:
    # a write concern error there answered 500.
    alice = await api.sign_up("alice")
    await fill(api, alice["id"])
    _, file = await export(api)
    bob_api = running.client()
    await bob_api.sign_up("bob")
    commands.reset()
    assert (await import_file(bob_api, file, "?mode=apply")).status == 200
    sent = commands.targets()
    at = sent.index(("update", "series"))
    carol_api = running.client()
    carol = await carol_api.sign_up("carol")
    await fail_points.fail(["update"], {"skip": [name for name, _ in sent[:at]].count("update"), "times": 1},
                           writeConcernError={"code": 64, "errmsg": "waiting for replication timed out"})
    try:
        reply = await import_file(carol_api, file, "?mode=apply")
    finally:
        await fail_points.off()
    assert (reply.status, reply.body) == (503, {"data": "Service unavailable", "code": 503})
    stored = await db.users.find_one({"_id": carol["id"]})
    assert [stored.get(name) or [] for name in ("statuses", "ratings", "collection")] == [[], [], []]
    assert await RatingStore(db).recount() == []
    assert (await import_file(carol_api, file, "?mode=apply")).status == 200


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-14:00"])
@pytest.mark.parametrize("mode", ["", "?mode=apply"])
async def test_an_instant_bson_cannot_hold_is_400_in_a_dry_run_and_when_applied(
    api: ApiClient, db: AsyncDatabase, catalog: None, instant: str, mode: str
) -> None:
    # Valid ISO 8601, but outside years 1 to 9999 once in UTC: the dry run said "add" and the
    # apply answered 500 (OverflowError in bson.encode).
    await api.sign_up("alice")
    reply = await import_file(api, minimal(ratings=[{"series_id": 1, "rating": 5, "last_update": instant}]), mode)
    assert reply.status == 400, reply.body
    assert reply.body["errors"][0]["field"] == "ratings.0.last_update", reply.body
    assert (await db.users.find_one({})).get("ratings", []) == []


async def test_an_instant_at_the_edge_of_what_bson_holds_is_imported(api: ApiClient, catalog: None) -> None:
    await api.sign_up("alice")
    file = minimal(ratings=[{"series_id": 1, "rating": 5, "last_update": "0001-01-01T00:00:00Z"},
                            {"series_id": 2, "rating": 5, "last_update": "9999-12-31T09:59:59-14:00"}])
    reply = await import_file(api, file, "?mode=apply")
    assert (reply.status, reply.body["ratings"]["add"]) == (200, 2), reply.body


async def test_16_mb_of_tiny_list_items_is_refused_before_it_is_parsed(api: ApiClient, db: AsyncDatabase) -> None:
    # Was: peak RSS 13.5 GB for 171 s, one validation error per item.
    await api.sign_up("alice")
    items = b"1," * (8 * 1024 * 1024 - 64)
    reply = await import_file(api, b'{"format":"tsundoku-export","version":1,"reading_statuses":[' + items + b'1]}')
    assert (reply.status, reply.body["code"]) == (413, 413), reply.body
    assert reply.body["data"] == "Invalid account file: Request body holds more than 1200000 JSON values"
    documented = (await api.get("/openapi.json")).body["paths"]["/user/import"]["post"]["responses"]["413"]
    assert "more JSON values" in documented["description"]
    assert (await db.users.find_one({})).get("statuses", []) == []


async def test_a_list_of_tiny_items_gives_one_error(api: ApiClient) -> None:
    await api.sign_up("alice")
    reply = await import_file(api, minimal(reading_statuses=[1] * 19_999), "?mode=apply")
    assert reply.status == 400 and [e["field"] for e in reply.body["errors"]] == ["reading_statuses.0"], reply.body


async def test_a_list_longer_than_20000_entries_is_refused(api: ApiClient) -> None:
    await api.sign_up("alice")
    reply = await import_file(api, minimal(ratings=[{"series_id": n, "rating": 5, "last_update": "2024-01-01T00:00:00Z"}
                                                    for n in range(1, 20_002)]), "?mode=apply")
    assert reply.status == 400 and [e["field"] for e in reply.body["errors"]] == ["ratings"], reply.body


async def test_an_export_whose_changes_are_large_still_goes_back_in(
    running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None
) -> None:
    """The file carries the newest changes, each status change with its entry before and after: a
    status with notes at their limit changed a few hundred times made a file of over 16 MB, which
    the import refuses (413), though the account holds one status."""
    alice = await api.sign_up("alice")
    assert (await api.post("/user/reading-status/add/1", {**STATUS, "notes": "x"})).status == 200
    stored = await db.changes.find_one({"seq": 1}, {"_id": 0})
    large = {**stored["entry"], "notes": "\U0001F600" * 10_000}
    await db.changes.insert_many([{**stored, "seq": seq, "n": seq, "entry": large, "before": large}
                                  for seq in range(2, 252)])
    await db.users.update_one({"_id": alice["id"]}, {"$set": {"change_seq": 251}})
    reply, file = await export(api)
    assert file["changes"] and file["changes"][-1]["cursor"] == "251"  # the newest are the ones kept
    bob_api = running.client()
    await bob_api.sign_up("bob")
    applied = await import_file(bob_api, reply.raw, "?mode=apply")
    assert applied.status == 200, applied.body
    assert applied.body["reading_statuses"]["add"] == 1
