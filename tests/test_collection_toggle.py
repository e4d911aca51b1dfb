"""GET /volumes/toggle-collection/id/{id}: the web client's toggle, the same write as the collection
routes, and the guard that keeps a GET that writes from being sent by another site (web.same_origin).
The real browser's view of the guard is in tests/test_browser.py."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from storage.collection import TOGGLE_ATTEMPTS, CollectionStore
from storage.embedded_list import EmbeddedList
from tests.api_client import ApiClient
from tests.catalog_data import series, volume
from tests.conftest import FRONTEND_ORIGIN, CommandCounter, RunningApp

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "Yotsuba to!", volumes=[volume(11, 1), volume(12, 2), volume(13, 3, nsfw18=1)]),
    series(2, "Adult Title", nsfw18=1, volumes=[volume(21, 1)]),
    series(3, "Other Client", client=2, volumes=[volume(31, 1)]),
]
TEMPLATE = "/volumes/toggle-collection/id/{id}"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
REFUSED = {"data": "Cross-site request refused", "code": 403}
NOT_FOUND = {"data": "Volume not found", "code": 404}


async def toggle(api: ApiClient, volume_id: Any, query: str = "?client=1",
                 headers: dict[str, str] | None = None, method: str = "GET") -> Any:
    return await api.request(method, f"/volumes/toggle-collection/id/{volume_id}{query}",
                             headers=SAME_ORIGIN if headers is None else headers)


async def owned(api: ApiClient, client: int = 1) -> dict[int, dict[str, Any]]:
    reply = await api.get(f"/user/collection?client={client}")
    assert reply.status == 200, reply.body
    # Without the item's etag (tests/test_conditional_requests.py): what the toggle left.
    return {v["id"]: {k: x for k, x in v["collection"].items() if k != "etag"} for v in reply.body["volumes"]}


async def show_18_plus(db: AsyncDatabase, user_id: str) -> None:
    await db.users.update_one({"_id": user_id}, {"$set": {"age_verified": True,
                                                          "settings.nsfw-mode": "settings.nsfw.show-nsfw-18"}})


# ---- the toggle ----

async def test_a_toggle_adds_a_volume_without_price_or_date_and_says_so(api: ApiClient, alice: dict) -> None:
    reply = await toggle(api, 11)
    assert reply.status == 200, reply.body
    item_id = reply.body.pop("item_id")
    assert reply.body == {"data": "Collection Status updated", "code": 200, "in_collection": True}
    assert re.fullmatch(r"[0-9a-f]{24}", item_id)
    assert await owned(api) == {11: {"item_id": item_id, "buy_date": None, "price": None}}


async def test_a_second_toggle_removes_it_and_says_so(api: ApiClient, alice: dict) -> None:
    assert (await toggle(api, 11)).body["in_collection"] is True
    reply = await toggle(api, 11)
    assert (reply.status, reply.body) == (200, {"data": "Collection Status updated", "code": 200,
                                                "in_collection": False, "item_id": None})
    assert await owned(api) == {}


async def test_a_toggle_removes_an_item_the_add_route_made_and_leaves_the_others(api: ApiClient, alice: dict) -> None:
    for volume_id in (11, 12):
        assert (await api.post(f"/user/collection/add/{volume_id}", {"price": 5, "date": "2024-01-02"})).status == 200
    assert (await toggle(api, 11)).body["in_collection"] is False
    assert list(await owned(api)) == [12]
    # What the toggle added, the item routes change and delete like any other item.
    item_id = (await toggle(api, 11)).body["item_id"]
    assert (await api.post(f"/user/collection/update/{item_id}", {"price": 7, "date": None})).status == 200
    assert (await owned(api))[11]["price"] == 7
    assert (await api.delete(f"/user/collection/delete/{item_id}")).status == 200
    assert list(await owned(api)) == [12]


async def test_the_web_clients_fetch_from_its_allowed_origin_toggles(api: ApiClient, alice: dict) -> None:
    # What fetch() from the web client sends: its Origin (and Sec-Fetch-Site: same-site or cross-site).
    for fetch_site in ("same-site", "cross-site", None):
        headers = {"Origin": FRONTEND_ORIGIN, **({"Sec-Fetch-Site": fetch_site} if fetch_site else {})}
        reply = await toggle(api, 11, headers=headers)
        assert reply.status == 200, (fetch_site, reply.body)
        assert reply.headers["Access-Control-Allow-Origin"] == FRONTEND_ORIGIN  # it can read the answer
    assert list(await owned(api)) == [11]  # three toggles: in


async def test_a_page_of_the_services_own_origin_toggles(running: RunningApp, api: ApiClient, alice: dict) -> None:
    reply = await toggle(api, 11, headers={"Origin": running.base_url, "Sec-Fetch-Site": "same-origin"})
    assert reply.status == 200 and reply.body["in_collection"] is True


async def test_two_toggles_at_once_add_and_remove_and_never_make_two_items(
    running: RunningApp, api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    for _ in range(5):
        replies = await asyncio.gather(toggle(api, 11), toggle(api, 11))
        assert [r.status for r in replies] == [200, 200], [r.body for r in replies]
        assert sorted(r.body["in_collection"] for r in replies) == [False, True]
        stored = await db.users.find_one({"_id": alice["id"]}, {"collection": 1})
        assert stored is not None and stored.get("collection", []) == []


async def test_a_toggle_that_loses_every_race_answers_500_and_stops(
    api: ApiClient, alice: dict, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another request's write lands between the two steps every time: before each remove, a rival
    # removes the item; before each add, a rival adds one.
    rounds = 0
    remove, add = EmbeddedList.remove, CollectionStore.add
    rival = {"item_id": "rival", "volume_id": 11, "series_id": 1, "client": 1, "price_cents": None,
             "buy_date": None, "added": None}

    async def remove_after_a_rival(self: EmbeddedList, user_id: str, key_value: Any, now: Any,
                                   by: str | None = None, session: Any = None) -> Any:
        nonlocal rounds
        rounds += 1
        await db.users.update_one({"_id": user_id}, {"$pull": {"collection": {"volume_id": key_value}}})
        return await remove(self, user_id, key_value, now, by, session)

    async def add_after_a_rival(self: CollectionStore, user_id: str, *args: Any) -> Any:
        await db.users.update_one({"_id": user_id}, {"$push": {"collection": rival}})
        return await add(self, user_id, *args)

    monkeypatch.setattr(EmbeddedList, "remove", remove_after_a_rival)
    monkeypatch.setattr(CollectionStore, "add", add_after_a_rival)
    reply = await toggle(api, 11)
    assert (reply.status, reply.body) == (500, {"data": "Could not update collection status", "code": 500})
    assert rounds == TOGGLE_ATTEMPTS


# ---- what it refuses ----

async def test_without_client_answers_400_and_changes_nothing(api: ApiClient, alice: dict) -> None:
    reply = await toggle(api, 11, query="")
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")
    for bad in ("?client=0", "?client=x", "?client=1&extra=1"):
        reply = await toggle(api, 11, query=bad)
        assert (reply.status, reply.body["data"]) == (400, "Invalid parameters"), bad
    assert await owned(api) == {}


@pytest.mark.parametrize("path_id, message", [("abc", "Invalid parameters"), ("0", "Invalid parameters"),
                                              ("", "Required parameters missing")])
async def test_a_malformed_volume_id_answers_400(api: ApiClient, alice: dict, path_id: str, message: str) -> None:
    reply = await toggle(api, path_id)
    assert (reply.status, reply.body["data"]) == (400, message)


async def test_without_a_session_answers_401(running: RunningApp, catalog: None) -> None:
    reply = await toggle(running.client(), 11)
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


@pytest.mark.parametrize("volume_id", [999, 31, 13, 21], ids=["unknown", "of another client", "18+ volume",
                                                               "of an 18+ series"])
async def test_a_volume_the_reader_cannot_have_answers_404(api: ApiClient, alice: dict, volume_id: int) -> None:
    reply = await toggle(api, volume_id)
    assert (reply.status, reply.body) == (404, NOT_FOUND)
    assert await owned(api) == {}


@pytest.mark.parametrize("volume_id", [13, 21], ids=["18+ volume", "of an 18+ series"])
async def test_the_add_route_answers_an_18_plus_volume_as_the_toggle_does(api: ApiClient, alice: dict,
                                                                         db: AsyncDatabase, volume_id: int) -> None:
    # By id as by toggle, for a reader who does not show 18+, the volume is not there (the catalog
    # never tells that it exists); for one who does, it is added.
    reply = await api.post(f"/user/collection/add/{volume_id}", {"price": 5})
    assert (reply.status, reply.body) == (404, NOT_FOUND)
    assert await owned(api) == {}
    await show_18_plus(db, alice["id"])
    assert (await api.post(f"/user/collection/add/{volume_id}", {"price": 5})).status == 200
    assert set(await owned(api)) == {volume_id}


async def test_a_reader_who_shows_18_plus_toggles_18_plus_volumes(api: ApiClient, alice: dict,
                                                                 db: AsyncDatabase) -> None:
    await show_18_plus(db, alice["id"])
    assert (await toggle(api, 13)).body["in_collection"] is True
    assert (await toggle(api, 21)).body["in_collection"] is True
    assert set(await owned(api)) == {13, 21}


async def test_the_other_clients_volume_is_toggled_with_its_client(api: ApiClient, alice: dict) -> None:
    assert (await toggle(api, 31, query="?client=2")).body["in_collection"] is True
    assert list(await owned(api, client=2)) == [31]


# ---- the guard ----

REFUSED_HEADERS = [
    ({}, "no proof at all (an old browser, curl)"),
    ({"Sec-Fetch-Site": "cross-site"}, "a link or a form on another site"),
    ({"Sec-Fetch-Site": "same-site"}, "a link, a form or an image on a sibling host"),
    ({"Sec-Fetch-Site": "none"}, "an address typed in"),
    ({"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, "fetch() from another site"),
    ({"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}, "a contradiction"),
    ({"Origin": "null", "Sec-Fetch-Site": "cross-site"}, "a sandboxed frame"),
]


@pytest.mark.parametrize("headers, sender", REFUSED_HEADERS, ids=[sender for _, sender in REFUSED_HEADERS])
async def test_a_request_without_proof_of_its_origin_is_refused_and_writes_nothing(
    api: ApiClient, alice: dict, commands: CommandCounter, headers: dict[str, str], sender: str
) -> None:
    assert (await api.post("/user/collection/add/12")).status == 200
    before = await owned(api)
    for volume_id in (11, 12):  # one out, one in: neither may change
        commands.reset()
        reply = await toggle(api, volume_id, headers=headers)
        assert (reply.status, reply.body) == (403, REFUSED), sender
        # Refused once the session is read (one query), before anything is written.
        assert commands.log == ["aggregate"], commands.log
    assert await owned(api) == before


async def test_head_is_not_offered_since_this_get_writes(api: ApiClient, alice: dict) -> None:
    for proof in ("cross-site", "same-origin"):
        reply = await toggle(api, 11, headers={"Sec-Fetch-Site": proof}, method="HEAD")
        assert reply.status == 405 and reply.raw == b"", proof
        assert reply.headers["Allow"] == "GET, OPTIONS"
    assert await owned(api) == {}


async def test_without_a_session_the_401_comes_first(running: RunningApp, catalog: None) -> None:
    reply = await toggle(running.client(), 11, headers={"Sec-Fetch-Site": "cross-site"})
    assert reply.status == 401


async def test_the_refusal_is_documented_and_no_other_get_is_guarded(api: ApiClient) -> None:
    assert await api.documented_answer("GET", TEMPLATE, 403) == REFUSED
    document = (await api.get("/openapi.json")).body
    guarded = {(method, path) for path, item in document["paths"].items() for method, op in item.items()
               if "Cross-site request refused" in op.get("description", "")}
    assert guarded == {("get", TEMPLATE)}
    assert "Not idempotent" in document["paths"][TEMPLATE]["get"]["description"]


async def test_a_toggle_costs_the_session_query_and_one_transaction_to_remove_two_to_add(
    api: ApiClient, alice: dict, commands: CommandCounter
) -> None:
    """Each step is its write and its change (storage.changes) in one transaction, which first
    reads the entry and the counters; a removal whose read finds no item writes nothing."""
    assert (await toggle(api, 12)).status == 200  # the series' 18+ flag is now among the process's catalog keys
    commands.reset()
    assert (await toggle(api, 11)).body["in_collection"] is True
    assert commands.targets() == [("aggregate", "users"),
                                  ("find", "users"), ("commitTransaction", 1),  # no item to remove
                                  ("find", "users"), ("update", "users"), ("insert", "changes"),
                                  ("commitTransaction", 1)]  # added
    commands.reset()
    assert (await toggle(api, 11)).body["in_collection"] is False
    assert commands.targets() == [("aggregate", "users"), ("find", "users"), ("update", "users"),
                                  ("insert", "changes"), ("commitTransaction", 1)]  # removed