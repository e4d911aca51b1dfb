"""GET/add/update/delete of one series' reading status."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.catalog_data import series
from tests.conftest import CommandCounter, RunningApp

pytestmark = pytest.mark.asyncio

FULL_STATUS = {**STATUS, "reread": 2, "score": 8.5, "start": "2024-03", "end": "2024-04-15", "notes": "Loved it"}


CATALOG = [series(1, "Yotsuba to!", en="Yotsuba&!"), series(2, "Berserk"), series(3, "Other client", client=2),
           series(4, "Adult Title", nsfw18=1)]


async def test_a_series_without_status_answers_null(api: ApiClient, alice: dict) -> None:
    reply = await api.get("/user/reading-status/id/1")
    assert reply.status == 200 and reply.raw == b"null"


async def test_adding_answers_200_and_the_status_reads_back(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/reading-status/add/1", FULL_STATUS)
    assert (reply.status, reply.body) == (200, {"data": "Reading status added successfully", "code": 200})
    stored = (await api.get("/user/reading-status/id/1")).body
    last_update = datetime.fromisoformat(stored.pop("last_update").replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - last_update) < timedelta(minutes=1)
    assert stored == {"user_id": alice["id"], "series_id": 1, "client": 1, "visibility": "public",
                      "progress_type": "volumes", "progress": 3, "status": "started", "reread": 2, "score": 8.5,
                      "priority": "high", "start": "2024-03", "end": "2024-04-15", "notes": "Loved it"}


async def test_optional_fields_default_to_null(api: ApiClient, alice: dict) -> None:
    await api.post("/user/reading-status/add/1", STATUS)
    stored = (await api.get("/user/reading-status/id/1")).body
    assert (stored["reread"], stored["score"], stored["start"], stored["end"], stored["notes"]) == (None,) * 5


async def test_enum_key_objects_and_snake_case_progress_type_are_accepted(api: ApiClient, alice: dict) -> None:
    body = {**STATUS, "visibility": {"key": "private"}, "status": {"key": "paused"}, "priority": {"key": "low"}}
    del body["progressType"]
    body["progress_type"] = {"key": "chapters"}
    assert (await api.post("/user/reading-status/add/1", body)).status == 200
    stored = (await api.get("/user/reading-status/id/1")).body
    assert (stored["visibility"], stored["status"], stored["priority"], stored["progress_type"]) == \
        ("private", "paused", "low", "chapters")


async def test_client_as_a_numeric_string_is_accepted(api: ApiClient, alice: dict) -> None:
    assert (await api.post("/user/reading-status/add/1", {**STATUS, "client": "1"})).status == 200


async def test_adding_twice_answers_409(api: ApiClient, alice: dict) -> None:
    await api.post("/user/reading-status/add/1", STATUS)
    reply = await api.post("/user/reading-status/add/1", STATUS)
    assert (reply.status, reply.body) == (409, {"data": "Reading status already exists for this series", "code": 409})


async def test_adding_an_unknown_series_answers_404(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/reading-status/add/999", STATUS)
    assert (reply.status, reply.body) == (404, {"data": "Series not found", "code": 404})


async def test_a_series_of_another_client_is_not_found(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/reading-status/add/3", STATUS)
    assert (reply.status, reply.body["data"]) == (404, "Series not found")
    assert (await api.post("/user/reading-status/add/3", {**STATUS, "client": 2})).status == 200


async def test_an_18_plus_series_is_not_found_for_a_reader_who_does_not_show_18_plus(
        api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    # As the catalog answers it (and the collection's adds): an answer never tells that it exists.
    reply = await api.post("/user/reading-status/add/4", STATUS)
    assert (reply.status, reply.body) == (404, {"data": "Series not found", "code": 404})
    # An update with no entry to update says the same as for an id nothing has, not that no
    # status exists "for this series" (which would tell that the series does).
    for hidden_or_none in (4, 999):
        reply = await api.post(f"/user/reading-status/update/{hidden_or_none}", STATUS)
        assert (reply.status, reply.body) == (404, {"data": "Series not found", "code": 404})
    assert (await api.get("/user/reading-status/id/4")).raw == b"null"
    await db.users.update_one({"_id": alice["id"]}, {"$set": {"age_verified": True,
                                                              "settings.nsfw-mode": "settings.nsfw.show-nsfw-18"}})
    assert (await api.post("/user/reading-status/add/4", STATUS)).status == 200
    # A status kept after the reader stops showing 18+ is still theirs to change and remove.
    await db.users.update_one({"_id": alice["id"]}, {"$set": {"settings.nsfw-mode": "settings.nsfw.hide-nsfw"}})
    assert (await api.post("/user/reading-status/update/4", {**STATUS, "progress": 2})).status == 200
    assert (await api.delete("/user/reading-status/delete/4")).status == 200


@pytest.mark.parametrize("missing", ["visibility", "progressType", "progress", "status", "priority", "client"])
async def test_a_missing_required_field_answers_400_missing(api: ApiClient, alice: dict, missing: str) -> None:
    body = {k: v for k, v in STATUS.items() if k != missing}
    reply = await api.post("/user/reading-status/add/1", body)
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")
    # The progress type is named as the document names it (the spec's `progressType` is taken too).
    assert [e["field"] for e in reply.body["errors"]] == ["progress_type" if missing == "progressType" else missing]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"visibility": "friends"}, "visibility"),
        ({"status": "finished"}, "status"),
        ({"priority": "urgent"}, "priority"),
        ({"progressType": "pages"}, "progressType"),
        ({"progress": -1}, "progress"),
        ({"progress": "3"}, "progress"),
        ({"reread": 1001}, "reread"),
        ({"reread": 1.5}, "reread"),
        ({"score": 10.5}, "score"),
        ({"score": -0.5}, "score"),
        ({"start": "2024-02-30"}, "start"),
        ({"start": "24-01-01"}, "start"),
        ({"start": "2024-13"}, "start"),
        ({"start": "2024-05", "end": "2024-04-30"}, "end"),
        ({"start": "2025", "end": "2024-12"}, "end"),
        ({"notes": "x" * 10_001}, "notes"),
        ({"client": "abc"}, "client"),
        ({"client": 0}, "client"),
        ({"client": True}, "client"),
        ({"$set": {"roles": ["admin"]}}, "$set"),
    ],
)
async def test_a_malformed_field_answers_400_invalid(api: ApiClient, alice: dict, change: dict, field: str) -> None:
    reply = await api.post("/user/reading-status/add/1", {**STATUS, **change})
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")
    assert field in [e["field"] for e in reply.body["errors"]]
    assert (await api.get("/user/reading-status/id/1")).raw == b"null"


@pytest.mark.parametrize("change", [{"start": "2024", "end": "2024-01"}, {"start": "2024-05", "end": "2024"},
                                    {"notes": "x" * 10_000}, {"score": 0}, {"score": 10}, {"reread": 1000}])
async def test_values_at_the_edges_are_accepted(api: ApiClient, alice: dict, change: dict) -> None:
    assert (await api.post("/user/reading-status/add/1", {**STATUS, **change})).status == 200


@pytest.mark.parametrize("path", ["/user/reading-status/id/abc", "/user/reading-status/id/0",
                                  "/user/reading-status/id/-1", "/user/reading-status/id/1.5"])
async def test_a_malformed_series_id_answers_400_invalid(api: ApiClient, alice: dict, path: str) -> None:
    reply = await api.get(path)
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")


@pytest.mark.parametrize("method, path", [("GET", "/user/reading-status/id/"), ("POST", "/user/reading-status/add/"),
                                          ("POST", "/user/reading-status/update/"),
                                          ("DELETE", "/user/reading-status/delete/")])
async def test_an_empty_series_id_answers_400_missing(api: ApiClient, alice: dict, method: str, path: str) -> None:
    reply = await api.request(method, path, json_body=STATUS if method == "POST" else None)
    assert (reply.status, reply.body) == (400, {"data": "Required parameters missing", "code": 400,
                                                "errors": [{"field": "id", "message": "Field required"}]})


@pytest.mark.parametrize("method, path", [("GET", "/user/reading-status/id/1"), ("POST", "/user/reading-status/add/1"),
                                          ("POST", "/user/reading-status/update/1"),
                                          ("DELETE", "/user/reading-status/delete/1")])
async def test_every_status_route_needs_a_session(api: ApiClient, catalog: None, method: str, path: str) -> None:
    reply = await api.request(method, path, json_body=STATUS if method == "POST" else None)
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


async def test_update_replaces_the_status(api: ApiClient, alice: dict) -> None:
    await api.post("/user/reading-status/add/1", FULL_STATUS)
    before = (await api.get("/user/reading-status/id/1")).body
    reply = await api.post("/user/reading-status/update/1", {**STATUS, "status": "completed", "progress": 12})
    assert (reply.status, reply.body) == (200, {"data": "Reading status updated successfully", "code": 200})
    after = (await api.get("/user/reading-status/id/1")).body
    assert (after["status"], after["progress"], after["notes"], after["score"]) == ("completed", 12, None, None)
    assert after["last_update"] >= before["last_update"]


async def test_updating_a_missing_status_answers_404(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/reading-status/update/1", STATUS)
    assert (reply.status, reply.body) == (404, {"data": "Reading status does not exist for this series", "code": 404})


async def test_updating_an_unknown_series_answers_404_series(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/reading-status/update/999", STATUS)
    assert (reply.status, reply.body["data"]) == (404, "Series not found")


async def test_update_validates_like_add(api: ApiClient, alice: dict) -> None:
    await api.post("/user/reading-status/add/1", STATUS)
    reply = await api.post("/user/reading-status/update/1", {**STATUS, "score": 11})
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")
    reply = await api.post("/user/reading-status/update/1", {"score": 5})
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")


async def test_delete_removes_the_status(api: ApiClient, alice: dict) -> None:
    await api.post("/user/reading-status/add/1", STATUS)
    reply = await api.delete("/user/reading-status/delete/1")
    assert (reply.status, reply.body) == (200, {"data": "Reading status deleted successfully", "code": 200})
    assert (await api.get("/user/reading-status/id/1")).raw == b"null"
    again = await api.delete("/user/reading-status/delete/1")
    assert (again.status, again.body) == (404, {"data": "Reading status does not exist for this series", "code": 404})


async def test_statuses_are_private_to_their_user(running: RunningApp, api: ApiClient, alice: dict) -> None:
    await api.post("/user/reading-status/add/1", STATUS)
    bob = running.client()
    await bob.sign_up("bob")
    assert (await bob.get("/user/reading-status/id/1")).raw == b"null"
    assert (await bob.delete("/user/reading-status/delete/1")).status == 404
    assert (await bob.post("/user/reading-status/update/1", STATUS)).status == 404
    assert (await bob.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.get("/user/reading-status/id/1")).body["user_id"] == alice["id"]


async def test_fifty_concurrent_adds_store_exactly_one(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    replies = await asyncio.gather(*(api.post("/user/reading-status/add/2", STATUS) for _ in range(50)))
    statuses = sorted(r.status for r in replies)
    assert statuses.count(200) == 1 and statuses.count(409) == 49
    stored = await db.users.find_one({"_id": alice["id"]}, {"statuses": 1})
    assert [s["series_id"] for s in stored["statuses"]] == [2]


async def test_round_trips_read_1_and_writes_5(api: ApiClient, alice: dict, commands: CommandCounter) -> None:
    """A write: the session read; in one transaction, the read of the entry and the counters, the
    update, its change (storage.changes), and the commit."""
    costs = {}
    for name, method, path, body in [
        ("add", "POST", "/user/reading-status/add/1", STATUS),
        ("read", "GET", "/user/reading-status/id/1", None),
        ("update", "POST", "/user/reading-status/update/1", STATUS),
        ("delete", "DELETE", "/user/reading-status/delete/1", None),
    ]:
        commands.reset()
        assert (await api.request(method, path, json_body=body)).status == 200
        costs[name] = commands.total
    assert costs == {"add": 5, "read": 1, "update": 5, "delete": 5}


async def test_a_write_past_the_16mb_document_limit_answers_507_and_changes_nothing(
    api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    await db.users.update_one({"_id": alice["id"]}, {"$set": {"ballast": "x" * (16 * 1024 * 1024 - 2000)}})
    reply = await api.post("/user/reading-status/add/1", {**STATUS, "notes": "n" * 10_000})
    assert (reply.status, reply.body) == (507, {"data": "Your lists are too large to store more", "code": 507})
    assert (await api.get("/user/reading-status/id/1")).raw == b"null"


@pytest.mark.parametrize("status", ["planned", {"key": "planned"}])
async def test_planned_is_a_status_like_the_others(api: ApiClient, alice: dict, status: Any) -> None:
    assert (await api.post("/user/reading-status/add/1", {**STATUS, "status": status})).status == 200
    assert (await api.get("/user/reading-status/id/1")).body["status"] == "planned"
    assert (await api.post("/user/reading-status/add/2", STATUS)).status == 200
    listed = (await api.get("/user/reading-history?order=name-asc&search=yotsuba")).body["series"]
    assert [(entry["id"], entry["reading-history"]["status"]) for entry in listed] == [(1, "planned")]
    assert (await api.post("/user/reading-status/update/2", {**STATUS, "status": "planned"})).status == 200
    history = (await api.get("/user/reading-history")).body
    assert sorted(entry["reading-history"]["status"] for entry in history["series"]) == ["planned", "planned"]


async def test_a_status_outside_the_five_is_400(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/reading-status/add/1", {**STATUS, "status": "plan-to-read"})
    assert reply.status == 400
    assert reply.body["errors"][0]["field"] == "status"


async def test_the_openapi_document_lists_planned(api: ApiClient) -> None:
    schemas = (await api.get("/openapi.json")).body["components"]["schemas"]
    plain, keyed = schemas["ReadingStatusBody"]["properties"]["status"]["anyOf"]  # the value, or {"key": value}
    assert plain["enum"] == keyed["properties"]["key"]["enum"] == ["started", "completed", "paused", "dropped", "planned"]
