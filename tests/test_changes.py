"""The change feed (issue 31): `GET /user/changes` hands an app exactly what it has not seen, in the
order the writes were made, each change written in one transaction with its write."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from storage.changes import ChangeFeed
from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.catalog_data import series, volume
from tests.conftest import CommandCounter, FailPoints, RunningApp, StartApp
from tests.images import b64, image_bytes
from tests.mal_files import mal_file, manga
from tests.roles import make_admin
from tests.service_process import running_service

pytestmark = pytest.mark.asyncio

CATALOG = [series(n, f"Series {n}", mal_id=1000 + n, volumes=[volume(n * 10 + 1, 1), volume(n * 10 + 2, 2)])
           for n in range(1, 21)]
GONE = {"data": "The changes after this cursor are no longer kept: read the lists again, then follow the changes",
        "code": 410}


async def changes(api: ApiClient, since: str | None = None, limit: int | None = None) -> dict[str, Any]:
    query = "&".join(f"{name}={value}" for name, value in (("since", since), ("limit", limit)) if value is not None)
    reply = await api.get(f"/user/changes?{query}" if query else "/user/changes")
    assert reply.status == 200, reply.body
    return reply.body


async def everything(api: ApiClient, since: str | None = None, limit: int = 3) -> tuple[list[dict[str, Any]], str]:
    """Every change after `since`, page by page; and the cursor to ask with next."""
    seen: list[dict[str, Any]] = []
    while True:
        page = await changes(api, since, limit)
        seen += page["changes"]
        since = page["next"]
        if not page["more"]:
            return seen, since


async def test_each_write_leaves_one_change_with_the_entry_after_it(api: ApiClient, alice: dict) -> None:
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/reading-status/update/1", {**STATUS, "progress": 5})).status == 200
    assert (await api.post("/user/series-rating/add/1", {"rating": 8})).status == 200
    added = await api.post("/user/collection/add/11", {"price": 9.5, "date": "2026-01-02"})
    item_id = added.body["item_id"]
    assert (await api.post(f"/user/collection/update/{item_id}", {"price": 7, "date": None})).status == 200
    assert (await api.delete(f"/user/collection/delete/{item_id}")).status == 200
    assert (await api.delete("/user/series-rating/delete/1")).status == 200
    assert (await api.delete("/user/reading-status/delete/1")).status == 200
    page = await changes(api)
    assert [(c["cursor"], c["kind"], c["id"], c["op"]) for c in page["changes"]] == [
        ("1", "reading-status", "1", "upsert"), ("2", "reading-status", "1", "upsert"), ("3", "rating", "1", "upsert"),
        ("4", "collection-item", item_id, "upsert"), ("5", "collection-item", item_id, "upsert"),
        ("6", "collection-item", item_id, "delete"), ("7", "rating", "1", "delete"),
        ("8", "reading-status", "1", "delete")]
    entries = [c["entry"] for c in page["changes"]]
    assert entries[0]["progress"] == 3 and entries[1]["progress"] == 5 and entries[1]["user_id"] == alice["id"]
    assert entries[2] == {"user_id": alice["id"], "series_id": 1, "rating": 8.0,
                          "last_update": entries[2]["last_update"]}
    assert entries[3]["price"] == 9.5 and entries[3]["buy_date"] == "2026-01-02" and entries[3]["volume_id"] == 11
    assert entries[4]["price"] == 7.0 and entries[4]["buy_date"] is None
    assert entries[5:] == [None, None, None]
    assert page["next"] == "8" and page["more"] is False
    assert await changes(api, "8") == {"changes": [], "next": "8", "more": False}


async def test_a_client_that_keeps_next_sees_everything_once_also_with_two_processes_writing(
    api: ApiClient, alice: dict, tmp_path: Path, mongo_uri: str, db: AsyncDatabase
) -> None:
    """This process and a service process of its own (`python server.py` on the same database)
    write for the same user at once while a reader follows the feed page by page: it ends with
    every change once, in order."""
    async with running_service(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name) as service:
        phone = ApiClient(service.base_url)
        assert (await phone.login("alice")).status == 200
        reader_cursor: str | None = None
        seen: list[dict[str, Any]] = []

        async def write(client: ApiClient, series_ids: range) -> None:
            for series_id in series_ids:
                assert (await client.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
                assert (await client.post(f"/user/series-rating/add/{series_id}", {"rating": 5})).status == 200

        async def follow() -> None:
            nonlocal reader_cursor, seen
            for _ in range(20):
                found, reader_cursor = await everything(api, reader_cursor)
                seen += found
                await asyncio.sleep(0)

        await asyncio.gather(write(api, range(1, 11)), write(phone, range(11, 21)), follow())
    found, reader_cursor = await everything(api, reader_cursor)
    seen += found
    assert [int(c["cursor"]) for c in seen] == list(range(1, 41))
    assert sorted((c["kind"], c["id"]) for c in seen) == sorted(
        [("reading-status", str(n)) for n in range(1, 21)] + [("rating", str(n)) for n in range(1, 21)])


async def test_a_cursor_whose_next_change_expired_answers_410(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    for series_id in (1, 2, 3):
        assert (await api.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
    # The first two pass their retention (the TTL monitor may not have removed them yet).
    await db.changes.update_many({"seq": {"$lte": 2}}, {"$set": {"expires": utc_now() - timedelta(seconds=1)}})
    for stale in ("0", "1"):
        reply = await api.get(f"/user/changes?since={stale}")
        assert (reply.status, reply.body) == (410, GONE), stale
    assert [c["cursor"] for c in (await changes(api, "2"))["changes"]] == ["3"]
    assert [c["cursor"] for c in (await changes(api))["changes"]] == ["3"]  # from the oldest kept
    reply = await api.get("/user/changes?since=99")  # past the counter: a database restored from a backup
    assert (reply.status, reply.body) == (410, GONE)


async def test_bad_cursors_and_limits_are_400(api: ApiClient, alice: dict) -> None:
    for query in ("since=-1", "since=abc", "since=1.5", "since=" + "9" * 19, "limit=0", "limit=1001", "limit=x"):
        assert (await api.get(f"/user/changes?{query}")).status == 400, query


async def test_the_feed_is_the_readers_own(running: RunningApp, api: ApiClient, alice: dict) -> None:
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    bob = running.client()
    await bob.sign_up("bob")
    assert (await changes(bob)) == {"changes": [], "next": "0", "more": False}
    assert (await running.client().get("/user/changes")).status == 401


async def test_settings_and_the_avatar_leave_changes_too_also_when_an_admin_makes_them(
    running: RunningApp, api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    assert (await api.post(f"/users/{alice['id']}/save-settings", {"theme": "dark"})).status == 200
    image = {"image": b64(image_bytes("PNG"))}
    assert (await api.post(f"/user/update-image/{alice['id']}", image)).status == 200
    version = (await api.get("/user/me")).body["image_version"]
    admin = running.client()
    await make_admin(db, (await admin.sign_up("root"))["id"])
    assert (await admin.post(f"/users/{alice['id']}/save-settings", {"view-mode": "grid"})).status == 200
    assert (await admin.delete(f"/admin-users/delete-image/{alice['id']}")).status == 200
    page = await changes(api)
    assert [(c["kind"], c["id"], c["op"]) for c in page["changes"]] == [
        ("settings", "settings", "upsert"), ("avatar", alice["id"], "upsert"), ("settings", "settings", "upsert"),
        ("avatar", alice["id"], "delete")]
    first, avatar, second, _ = [c["entry"] for c in page["changes"]]
    assert first["theme"] == "dark" and first["view-mode"] == "column"  # the whole settings, defaults filled in
    assert second["theme"] == "dark" and second["view-mode"] == "grid"
    assert avatar == {"profile_image": f"/user/avatar/{alice['id']}/scaled?v={version}", "version": version}
    assert (await changes(admin))["changes"] == []  # the admin's own feed is not the user's


async def test_imports_and_undo_leave_one_change_per_entry_naming_the_import(
    running: RunningApp, api: ApiClient, alice: dict
) -> None:
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    file = mal_file([manga(manga_mangadb_id=1001, my_read_volumes=9), manga(manga_mangadb_id=1002, my_read_volumes=4)])
    applied = await api.request("POST", "/user/import/mal?mode=apply&merge=replace", body=file,
                                headers={"Content-Type": "application/xml"})
    assert applied.status == 200, applied.body
    import_id = applied.body["import_id"]
    undone = await api.post(f"/user/import/{import_id}/undo", None)
    assert undone.status == 200 and undone.body["restored"] == 1 and undone.body["removed"] == 1
    page = await changes(api, "1")
    assert [(c["id"], c["op"], c["import_id"]) for c in page["changes"]] == [
        ("1", "upsert", import_id), ("2", "upsert", import_id),  # the import
        ("1", "upsert", import_id), ("2", "delete", import_id)]  # its undo: 1 restored, 2 removed
    assert page["changes"][0]["entry"]["progress"] == 9 and page["changes"][2]["entry"]["progress"] == 3

    # An account file brought into another account: each entry it adds is a change there.
    exported = await api.get("/user/export")
    bob = running.client()
    await bob.sign_up("bob")
    brought = await bob.request("POST", "/user/import?mode=apply", body=exported.raw,
                                headers={"Content-Type": "application/json"})
    assert brought.status == 200, brought.body
    assert [(c["kind"], c["id"]) for c in (await changes(bob))["changes"]] == [("reading-status", "1")]


async def history(api: ApiClient, series_id: int, query: str = "") -> dict[str, Any]:
    reply = await api.get(f"/user/reading-status/id/{series_id}/history{query}")
    assert reply.status == 200, reply.body
    return reply.body


async def test_a_status_history_shows_each_change_newest_first_with_its_fields(api: ApiClient, alice: dict) -> None:
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/reading-status/update/1", {**STATUS, "progress": 5, "notes": "good"})).status == 200
    file = mal_file([manga(manga_mangadb_id=1001, my_read_volumes=9)])
    applied = await api.request("POST", "/user/import/mal?mode=apply&merge=replace", body=file,
                                headers={"Content-Type": "application/xml"})
    assert (await api.post(f"/user/import/{applied.body['import_id']}/undo", None)).status == 200
    assert (await api.delete("/user/reading-status/delete/1")).status == 200
    page = await history(api, 1)
    assert page["max"] == 5 and page["from"] == 0 and page["to"] == 5
    steps = page["history"]
    assert [(s["before"] is None, s["after"] is None, s["import_id"]) for s in steps] == [
        (False, True, None), (False, False, applied.body["import_id"]), (False, False, applied.body["import_id"]),
        (False, False, None), (True, False, None)]
    delete, undo, imported, update, add = steps
    assert update["fields"] == ["last_update", "notes", "progress"]
    assert update["before"]["progress"] == 3 and update["after"]["progress"] == 5
    assert imported["after"]["progress"] == 9 and undo["after"] == imported["before"]
    assert "series_id" in add["fields"] and "series_id" in delete["fields"]
    assert [s["at"] for s in (await history(api, 1, "?offset=1&limit=2"))["history"]] == [undo["at"], imported["at"]]
    assert (await history(api, 2))["history"] == []
    assert (await api.get("/user/reading-status/id/1/history?limit=x")).status == 400


async def six_changes_of_one_status_kept_three(start_app: StartApp) -> ApiClient:
    """alice, signed in to a service whose statuses keep a history of 3, has added series 1's
    status and changed it five times (progress 4 to 8)."""
    running = await start_app(status_history_limit=3)
    api = running.client()
    assert (await api.login("alice")).status == 200
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    for progress in range(4, 9):
        assert (await api.post("/user/reading-status/update/1", {**STATUS, "progress": progress})).status == 200
    return api


async def test_a_status_history_keeps_the_newest_changes_up_to_its_limit(start_app: StartApp, alice: dict,
                                                                        db: AsyncDatabase) -> None:
    api = await six_changes_of_one_status_kept_three(start_app)
    page = await history(api, 1)
    assert page["max"] == 3 and [s["after"]["progress"] for s in page["history"]] == [8, 7, 6]
    assert await db.changes.count_documents({"kind": "reading-status", "n": {"$exists": True}}) == 3
    # What fell out of the history is a change of the feed only, gone with its retention.
    fallen = await db.changes.find({"n": {"$exists": False}}).sort("seq", 1).to_list()
    assert [c["seq"] for c in fallen] == [1, 2, 3]
    assert all(c["purge_at"] == c["expires"] and "before" not in c and "fields" not in c for c in fallen)
    assert [c["cursor"] for c in (await changes(api))["changes"]] == ["1", "2", "3", "4", "5", "6"]


async def test_the_account_file_carries_the_changes_and_histories(api: ApiClient, alice: dict) -> None:
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/reading-status/update/1", {**STATUS, "progress": 5})).status == 200
    assert (await api.post("/user/series-rating/add/1", {"rating": 8})).status == 200
    exported = (await api.get("/user/export")).body
    assert [(c["cursor"], c["kind"], c["op"]) for c in exported["changes"]] == [
        ("1", "reading-status", "upsert"), ("2", "reading-status", "upsert"), ("3", "rating", "upsert")]
    update = exported["changes"][1]
    assert update["before"]["progress"] == 3 and update["entry"]["progress"] == 5
    assert update["fields"] == ["last_update", "progress"]
    assert exported["changes"][2]["before"] is None and exported["changes"][2]["fields"] is None  # no history
    # The file still comes back in: an import ignores the changes.
    assert (await api.request("POST", "/user/import", body=json.dumps(exported).encode(),
                              headers={"Content-Type": "application/json"})).status == 200


class Replica:
    """What an offline-first app keeps: each entry by (kind, id), and its cursor."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Any] = {}
        self.cursor: str | None = None

    async def sync(self, api: ApiClient) -> None:
        found, self.cursor = await everything(api, self.cursor, limit=4)
        for change in found:
            key = (change["kind"], change["id"])
            if change["op"] == "delete":
                self.entries.pop(key, None)
            else:
                self.entries[key] = change["entry"]

    def of(self, kind: str) -> dict[str, Any]:
        return {entry_id: entry for (k, entry_id), entry in self.entries.items() if k == kind}


async def server_state(api: ApiClient, user_id: str) -> dict[str, dict[str, Any]]:
    """The same, read from the routes that show each entry."""
    state: dict[str, dict[str, Any]] = {"reading-status": {}, "rating": {}, "collection-item": {}}
    for series_id in range(1, 21):
        status = (await api.get(f"/user/reading-status/id/{series_id}")).body
        rating = (await api.get(f"/user/series-rating/{series_id}")).body
        if status is not None:
            state["reading-status"][str(series_id)] = status
        if rating is not None:
            state["rating"][str(series_id)] = rating
    for owned in (await api.get("/user/collection?client=1&limit=100")).body["volumes"]:
        item = owned["collection"]
        state["collection-item"][item["item_id"]] = {"volume_id": owned["id"], "price": item["price"],
                                                     "buy_date": item["buy_date"]}
    me = (await api.get("/user/me")).body
    state["settings"] = {"settings": me["settings"]}
    state["avatar"] = {user_id: {"version": me["image_version"]}} if me["image_version"] else {}
    return state


async def test_an_app_that_went_offline_comes_back_to_exactly_the_servers_state(
    running: RunningApp, api: ApiClient, alice: dict
) -> None:
    for series_id in (1, 2, 3):
        assert (await api.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
    assert (await api.post("/user/series-rating/add/1", {"rating": 6})).status == 200
    kept_item = (await api.post("/user/collection/add/11", {"price": 3})).body["item_id"]
    gone_item = (await api.post("/user/collection/add/21", {"price": 4})).body["item_id"]
    phone = Replica()
    await phone.sync(api)  # in sync; then offline

    browser = running.client()
    assert (await browser.login("alice")).status == 200
    assert (await browser.post("/user/reading-status/update/1", {**STATUS, "progress": 9})).status == 200
    assert (await browser.delete("/user/reading-status/delete/2")).status == 200
    assert (await browser.post("/user/reading-status/add/4", STATUS)).status == 200
    assert (await browser.delete("/user/reading-status/delete/4")).status == 200  # added and gone while offline
    assert (await browser.post("/user/series-rating/update/1", {"rating": 9})).status == 200
    assert (await browser.post("/user/series-rating/add/5", {"rating": 2})).status == 200
    assert (await browser.post(f"/user/collection/update/{kept_item}", {"price": 5, "date": "2026-02-03"})).status == 200
    assert (await browser.delete(f"/user/collection/delete/{gone_item}")).status == 200
    assert (await browser.post(f"/users/{alice['id']}/save-settings", {"theme": "dark"})).status == 200
    assert (await browser.post(f"/user/update-image/{alice['id']}", {"image": b64(image_bytes("PNG"))})).status == 200
    file = mal_file([manga(manga_mangadb_id=1006, my_read_volumes=2)])
    assert (await browser.request("POST", "/user/import/mal?mode=apply", body=file,
                                  headers={"Content-Type": "application/xml"})).status == 200

    await phone.sync(api)  # back online
    server = await server_state(api, alice["id"])
    assert phone.of("reading-status") == server["reading-status"]
    assert set(server["reading-status"]) == {"1", "3", "6"}
    assert phone.of("rating") == server["rating"] and set(server["rating"]) == {"1", "5"}
    assert {item_id: {"volume_id": e["volume_id"], "price": e["price"], "buy_date": e["buy_date"]}
            for item_id, e in phone.of("collection-item").items()} == server["collection-item"]
    assert server["collection-item"] == {kept_item: {"volume_id": 11, "price": 5.0, "buy_date": "2026-02-03"}}
    assert phone.of("settings") == server["settings"]
    assert {k: {"version": v["version"]} for k, v in phone.of("avatar").items()} == server["avatar"]
    assert (await changes(api, phone.cursor))["changes"] == []  # nothing left unseen


async def test_a_page_reads_the_counter_and_a_bounded_range_of_changes(
    api: ApiClient, alice: dict, commands: CommandCounter, db: AsyncDatabase
) -> None:
    for series_id in range(1, 8):
        assert (await api.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
    commands.reset()
    page = await changes(api, "2", 3)
    assert [c["cursor"] for c in page["changes"]] == ["3", "4", "5"] and page["more"] is True
    # The session read (which brings the counter), the changes: a page never reads more than its
    # own numbers.
    assert commands.targets() == [("find", "users"), ("find", "changes")]
    # The find as the page sent it: no expiry condition (with it, SecantusDB's planner chose a scan
    # of every user's changes) and no named index (which costs SecantusDB a pass over them all).
    sent = {name: value for name, value in commands.sent[1].items() if name not in ("lsid", "$db", "$clusterTime")}
    assert "hint" not in sent and set(sent["filter"]) == {"user_id", "seq"}
    explained = await db.command("explain", sent, verbosity="executionStats")
    assert explained["executionStats"]["totalDocsExamined"] == 3


async def test_a_first_page_finds_the_oldest_change_kept_by_halving_not_by_reading_every_change(
    api: ApiClient, alice: dict, commands: CommandCounter, db: AsyncDatabase
) -> None:
    for series_id in range(1, 21):
        assert (await api.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
        assert (await api.post(f"/user/reading-status/update/{series_id}", {**STATUS, "progress": 5})).status == 200
    # The first 25 of the 40 pass their retention (the TTL monitor may not have removed them yet).
    await db.changes.update_many({"seq": {"$lte": 25}}, {"$set": {"expires": utc_now() - timedelta(seconds=1)}})
    commands.reset()
    page = await changes(api, limit=3)
    assert [c["cursor"] for c in page["changes"]] == ["26", "27", "28"] and page["more"] is True
    sent = [{name: value for name, value in command.items() if name not in ("lsid", "$db", "$clusterTime")}
            for command in commands.sent if command.get("find") == "changes"]
    # The newest change, the first, then halving 1..40 (6 reads at most), then the page.
    assert 3 <= len(sent) <= 2 + 6 + 1
    for command in sent:
        assert "hint" not in command
        explained = await db.command("explain", command, verbosity="executionStats")
        assert explained["executionStats"]["totalDocsExamined"] <= 3, command
    # Nothing kept at all: an empty page whose `next` is the counter, so the app follows from there.
    await db.changes.update_many({}, {"$set": {"expires": utc_now() - timedelta(seconds=1)}})
    assert await changes(api) == {"changes": [], "next": "40", "more": False}


async def test_the_account_file_reads_only_the_newest_numbers(
    api: ApiClient, alice: dict, commands: CommandCounter, db: AsyncDatabase
) -> None:
    """However many changes a user has kept, the file's read of them is a range of the newest
    numbers, not every change sorted."""
    for series_id in range(1, 4):
        assert (await api.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
    # Pretend the user made 5,000 changes before these three: the file takes the newest 1,000
    # numbers, which these three are among.
    await db.users.update_one({"_id": alice["id"]}, {"$inc": {"change_seq": 5000}})
    await db.changes.update_many({"user_id": alice["id"]}, {"$inc": {"seq": 5000}})
    commands.reset()
    exported = (await api.get("/user/export")).body
    assert [c["cursor"] for c in exported["changes"]] == ["5001", "5002", "5003"]
    sent = [{name: value for name, value in command.items() if name not in ("lsid", "$db", "$clusterTime")}
            for command in commands.sent if command.get("find") == "changes"]
    assert len(sent) == 1 and sent[0]["filter"]["seq"] == {"$gt": 4003, "$lte": 5003}


@pytest.mark.parametrize("command", ["insert", "commitTransaction"])
async def test_a_change_that_cannot_be_stored_takes_its_write_with_it(
    api: ApiClient, alice: dict, fail_points: FailPoints, db: AsyncDatabase, command: str
) -> None:
    """The change's insert (or the commit) fails with no label that would retry it: the status is
    not written either, and the counter did not move."""
    await fail_points.fail([command], {"times": 1}, errorCode=50, errorLabels=[])
    reply = await api.post("/user/reading-status/add/1", STATUS)
    await fail_points.off()
    assert reply.status == 503, reply.body
    assert (await api.get("/user/reading-status/id/1")).body is None
    assert (await db.users.find_one({"_id": alice["id"]})).get("change_seq") is None
    assert await changes(api) == {"changes": [], "next": "0", "more": False}
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert [c["cursor"] for c in (await changes(api))["changes"]] == ["1"]


async def test_a_changes_etag_is_the_one_if_match_takes(api: ApiClient, alice: dict) -> None:
    """An app that follows the feed can write conditionally without reading each entry again."""
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/series-rating/add/1", {"rating": 6})).status == 200
    item_id = (await api.post("/user/collection/add/11", {"price": 3})).body["item_id"]
    status, rating, item = (await changes(api))["changes"]
    assert status["etag"] == (await api.get("/user/reading-status/id/1")).headers["ETag"]
    assert rating["etag"] == (await api.get("/user/series-rating/1")).headers["ETag"]
    listed = (await api.get("/user/collection?client=1")).body["volumes"][0]["collection"]
    assert item["etag"] == listed["etag"]
    stale = {"If-Match": status["etag"]}
    assert (await api.post("/user/reading-status/update/1", {**STATUS, "progress": 4})).status == 200
    refused = await api.request("POST", "/user/reading-status/update/1", json_body=STATUS, headers=stale)
    assert refused.status == 412
    fresh = (await changes(api, status["cursor"]))["changes"][-1]
    assert (await api.request("POST", "/user/reading-status/update/1", json_body=STATUS,
                              headers={"If-Match": fresh["etag"]})).status == 200
    assert (await api.request("DELETE", f"/user/collection/delete/{item_id}",
                              headers={"If-Match": item["etag"]})).status == 200
    assert (await changes(api))["changes"][-1]["etag"] is None  # a delete has none


async def test_a_history_pruned_to_its_limit_leaves_the_feed_whole_within_the_retention(
    start_app: StartApp, alice: dict, db: AsyncDatabase
) -> None:
    """The history is kept by count, the feed by time: an app whose cursor sits before a status
    change that fell out of the status's history is not sent to read the lists again (410) while
    the retention lasts, and its pages have no holes."""
    api = await six_changes_of_one_status_kept_three(start_app)
    seen, cursor = await everything(api, "0", limit=2)
    assert [c["cursor"] for c in seen] == ["1", "2", "3", "4", "5", "6"] and cursor == "6"
    assert [c["cursor"] for c in (await changes(api, "1"))["changes"]] == ["2", "3", "4", "5", "6"]
    page = await history(api, 1)
    assert page["max"] == 3 and [s["after"]["progress"] for s in page["history"]] == [8, 7, 6]


async def test_a_page_of_large_entries_ends_before_its_limit(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    """A status's notes may hold 10,000 characters, each escaped to 12 bytes of JSON: a page of a
    thousand such changes was over 100 MB, built on the event loop. A page ends at a bounded size
    (`more` says the rest is ready) and a client that follows `next` still sees each change once."""
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    stored = await db.changes.find_one({"seq": 1}, {"_id": 0})
    await db.changes.delete_many({})
    large = {**stored["entry"], "notes": "\U0001F600" * 10_000}
    await db.changes.insert_many([{**stored, "seq": seq, "n": seq, "entry": large} for seq in range(1, 101)])
    await db.users.update_one({"_id": alice["id"]}, {"$set": {"change_seq": 100}})
    reply = await api.get("/user/changes?since=0&limit=1000")
    assert reply.status == 200 and reply.body["more"] is True
    assert 0 < len(reply.body["changes"]) < 100 and len(reply.raw) < 4 * 1024 * 1024
    seen, cursor = await everything(api, "0", limit=1000)
    assert [int(c["cursor"]) for c in seen] == list(range(1, 101)) and cursor == "100"


async def test_a_history_page_of_large_statuses_ends_before_its_limit(api: ApiClient, alice: dict,
                                                                     db: AsyncDatabase) -> None:
    """Each step carries the status before and after: a hundred with notes at their limit made 24 MB
    of answer, built on the event loop. A page ends at a bounded size; `to` says where the next starts."""
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    stored = await db.changes.find_one({"seq": 1}, {"_id": 0})
    await db.changes.delete_many({})
    large = {**stored["entry"], "notes": "\U0001F600" * 10_000}
    await db.changes.insert_many([{**stored, "seq": n, "n": n, "entry": large, "before": large}
                                  for n in range(1, 101)])
    reply = await api.get("/user/reading-status/id/1/history?limit=100")
    assert reply.status == 200 and reply.body["max"] == 100
    assert 0 < len(reply.body["history"]) < 100 and len(reply.raw) < 8 * 1024 * 1024
    assert reply.body["to"] == len(reply.body["history"])
    following = await history(api, 1, f"?offset={reply.body['to']}&limit=1")
    assert following["from"] == reply.body["to"] and len(following["history"]) == 1


async def test_a_history_page_reads_only_that_statuss_changes(api: ApiClient, alice: dict, commands: CommandCounter,
                                                              db: AsyncDatabase) -> None:
    """The page and its count go by the index of each status's changes: SecantusDB's planner
    scanned every user's changes for them."""
    for series_id in (1, 2):
        assert (await api.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
        for progress in range(4, 8):
            assert (await api.post(f"/user/reading-status/update/{series_id}",
                                   {**STATUS, "progress": progress})).status == 200
    commands.reset()
    assert len((await history(api, 1, "?limit=2"))["history"]) == 2
    sent = [{name: value for name, value in command.items() if name not in ("lsid", "$db", "$clusterTime")}
            for command in commands.sent if "changes" in (command.get("find"), command.get("aggregate"))]
    assert len(sent) == 2  # the page and its count
    for command in sent:
        assert "hint" not in command  # a named index costs SecantusDB a pass over every change
        explained = await db.command("explain", command, verbosity="executionStats")
        assert explained["executionStats"]["totalDocsExamined"] <= 5, command


async def test_a_history_that_cannot_let_its_oldest_change_go_takes_the_write_with_it(
    start_app: StartApp, alice: dict, fail_points: FailPoints, db: AsyncDatabase
) -> None:
    """The update that takes a change out of a status's history fails: the status, the counters
    and the changes stay as they were."""
    running = await start_app(status_history_limit=1)
    api = running.client()
    assert (await api.login("alice")).status == 200
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    await fail_points.fail(["update"], {"times": 1}, errorCode=50, errorLabels=[])
    reply = await api.post("/user/reading-status/update/1", {**STATUS, "progress": 9})
    await fail_points.off()
    assert reply.status == 503, reply.body
    assert (await api.get("/user/reading-status/id/1")).body["progress"] == 3
    user = await db.users.find_one({"_id": alice["id"]})
    assert (user["change_seq"], user["history_n"]) == (1, {"1": 1})
    assert [c["seq"] for c in await db.changes.find().to_list()] == [1]
    assert (await api.post("/user/reading-status/update/1", {**STATUS, "progress": 9})).status == 200
    assert await db.changes.count_documents({"n": {"$exists": True}}) == 1  # the first left the history


async def test_a_database_with_the_first_history_index_gets_the_one_the_planner_chooses(db: AsyncDatabase) -> None:
    """The first form of the index of each entry's changes was partial, and SecantusDB's planner
    passed it by (a scan of every change for each history page): starting replaces it."""
    await db.changes.drop_indexes()
    await db.changes.create_index([("user_id", 1), ("kind", 1), ("id", 1), ("n", -1)], name="entry_history",
                                   partialFilterExpression={"n": {"$exists": True}})
    await ChangeFeed(db, timedelta(days=90)).ensure_indexes()
    indexes = await db.changes.index_information()
    assert "entry_history" not in indexes and "partialFilterExpression" not in indexes["entry_numbers"]
    await ChangeFeed(db, timedelta(days=90)).ensure_indexes()  # and again: nothing to do
