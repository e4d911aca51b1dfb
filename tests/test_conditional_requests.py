"""Conditional requests on the reader's own data (issue 31, point 3): every GET of it answers an
ETag and 304 to an If-None-Match that names it; the updates and deletes of one entry honour
If-Match, and answer 412, changing nothing, when the entry changed since its tag was read, also
when the change comes between the check and the write."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from handlers.application import all_routes
from storage.collection import CollectionStore
from storage.ratings import RatingStore
from storage.reading import ReadingStatusStore
from tests.api_client import ApiClient, keyed
from tests.bodies import STATUS
from tests.catalog_data import series, volume
from tests.conftest import FRONTEND_ORIGIN, CommandCounter, RunningApp
from tests.images import b64, image_bytes

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1), volume(12, 2)]), series(2, "Berserk")]
PRECONDITION_FAILED = {"data": "Precondition failed", "code": 412}
TAG = re.compile(r'^"[0-9a-f]{32}"$')
# What each own-data GET needs besides its path: a route added without an entry here answers 400
# in the sweep, and the sweep fails until it gets one.
QUERIES = {"/user/collection": {"client": 1}, "/user/collection/stats/general": {"client": 1},
           "/user/reading-history/stats/general": {"client": 1}}
# Answers that carry the time they were made (the account file's export time, a gzip's): their tag
# is honest but differs at each request.
STAMPED = {"/user/export"}


def own_data_gets() -> list[str]:
    """Every GET of the reader's own data that answers an ETag, by the route table (a new one is
    swept too), as a path. (The public pages answer theirs with their own caching:
    tests/test_public_profiles.py.)"""
    paths = []
    for route in all_routes():
        operation = route.handler.api.get("get")
        if operation is not None and operation.answers_etag("get") and operation.auth:
            path = re.sub(r"\{\w+\}", "1", route.path)
            query = QUERIES.get(route.path)
            paths.append(f"{path}?{urlencode(query)}" if query else path)
    return paths


async def with_entries(api: ApiClient) -> str:
    """A status and a rating of series 1, and volume 11 in the collection: the item's id."""
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/series-rating/add/1", {"rating": 7.5})).status == 200
    added = await api.post("/user/collection/add/11", {"price": 6.5, "date": "2024-05-01"})
    assert added.status == 200, added.body
    return str(added.body["item_id"])


async def listed_item(api: ApiClient, item_id: str) -> dict[str, Any]:
    page = (await api.get("/user/collection?client=1")).body
    return next(v["collection"] for v in page["volumes"] if v["collection"]["item_id"] == item_id)


def if_match(tag: str) -> dict[str, str]:
    return {"If-Match": tag}


# ---- If-None-Match ----


async def test_every_get_of_own_data_answers_an_etag_and_304_when_if_none_match_names_it(
        api: ApiClient, alice: dict) -> None:
    await with_entries(api)
    paths = own_data_gets()
    for expected in ("/user/me", "/user/reading-status/id/1", "/user/series-rating/1", "/user/reading-history",
                     "/user/changes", "/user/reading-status/id/1/history",
                     "/user/collection?client=1", "/user/reading-stats", "/user/export", "/user/export/mal",
                     "/auth/sessions", "/auth/tokens"):
        assert expected in paths
    for path in paths:
        first = await api.get(path)
        assert first.status == 200, (path, first.body)
        tag = first.headers["ETag"]
        assert TAG.match(tag), (path, tag)
        assert first.headers["Cache-Control"] == "no-store"
        assert {"Cookie", "Authorization"} <= {v.strip() for v in ",".join(first.headers.get_list("Vary")).split(",")}
        again = await api.get(path, headers={"If-None-Match": tag})
        if path in STAMPED and again.status == 200:
            assert again.headers["ETag"] != tag and again.raw != first.raw, path
            continue
        assert (again.status, again.raw, again.headers["ETag"]) == (304, b"", tag), path
        assert "Content-Type" not in again.headers


async def test_if_none_match_compares_weakly_takes_lists_and_star(api: ApiClient, alice: dict) -> None:
    await with_entries(api)
    tag = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    other = '"' + "0" * 32 + '"'
    for header in (tag, f"W/{tag}", f"{other}, {tag}", f'{other},W/{tag}', "*"):
        reply = await api.get("/user/reading-status/id/1", headers={"If-None-Match": header})
        assert reply.status == 304, header
    for header in (other, tag.strip('"'), f"{other}, W/{other}", ""):
        reply = await api.get("/user/reading-status/id/1", headers={"If-None-Match": header})
        assert (reply.status, reply.headers["ETag"]) == (200, tag), header


async def test_head_answers_304_as_get_does(api: ApiClient, alice: dict) -> None:
    tag = (await api.get("/user/me")).headers["ETag"]
    reply = await api.request("HEAD", "/user/me", headers={"If-None-Match": tag})
    assert (reply.status, reply.headers["ETag"]) == (304, tag)


async def test_the_tag_changes_when_the_answer_does(api: ApiClient, alice: dict) -> None:
    await with_entries(api)
    before = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    assert (await api.post("/user/reading-status/update/1", {**STATUS, "progress": 4})).status == 200
    reply = await api.get("/user/reading-status/id/1", headers={"If-None-Match": before})
    assert reply.status == 200 and reply.headers["ETag"] != before and reply.body["progress"] == 4


async def test_answers_that_are_not_the_readers_own_data_have_no_etag(api: ApiClient, alice: dict) -> None:
    # /auth/me signs a new token each time; the list routes' POST form is no GET; the catalog is public.
    for method, path, body in (("GET", "/auth/me", None), ("POST", "/user/reading-history", {}),
                               ("GET", "/series?client=1", None)):
        reply = await api.request(method, path, json_body=body)
        assert reply.status == 200, (path, reply.body)
        assert "ETag" not in reply.headers, path


async def test_a_tag_is_the_answers_whoever_asks(running: RunningApp, api: ApiClient, alice: dict) -> None:
    bob = running.client()
    await bob.sign_up("bob")
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    alices = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    # Bob has no status of series 1: null, whatever tag of Alice's he names.
    reply = await bob.get("/user/reading-status/id/1", headers={"If-None-Match": alices})
    assert (reply.status, reply.raw) == (200, b"null")


# ---- If-Match on reading statuses ----


async def test_a_status_update_with_the_current_tag_is_done(api: ApiClient, alice: dict) -> None:
    await with_entries(api)
    tag = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    reply = await api.post("/user/reading-status/update/1", {**STATUS, "progress": 5}, headers=if_match(tag))
    assert reply.status == 200, reply.body
    assert (await api.get("/user/reading-status/id/1")).body["progress"] == 5


async def test_a_status_update_or_delete_with_a_stale_tag_answers_412_and_changes_nothing(
        api: ApiClient, alice: dict) -> None:
    await with_entries(api)
    stale = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    assert (await api.post("/user/reading-status/update/1", {**STATUS, "progress": 4})).status == 200
    now = await api.get("/user/reading-status/id/1")
    changes = (await api.get("/user/changes")).raw
    reply = await api.post("/user/reading-status/update/1", {**STATUS, "progress": 9}, headers=if_match(stale))
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    reply = await api.delete("/user/reading-status/delete/1", headers=if_match(stale))
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    assert (await api.get("/user/reading-status/id/1")).raw == now.raw
    assert (await api.get("/user/changes")).raw == changes  # nothing happened, so nothing is recorded
    reply = await api.delete("/user/reading-status/delete/1", headers=if_match(now.headers["ETag"]))
    assert reply.status == 200
    assert (await api.get("/user/reading-status/id/1")).raw == b"null"


async def test_if_match_compares_strongly_and_takes_lists_and_star(api: ApiClient, alice: dict) -> None:
    await with_entries(api)
    tag = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    other = '"' + "0" * 32 + '"'
    weak = await api.post("/user/reading-status/update/1", STATUS, headers=if_match(f"W/{tag}"))
    assert weak.status == 412
    listed = await api.post("/user/reading-status/update/1", STATUS, headers=if_match(f"{other}, {tag}"))
    assert listed.status == 200
    # `*`: only that the status exist, however it changed.
    assert (await api.post("/user/reading-status/update/1", STATUS, headers=if_match("*"))).status == 200
    assert (await api.delete("/user/reading-status/delete/1", headers=if_match("*"))).status == 200


async def test_if_match_on_an_entry_that_does_not_exist_answers_404_as_without_it(api: ApiClient, alice: dict) -> None:
    for header in ("*", '"' + "0" * 32 + '"'):
        reply = await api.post("/user/reading-status/update/2", STATUS, headers=if_match(header))
        assert reply.status == 404 and reply.body["data"] == "Reading status does not exist for this series"
        reply = await api.delete("/user/series-rating/delete/2", headers=if_match(header))
        assert reply.status == 404 and reply.body["data"] == "Rating does not exist for this series"
        reply = await api.delete("/user/collection/delete/nothing", headers=if_match(header))
        assert reply.status == 404 and reply.body["data"] == "Collection item not found"


async def test_a_retried_conditional_write_with_its_idempotency_key_answers_what_it_first_did(
        api: ApiClient, alice: dict) -> None:
    await with_entries(api)
    tag = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    headers = {**if_match(tag), **keyed("update-once")}
    first = await api.post("/user/reading-status/update/1", {**STATUS, "progress": 6}, headers=headers)
    assert first.status == 200
    # The tag is stale now; the retry is the same request, and gets the first answer, not 412.
    retry = await api.post("/user/reading-status/update/1", {**STATUS, "progress": 6}, headers=headers)
    assert (retry.status, retry.body, retry.headers.get("Idempotent-Replayed")) == (200, first.body, "true")
    another = await api.post("/user/reading-status/update/1", {**STATUS, "progress": 6},
                             headers={**if_match(tag), **keyed("another")})
    assert (another.status, another.body) == (412, PRECONDITION_FAILED)


# ---- ratings and collection items ----


async def test_ratings_honour_if_match(api: ApiClient, alice: dict) -> None:
    await with_entries(api)
    stale = (await api.get("/user/series-rating/1")).headers["ETag"]
    assert (await api.get("/user/series-rating/id/1")).headers["ETag"] == stale
    assert (await api.post("/user/series-rating/update/1", {"rating": 8}, headers=if_match(stale))).status == 200
    now = await api.get("/user/series-rating/1")
    assert now.body["rating"] == 8
    reply = await api.post("/user/series-rating/update/1", {"rating": 2}, headers=if_match(stale))
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    reply = await api.delete("/user/series-rating/delete/1", headers=if_match(stale))
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    assert (await api.get("/user/series-rating/1")).raw == now.raw
    assert (await api.delete("/user/series-rating/delete/1", headers=if_match(now.headers["ETag"]))).status == 200
    assert (await api.get("/user/series-rating/1")).raw == b"null"


async def test_collection_items_carry_their_tag_in_the_list_and_honour_if_match(api: ApiClient, alice: dict) -> None:
    item_id = await with_entries(api)
    listed = await listed_item(api, item_id)
    stale = listed["etag"]
    assert TAG.match(stale) and {"item_id", "price", "buy_date"} <= listed.keys()
    update = f"/user/collection/update/{item_id}"
    assert (await api.post(update, {"price": 7, "date": "2024-05-02"}, headers=if_match(stale))).status == 200
    now = await listed_item(api, item_id)
    assert (now["price"], now["buy_date"]) == (7, "2024-05-02") and now["etag"] != stale
    reply = await api.post(update, {"price": 1, "date": "2024-05-03"}, headers=if_match(stale))
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    reply = await api.delete(f"/user/collection/delete/{item_id}", headers=if_match(stale))
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    assert await listed_item(api, item_id) == now
    assert (await api.delete(f"/user/collection/delete/{item_id}", headers=if_match(now["etag"]))).status == 200
    assert (await api.get("/user/collection?client=1")).body["volumes"] == []


# ---- a write between the check and the write ----


@pytest.mark.parametrize("key", [None, "in-a-transaction"])
async def test_a_status_changed_between_the_check_and_the_write_is_not_overwritten(
        running: RunningApp, api: ApiClient, alice: dict, monkeypatch: pytest.MonkeyPatch, key: str | None) -> None:
    """With an Idempotency-Key the check and the write are in one transaction, which the other
    write makes conflict: run again, the check itself fails."""
    await with_entries(api)
    phone = running.client()
    assert (await phone.login("alice")).status == 200
    first = await api.get("/user/reading-status/id/1")
    tag = first.headers["ETag"]
    original_entry = ReadingStatusStore.entry
    landed: list[int] = []

    async def read_then_race(self: ReadingStatusStore, user_id: str, series_id: int) -> Any:
        current = await original_entry(self, user_id, series_id)  # what the check compares: the tag still holds
        if not landed:
            reply = await phone.post("/user/reading-status/update/1", {**STATUS, "progress": 42})
            landed.append(reply.status)
        return current

    monkeypatch.setattr(ReadingStatusStore, "entry", read_then_race)
    keyed_headers = keyed(key) if key else {}
    reply = await api.post("/user/reading-status/update/1", {**STATUS, "progress": 7},
                           headers={**if_match(tag), **keyed_headers})
    assert landed == [200]
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    assert (await api.get("/user/reading-status/id/1")).body["progress"] == 42
    # And a delete in the same race keeps the other client's status.
    landed.clear()
    tag = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    reply = await api.delete("/user/reading-status/delete/1",
                             headers={**if_match(tag), **(keyed(f"{key}-delete") if key else {})})
    assert landed == [200] and (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    assert (await api.get("/user/reading-status/id/1")).body["progress"] == 42


async def test_a_rating_changed_between_the_check_and_the_write_is_not_overwritten(
        running: RunningApp, api: ApiClient, alice: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    await with_entries(api)
    phone = running.client()
    assert (await phone.login("alice")).status == 200
    tag = (await api.get("/user/series-rating/1")).headers["ETag"]
    original_update = RatingStore.update
    landed: list[int] = []
    raced: list[bool] = []

    async def race_then_update(self: RatingStore, *args: Any, **kwargs: Any) -> Any:
        # The session query has read the rating and the tag was checked against it; now the phone writes.
        if not raced:
            raced.append(True)  # the phone's own update passes here too: once
            landed.append((await phone.post("/user/series-rating/update/1", {"rating": 3})).status)
        return await original_update(self, *args, **kwargs)

    monkeypatch.setattr(RatingStore, "update", race_then_update)
    reply = await api.post("/user/series-rating/update/1", {"rating": 9}, headers=if_match(tag))
    assert landed == [200]
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    assert (await api.get("/user/series-rating/1")).body["rating"] == 3


async def test_a_collection_item_changed_between_the_check_and_the_write_is_not_overwritten(
        running: RunningApp, api: ApiClient, alice: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    item_id = await with_entries(api)
    phone = running.client()
    assert (await phone.login("alice")).status == 200
    tag = (await listed_item(api, item_id))["etag"]
    original_item = CollectionStore.item
    landed: list[int] = []

    async def read_then_race(self: CollectionStore, user_id: str, item: str) -> Any:
        current = await original_item(self, user_id, item)
        if not landed:
            landed.append((await phone.post(f"/user/collection/update/{item_id}", {"price": 99, "date": "2024-05-04"})).status)
        return current

    monkeypatch.setattr(CollectionStore, "item", read_then_race)
    reply = await api.delete(f"/user/collection/delete/{item_id}", headers=if_match(tag))
    assert landed == [200]
    assert (reply.status, reply.body) == (412, PRECONDITION_FAILED)
    assert (await listed_item(api, item_id))["price"] == 99


# ---- what a browser and the document are told ----


async def test_the_preflight_allows_the_conditional_headers(api: ApiClient, alice: dict) -> None:
    reply = await api.request("OPTIONS", "/user/reading-status/update/1",
                              headers={"Origin": FRONTEND_ORIGIN, "Access-Control-Request-Method": "POST"})
    allowed = {h.strip() for h in reply.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"If-Match", "If-None-Match"} <= allowed
    reply = await api.get("/user/me", headers={"Origin": FRONTEND_ORIGIN})
    assert "ETag" in reply.headers["Access-Control-Expose-Headers"]


CONDITIONAL_WRITES = [("post", "/user/reading-status/update/{id}"), ("delete", "/user/reading-status/delete/{id}"),
                      ("post", "/user/series-rating/update/{id}"), ("delete", "/user/series-rating/delete/{id}"),
                      ("post", "/user/collection/update/{id}"), ("delete", "/user/collection/delete/{id}")]


async def test_the_openapi_document_describes_the_conditional_requests(api: ApiClient) -> None:
    document = (await api.get("/openapi.json")).body
    tagged = [route.path for route in all_routes()
              if "get" in route.handler.api and route.handler.api["get"].answers_etag("get")]
    assert len(tagged) >= 12
    for path in tagged:
        operation = document["paths"][path]["get"]
        assert "If-None-Match" in [p["name"] for p in operation["parameters"]], path
        assert "ETag" in operation["responses"]["200"]["headers"], path
        assert "304" in operation["responses"], path
    for method, path in CONDITIONAL_WRITES:
        operation = document["paths"][path][method]
        assert "If-Match" in [p["name"] for p in operation["parameters"]], path
        assert operation["responses"]["412"]["content"]["application/json"]["example"] == PRECONDITION_FAILED
    assert "If-Match" not in str(document["paths"]["/user/reading-status/add/{id}"])


# ---- what it costs ----


async def test_a_conditional_write_costs_one_read_more_and_a_304_what_its_get_costs(
        api: ApiClient, alice: dict, commands: CommandCounter) -> None:
    item_id = await with_entries(api)

    async def cost(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                   status: int = 200) -> int:
        commands.reset()
        reply = await api.request(method, path, json_body=body, headers=headers)
        assert reply.status == status, (path, reply.body)
        return commands.total

    get = await cost("GET", "/user/reading-status/id/1")
    tag = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    assert await cost("GET", "/user/reading-status/id/1", headers={"If-None-Match": tag}, status=304) == get == 1
    extra = {}
    # Each pair of bodies changes the entry both times (a rating that stays moves no series).
    for name, path, bodies, current in [
        ("status", "/user/reading-status/update/1", ({**STATUS, "progress": 1}, {**STATUS, "progress": 2}),
         lambda: api.get("/user/reading-status/id/1")),
        ("rating", "/user/series-rating/update/1", ({"rating": 4}, {"rating": 6}),
         lambda: api.get("/user/series-rating/1")),
        # The item keeps its date: a date leaving the first or last purchase costs a read of its own
        # (storage.collection_stats), with or without If-Match.
        ("item", f"/user/collection/update/{item_id}", ({"price": 2, "date": "2024-05-01"},
                                                        {"price": 3, "date": "2024-05-01"}), None),
    ]:
        plain = await cost("POST", path, bodies[0])
        tag = (await current()).headers["ETag"] if current else (await listed_item(api, item_id))["etag"]
        extra[name] = await cost("POST", path, bodies[1], if_match(tag)) - plain
    # A status or an item is read for the comparison; a rating came with the session query.
    assert extra == {"status": 1, "rating": 0, "item": 1}


async def test_deleting_the_profile_image_honours_if_match_with_either_sizes_tag(api: ApiClient, alice: dict) -> None:
    image = {"image": b64(image_bytes("PNG"))}
    assert (await api.post(f"/user/update-image/{alice['id']}", image)).status == 200
    old_tag = (await api.get(f"/user/avatar/{alice['id']}/high")).headers["ETag"]
    assert (await api.post(f"/user/update-image/{alice['id']}", image)).status == 200  # another device's
    stale = await api.request("DELETE", f"/user/delete-image/{alice['id']}", headers=if_match(old_tag))
    assert (stale.status, stale.body) == (412, {"data": "Precondition failed", "code": 412})
    assert (await api.get("/user/me")).body["image_version"] is not None  # still there
    current = (await api.get(f"/user/avatar/{alice['id']}/scaled")).headers["ETag"]
    assert (await api.request("DELETE", f"/user/delete-image/{alice['id']}", headers=if_match(current))).status == 200
    gone = await api.request("DELETE", f"/user/delete-image/{alice['id']}", headers=if_match(current))
    assert gone.status == 404  # no image: as without the header
