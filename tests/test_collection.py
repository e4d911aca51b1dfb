"""The collection of owned volumes: add, update, delete, list, statistics, money, concurrency."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.catalog_data import series, volume
from tests.conftest import CommandCounter, RunningApp

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "Yotsuba to!", en="Yotsuba&!", de="Yotsuba&!", volumes=[volume(11, 1), volume(12, 2), volume(13, None)]),
    series(2, "Meitantei Conan", en="Case Closed", de="Detektiv Conan", volumes=[volume(21, 1), volume(22, 2)]),
    series(3, "Berserk", en="Berserk", de="Zorniger Krieger", volumes=[volume(31, 1)]),
    series(4, "Other Client", client=2, volumes=[volume(41, 1)]),
]
ITEM_NOT_FOUND = {"data": "Collection item not found", "code": 404}


async def add(api: ApiClient, volume_id: int, body: Any = None) -> str:
    reply = await api.post(f"/user/collection/add/{volume_id}", body)
    assert reply.status == 200, reply.body
    return reply.body["item_id"]


async def listing(api: ApiClient, **params: Any) -> dict[str, Any]:
    params.setdefault("client", 1)
    reply = await api.get("/user/collection?" + urlencode(params))
    assert reply.status == 200, reply.body
    return reply.body


def ids(page: dict[str, Any]) -> list[int]:
    return [v["id"] for v in page["volumes"]]


async def test_adding_answers_200_with_an_item_id(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/collection/add/11", {"price": 6.5, "date": "2024-05-01"})
    assert reply.status == 200
    assert reply.body["data"] == "Collection item added successfully" and reply.body["code"] == 200
    assert re.fullmatch(r"[0-9a-f]{24}", reply.body["item_id"])


async def test_an_item_has_the_contract_shape(api: ApiClient, alice: dict) -> None:
    item_id = await add(api, 21, {"price": 7.99, "date": "2024-05-01"})
    volume_json = (await listing(api, user_lang="de"))["volumes"][0]
    # The item's entity tag (If-Match of its update and delete): tests/test_conditional_requests.py.
    assert re.fullmatch(r'"[0-9a-f]{32}"', volume_json["collection"].pop("etag"))
    assert volume_json == {
        "id": 21, "name": "Volume 1", "series": {"id": 2, "name": "Detektiv Conan", "type": "Manga"},
        "language": "German", "release_date": "2020-01-01", "pages": 200, "nsfw": 0, "nsfw18": 0,
        "aspect_ratio": 0.7, "cover_path": "/covers/21.jpg",
        "collection": {"item_id": item_id, "buy_date": "2024-05-01", "price": 7.99}, "in_collection": True,
    }


async def test_adding_without_a_body_stores_unknown_price_and_date(api: ApiClient, alice: dict) -> None:
    await add(api, 11)
    entry = (await listing(api))["volumes"][0]["collection"]
    assert (entry["price"], entry["buy_date"]) == (None, None)


async def test_adding_a_volume_twice_answers_409(api: ApiClient, alice: dict) -> None:
    await add(api, 11)
    reply = await api.post("/user/collection/add/11")
    assert (reply.status, reply.body) == (409, {"data": "Volume already in collection", "code": 409})


async def test_adding_an_unknown_volume_answers_404(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/collection/add/999")
    assert (reply.status, reply.body) == (404, {"data": "Volume not found", "code": 404})


@pytest.mark.parametrize(
    "body, field",
    [({"price": -0.01}, "price"), ({"price": 100000.01}, "price"), ({"price": 1.999}, "price"),
     ({"price": "9.99"}, "price"), ({"price": True}, "price"), ({"date": "2024-02-30"}, "date"),
     ({"date": "2024-05"}, "date"), ({"date": 20240501}, "date"), ({"currency": "EUR"}, "currency")],
)
async def test_a_bad_price_or_date_answers_400(api: ApiClient, alice: dict, body: dict, field: str) -> None:
    reply = await api.post("/user/collection/add/11", body)
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")
    assert [e["field"] for e in reply.body["errors"]] == [field]
    assert (await listing(api))["max"] == 0


@pytest.mark.parametrize("price", [0, 100000, 0.01, 99999.99])
async def test_prices_at_the_edges_are_accepted(api: ApiClient, alice: dict, price: float) -> None:
    await add(api, 11, {"price": price})
    assert (await listing(api))["volumes"][0]["collection"]["price"] == price


@pytest.mark.parametrize("path, status, message", [("/user/collection/add/abc", 400, "Invalid parameters"),
                                                   ("/user/collection/add/0", 400, "Invalid parameters"),
                                                   ("/user/collection/add/", 400, "Required parameters missing")])
async def test_a_malformed_volume_id_answers_400(api: ApiClient, alice: dict, path: str, status: int,
                                                 message: str) -> None:
    reply = await api.post(path)
    assert (reply.status, reply.body["data"]) == (status, message)


async def test_update_changes_price_and_date(api: ApiClient, alice: dict) -> None:
    item_id = await add(api, 11, {"price": 5, "date": "2024-01-01"})
    reply = await api.post(f"/user/collection/update/{item_id}", {"price": 12.34, "date": "2024-06-30"})
    assert (reply.status, reply.body) == (200, {"data": "Collection item updated successfully", "code": 200})
    entry = (await listing(api))["volumes"][0]["collection"]
    assert {k: entry[k] for k in ("item_id", "buy_date", "price")} == \
        {"item_id": item_id, "buy_date": "2024-06-30", "price": 12.34}
    assert (await api.post(f"/user/collection/update/{item_id}", {"price": None, "date": None})).status == 200
    assert (await listing(api))["volumes"][0]["collection"]["price"] is None


@pytest.mark.parametrize("body", [{"price": 5}, {"date": "2024-01-01"}, {}, None])
async def test_update_needs_both_price_and_date(api: ApiClient, alice: dict, body: Any) -> None:
    item_id = await add(api, 11)
    reply = await api.post(f"/user/collection/update/{item_id}", body)
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")


async def test_updating_an_unknown_item_answers_404(api: ApiClient, alice: dict) -> None:
    for item_id in ("000000000000000000000000", "not-an-id", "x" * 200):
        reply = await api.post(f"/user/collection/update/{item_id}", {"price": 1, "date": "2024-01-01"})
        assert (reply.status, reply.body) == (404, ITEM_NOT_FOUND)


async def test_delete_removes_the_item(api: ApiClient, alice: dict) -> None:
    item_id = await add(api, 11)
    reply = await api.delete(f"/user/collection/delete/{item_id}")
    assert (reply.status, reply.body) == (200, {"data": "Collection item deleted successfully", "code": 200})
    assert (await listing(api))["max"] == 0
    assert (await api.delete(f"/user/collection/delete/{item_id}")).body == ITEM_NOT_FOUND


async def test_another_users_item_is_not_found_and_untouched(running: RunningApp, api: ApiClient, alice: dict) -> None:
    item_id = await add(api, 11, {"price": 3})
    bob = running.client()
    await bob.sign_up("bob")
    assert (await bob.post(f"/user/collection/update/{item_id}", {"price": 0, "date": None})).body == ITEM_NOT_FOUND
    assert (await bob.delete(f"/user/collection/delete/{item_id}")).body == ITEM_NOT_FOUND
    assert (await listing(bob))["volumes"] == []
    assert (await listing(api))["volumes"][0]["collection"]["price"] == 3


async def test_the_list_sorts_by_series_name_then_volume_order(api: ApiClient, alice: dict) -> None:
    for volume_id in (13, 22, 11, 31, 21, 12):
        await add(api, volume_id)
    assert ids(await listing(api)) == [31, 21, 22, 11, 12, 13]
    assert ids(await listing(api, order="name-desc")) == [11, 12, 13, 21, 22, 31]
    assert ids(await listing(api, order="name-asc", user_lang="German")) == [21, 22, 11, 12, 13, 31]
    by_body = await api.post("/user/collection", {"client": 1, "order": {"key": "name-desc"}, "user_lang": "de"})
    assert ids(by_body.body) == [31, 11, 12, 13, 21, 22]


@pytest.mark.parametrize("search, expected", [("conan", [21, 22]), ("DETEKTIV", [21, 22]), ("krieger", [31]),
                                              ("volume 2", [22, 12]), ("(", []), (".*", []), ("yotsuba&", [11, 12])])
async def test_search_matches_series_titles_and_volume_names_literally(api: ApiClient, alice: dict, search: str,
                                                                       expected: list[int]) -> None:
    for volume_id in (11, 12, 21, 22, 31):
        await add(api, volume_id)
    assert ids(await listing(api, search=search)) == expected


async def test_paging_reports_max_from_and_to(api: ApiClient, alice: dict) -> None:
    for volume_id in (11, 12, 13, 21, 22, 31):
        await add(api, volume_id)
    page = await listing(api, limit=2, offset=2)
    assert ids(page) == [22, 11] and (page["max"], page["from"], page["to"]) == (6, 2, 4)
    assert await listing(api, offset=10) == {"volumes": [], "max": 6, "from": 10, "to": 10}
    assert await listing(api, limit=0) == {"volumes": [], "max": 6, "from": 0, "to": 0}
    assert len((await listing(api, limit=500))["volumes"]) == 6


async def test_the_client_scopes_the_list(api: ApiClient, alice: dict) -> None:
    await add(api, 11)
    await add(api, 41)
    assert ids(await listing(api, client=1)) == [11]
    assert ids(await listing(api, client="2")) == [41]


@pytest.mark.parametrize("path", ["/user/collection", "/user/collection/stats/general"])
async def test_client_is_required(api: ApiClient, alice: dict, path: str) -> None:
    reply = await api.get(path)
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")
    reply = await api.get(path + "?client=abc")
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")


async def test_stats_sum_money_exactly(api: ApiClient, alice: dict) -> None:
    await add(api, 11, {"price": 0.10, "date": "2024-03-01"})
    await add(api, 12, {"price": 0.20, "date": "2023-12-24"})
    await add(api, 21, {"price": 19.99})
    await add(api, 41, {"price": 50, "date": "2020-01-01"})
    reply = await api.get("/user/collection/stats/general?client=1")
    assert reply.status == 200
    assert reply.body == {"total_items": 3, "total_spent": 20.29, "first_buy": "2023-12-24", "last_buy": "2024-03-01"}
    assert b'"total_spent":20.29' in reply.raw  # the exact decimal on the wire, not 20.290000000000003
    assert json.loads(reply.raw)["total_spent"] == 20.29


async def test_stats_of_an_empty_collection(api: ApiClient, alice: dict) -> None:
    reply = await api.get("/user/collection/stats/general?client=1")
    assert reply.body == {"total_items": 0, "total_spent": 0, "first_buy": None, "last_buy": None}


async def test_thirty_concurrent_adds_of_one_volume_store_one(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    replies = await asyncio.gather(*(api.post("/user/collection/add/22", {"price": 1}) for _ in range(30)))
    assert sorted(r.status for r in replies) == [200] + [409] * 29
    stored = await db.users.find_one({"_id": alice["id"]}, {"collection": 1})
    assert [item["volume_id"] for item in stored["collection"]] == [22]


@pytest.mark.parametrize("method, path", [("GET", "/user/collection?client=1"), ("POST", "/user/collection"),
                                          ("GET", "/user/collection/stats/general?client=1"),
                                          ("POST", "/user/collection/add/11"),
                                          ("POST", "/user/collection/update/abc"),
                                          ("DELETE", "/user/collection/delete/abc")])
async def test_every_collection_route_needs_a_session(api: ApiClient, method: str, path: str) -> None:
    reply = await api.request(method, path)
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


async def test_round_trips(api: ApiClient, alice: dict, commands: CommandCounter) -> None:
    costs = {}
    commands.reset()
    await add(api, 12)
    # The process's first add of a series also reads the catalog version and the series' keys (its
    # 18+ flag, for a reader who does not show 18+): what every later add takes from memory.
    costs["first add"] = commands.total
    commands.reset()
    item_id = await add(api, 11, {"price": 1})
    costs["add"] = commands.total
    for name, method, path, body in [
        # The process's first page also reads the keys of the volumes (100 ids a query), the
        # series' being known already: what every later page takes from memory.
        ("first list", "GET", "/user/collection?client=1&search=yotsuba", None),
        ("list", "GET", "/user/collection?client=1&search=yotsuba&order=name-desc", None),
        ("stats", "GET", "/user/collection/stats/general?client=1", None),
        ("update", "POST", f"/user/collection/update/{item_id}", {"price": 2, "date": None}),
        ("delete", "DELETE", f"/user/collection/delete/{item_id}", None),
    ]:
        commands.reset()
        assert (await api.request(method, path, json_body=body)).status == 200
        costs[name] = commands.total
    assert costs == {"first add": 7, "add": 5, "first list": 3, "list": 2, "stats": 1, "update": 5, "delete": 5}
