"""GET/POST /user/reading-history: orders, search, paging, languages, clients, shape, isolation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.catalog_data import load_catalog, series
from tests.conftest import CommandCounter, RunningApp

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "Yotsuba to!", en="Yotsuba&!", de="Yotsuba&!"),
    series(2, "Meitantei Conan", en="Case Closed", de="Detektiv Conan",
           descriptions={"English": "A detective in a child's body.", "German": "Ein Detektiv im Körper eines Kindes."}),
    series(3, "Berserk", en="Berserk"),
    series(4, "Shingeki no Kyojin", en="Attack on Titan", de="Titan-Angriff"),
    series(5, "A.B Test (1)"),
    series(6, "Other Client", client=2),
    series(7, "Zeta", volumes=[]),
]
UPDATED_FROM = datetime(2024, 6, 1, tzinfo=timezone.utc)
BASE = {"visibility": "public", "progressType": "chapters", "progress": 1, "status": "started"}
# Added in this order, with last_update times that follow it: update order is 3, 1, 5, 2, 7, 4, 6.
STATUSES: list[tuple[int, dict[str, Any]]] = [
    (3, {"priority": "mid", "score": 10, "end": "2024-02-01"}),
    (1, {"priority": "high", "score": 8, "start": "2024-01"}),
    (5, {"priority": "low", "start": "2022"}),
    (2, {"priority": "low", "score": 0, "start": "2023-05-02", "end": "2023-06"}),
    (7, {"priority": "mid", "score": 3, "start": "2021-12-31", "end": "2022-01-01"}),
    (4, {"priority": "high", "score": 8, "start": "2024-01", "end": "2024"}),
    (6, {"priority": "mid", "score": 5, "client": 2}),
]

EXPECTED_ORDERS = {
    "update-desc": [6, 4, 7, 2, 5, 1, 3],
    "update-asc": [3, 1, 5, 2, 7, 4, 6],
    "priority-asc": [2, 5, 3, 6, 7, 1, 4],
    "priority-desc": [1, 4, 3, 6, 7, 2, 5],
    "score-asc": [7, 6, 1, 4, 3, 2, 5],
    "score-desc": [3, 1, 4, 6, 7, 2, 5],
    "start-date-asc": [7, 5, 2, 1, 4, 3, 6],
    "start-date-desc": [1, 4, 2, 5, 7, 3, 6],
    "end-date-asc": [7, 2, 4, 3, 1, 5, 6],
    "end-date-desc": [3, 4, 2, 7, 1, 5, 6],
    "name-asc": [5, 4, 3, 2, 6, 1, 7],
    "name-desc": [7, 1, 6, 2, 3, 4, 5],
}


@pytest_asyncio.fixture
async def alice(api: ApiClient, db: AsyncDatabase) -> dict[str, Any]:
    await load_catalog(db, CATALOG)
    user = await api.sign_up("alice")
    for series_id, fields in STATUSES:
        body = {**BASE, "client": 1, **fields}
        assert (await api.post(f"/user/reading-status/add/{series_id}", body)).status == 200
    # Adds within one millisecond would share a last_update (stored at millisecond precision):
    # the update order is written here, a second apart and in the past, not left to the clock.
    # One write for all seven (each write of the user document is a round trip of its own).
    written = await db.users.update_one(
        {"_id": user["id"]},
        {"$set": {f"statuses.$[s{series_id}].last_update": UPDATED_FROM + timedelta(seconds=second)
                  for second, (series_id, _) in enumerate(STATUSES)}},
        array_filters=[{f"s{series_id}.series_id": series_id} for series_id, _ in STATUSES])
    assert written.modified_count == 1
    stored = await db.users.find_one({"_id": user["id"]}, {"statuses": 1})
    assert sorted((s["last_update"], s["series_id"]) for s in stored["statuses"]) == [
        (UPDATED_FROM + timedelta(seconds=second), series_id)
        for second, (series_id, _) in enumerate(STATUSES)]
    return user


async def history(api: ApiClient, **params: Any) -> dict[str, Any]:
    reply = await api.get("/user/reading-history?" + urlencode(params))
    assert reply.status == 200, reply.body
    return reply.body


def ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["series"]]


async def test_the_default_order_is_update_desc(api: ApiClient, alice: dict) -> None:
    assert ids(await history(api)) == EXPECTED_ORDERS["update-desc"]


@pytest.mark.parametrize("order", list(EXPECTED_ORDERS))
async def test_each_order_sorts_with_missing_values_last(api: ApiClient, alice: dict, order: str) -> None:
    assert ids(await history(api, order=order)) == EXPECTED_ORDERS[order]


async def test_name_orders_use_the_localized_title(api: ApiClient, alice: dict) -> None:
    assert ids(await history(api, order="name-asc", user_lang="de")) == [5, 3, 2, 6, 4, 1, 7]
    assert ids(await history(api, order="name-desc", user_lang="German")) == [7, 1, 4, 6, 2, 3, 5]


async def test_the_order_is_accepted_as_a_key_object_in_the_body(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/reading-history", {"order": {"key": "score-desc"}})
    assert ids(reply.body) == EXPECTED_ORDERS["score-desc"]


@pytest.mark.parametrize("user_lang", ["de", "DE", "German", "german", "ger", "deu"])
async def test_user_lang_accepts_codes_and_names(api: ApiClient, alice: dict, user_lang: str) -> None:
    page = await history(api, user_lang=user_lang, client=1)
    conan = next(item for item in page["series"] if item["id"] == 2)
    assert conan["alias"] == "Detektiv Conan"
    assert conan["description"] == "Ein Detektiv im Körper eines Kindes."


async def test_titles_fall_back_to_english_then_to_the_name(api: ApiClient, alice: dict) -> None:
    items = {item["id"]: item for item in (await history(api, user_lang="fr"))["series"]}
    assert items[2]["alias"] == "Case Closed" and items[2]["description"] == "A detective in a child's body."
    assert items[5]["alias"] == "A.B Test (1)" and items[5]["description"] is None
    german = {item["id"]: item for item in (await history(api, user_lang="de"))["series"]}
    assert german[3]["alias"] == "Berserk"  # no German title: English


async def test_an_item_has_the_contract_shape(api: ApiClient, alice: dict) -> None:
    items = {item["id"]: item for item in (await history(api))["series"]}
    conan = items[2]
    assert set(conan) == {"id", "name", "type", "slug", "origin", "client", "alias", "description", "volume",
                          "average_rating", "rating_count", "reading-history"}
    assert (conan["name"], conan["type"], conan["slug"], conan["origin"], conan["client"]) == \
        ("Meitantei Conan", "Manga", "series-2", "Japanese", 1)
    assert conan["volume"] == {"id": 21, "cover_path": "/covers/21.jpg", "nsfw": 0, "nsfw18": 0, "aspect_ratio": 0.7}
    assert items[7]["volume"] is None
    assert (conan["average_rating"], conan["rating_count"]) == (None, 0)
    assert conan["reading-history"] == (await api.get("/user/reading-status/id/2")).body


async def test_client_filters_the_list(api: ApiClient, alice: dict) -> None:
    assert ids(await history(api, client=1)) == [4, 7, 2, 5, 1, 3]
    assert ids(await history(api, client="2")) == [6]
    assert (await history(api, client=3))["series"] == []


@pytest.mark.parametrize(
    "search, expected",
    [("conan", [2]), ("CONAN", [2]), ("detektiv", [2]), ("Case Closed", [2]), ("titan", [4]),
     (".", [5]), ("(1)", [5]), ("a.b", [5]), (".*", []), ("[", []), ("\\", []), ("$", []), ("^y", []),
     ("  berserk ", [3])],
)
async def test_search_matches_name_and_aliases_as_literal_text(api: ApiClient, alice: dict, search: str,
                                                               expected: list[int]) -> None:
    assert ids(await history(api, search=search)) == expected


async def test_search_combines_with_orders_and_paging(api: ApiClient, alice: dict) -> None:
    page = await history(api, search="e", order="score-desc", limit=2)
    # Every series but Yotsuba has an "e" in its name or a title.
    assert ids(page) == [3, 4] and page["max"] == 6
    page = await history(api, search="e", order="name-asc", limit=2, offset=2)
    assert ids(page) == [3, 2] and (page["max"], page["from"], page["to"]) == (6, 2, 4)


async def test_status_keeps_only_the_entries_of_that_status_and_max_counts_them(api: ApiClient, alice: dict) -> None:
    stored = dict(STATUSES)
    changed = {3: "completed", 5: "completed", 4: "paused"}
    for series_id, status in changed.items():
        body = {**BASE, "client": 1, **stored[series_id], "status": status}
        assert (await api.post(f"/user/reading-status/update/{series_id}", body)).status == 200
    status_of = {series_id: changed.get(series_id, "started") for series_id, _ in STATUSES}
    for status in ("started", "completed", "paused", "dropped", "planned"):
        page = await history(api, status=status, order="name-asc")
        expected = [i for i in EXPECTED_ORDERS["name-asc"] if status_of[i] == status]
        assert (ids(page), page["max"]) == (expected, len(expected)), status
        assert all(item["reading-history"]["status"] == status for item in page["series"])
    # With the client, a search and paging: started entries of client 1 with an "e" (not Yotsuba).
    page = await history(api, status="started", client=1, search="e", order="name-asc", limit=1, offset=1)
    assert (ids(page), page["max"], page["from"], page["to"]) == ([7], 2, 1, 2)
    # The POST form takes it too, also as the web client's key object.
    posted = await api.post("/user/reading-history", {"status": {"key": "completed"}, "order": "name-asc"})
    assert (posted.status, ids(posted.body)) == (200, [5, 3])


async def test_paging_reports_max_from_and_to(api: ApiClient, alice: dict) -> None:
    page = await history(api, limit=2, offset=1)
    assert ids(page) == [4, 7] and (page["max"], page["from"], page["to"]) == (7, 1, 3)


async def test_an_offset_past_the_end_answers_an_empty_page(api: ApiClient, alice: dict) -> None:
    page = await history(api, offset=50)
    assert page == {"series": [], "max": 7, "from": 50, "to": 50}


async def test_limit_zero_answers_only_the_count(api: ApiClient, alice: dict) -> None:
    assert await history(api, limit=0) == {"series": [], "max": 7, "from": 0, "to": 0}


async def test_limit_is_capped_at_100(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    await load_catalog(db, [series(100 + i, f"Bulk {i:03}") for i in range(120)])
    now = datetime.now(timezone.utc)
    entries = [{"series_id": 100 + i, "client": 1, "visibility": "private", "progress_type": "chapters",
                "progress": 0, "status": "started", "priority": "low", "last_update": now} for i in range(120)]
    await db.users.update_one({"_id": alice["id"]}, {"$push": {"statuses": {"$each": entries}}})
    page = await history(api, limit=1000)
    assert len(page["series"]) == 100 and (page["max"], page["to"]) == (127, 100)
    assert len((await history(api))["series"]) == 20


async def test_the_post_form_answers_like_the_get_form(api: ApiClient, alice: dict) -> None:
    params = {"order": "name-asc", "user_lang": "de", "limit": 3, "offset": 1, "client": 1}
    by_body = await api.post("/user/reading-history", params)
    assert by_body.status == 200 and by_body.body == await history(api, **params)


async def test_an_empty_list_answers_an_empty_page(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("newbie")
    assert await history(api) == {"series": [], "max": 0, "from": 0, "to": 0}
    assert await history(api, order="name-asc", search="x") == {"series": [], "max": 0, "from": 0, "to": 0}


async def test_each_user_sees_only_their_own_list(running: RunningApp, api: ApiClient, alice: dict) -> None:
    bob = running.client()
    await bob.sign_up("bob")
    assert (await bob.post("/user/reading-status/add/3", {**BASE, "priority": "low", "client": 1})).status == 200
    assert ids(await history(bob)) == [3]
    assert len((await history(api))["series"]) == 7


@pytest.mark.parametrize(
    "query, field",
    [("limit=-1", "limit"), ("limit=abc", "limit"), ("offset=-5", "offset"), ("order=newest", "order"),
     ("search=" + "x" * 101, "search"), ("client=abc", "client"), ("client=0", "client"), ("color=red", "color"),
     ("status=reading", "status"), ("status=", "status"), ("status=Started", "status")],
)
async def test_malformed_parameters_answer_400(api: ApiClient, alice: dict, query: str, field: str) -> None:
    reply = await api.get(f"/user/reading-history?{query}")
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")
    assert [e["field"] for e in reply.body["errors"]] == [field]


async def test_the_history_needs_a_session(api: ApiClient) -> None:
    for method in ("GET", "POST"):
        reply = await api.request(method, "/user/reading-history")
        assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


@pytest.mark.parametrize("order", ["update-desc", "name-asc", "score-asc"])
async def test_the_history_costs_two_round_trips(api: ApiClient, alice: dict, commands: CommandCounter,
                                                  order: str) -> None:
    await history(api, order=order, search="e", user_lang="de")  # the process learns the catalog's keys
    for query in ({"order": order, "search": "e", "user_lang": "de"}, {"order": order}):
        commands.reset()
        await history(api, **query)
        # The session with the statuses, then the page's series (with the catalog version).
        assert commands.total == 2, (query, commands.log)


async def test_keys_are_read_once_per_process_100_series_a_query(api: ApiClient, alice: dict,
                                                                  commands: CommandCounter) -> None:
    commands.reset()
    await history(api, order="name-asc")
    # The first name page also reads the catalog version and the keys of its 7 series (one query).
    assert commands.targets() == [("find", "users"), ("find", "catalog_meta"), ("find", "series"),
                                  ("aggregate", "series")]
    commands.reset()
    await history(api, order="name-desc", search="a", user_lang="fr")
    assert commands.targets() == [("find", "users"), ("aggregate", "series")]


@pytest.mark.parametrize("order", list(EXPECTED_ORDERS))
async def test_with_a_search_each_order_sorts_the_same_way(api: ApiClient, alice: dict, order: str) -> None:
    # A search takes the aggregation path; without one, status orders are sorted from the
    # statuses alone. Both must agree. Every series but Yotsuba (1) has an "e" in a title.
    expected = [series_id for series_id in EXPECTED_ORDERS[order] if series_id != 1]
    assert ids(await history(api, order=order, search="e")) == expected


async def test_a_status_whose_series_left_the_catalog_counts_the_same_in_every_order(
    api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    # One rule for both ways a page is made (statuses alone, or joined to the catalog): the status
    # still counts and keeps its place; the page shows only what has a series. (They disagreed.)
    await db.series.delete_one({"_id": 2})
    for order in EXPECTED_ORDERS:
        page = await history(api, order=order)
        assert page["max"] == 7, order
        assert ids(page) == [i for i in EXPECTED_ORDERS[order] if i != 2], order
    named = await history(api, order="name-asc", limit=6)  # the missing name comes last
    assert ids(named) == [5, 4, 3, 6, 1, 7] and named["max"] == 7
    searched = await history(api, search="Conan")  # a search only matches series that exist
    assert (ids(searched), searched["max"]) == ([], 0)


async def test_a_post_with_no_body_is_the_defaults_and_a_null_body_is_400(api: ApiClient, alice: dict) -> None:
    """The web client's POST form: no body is no fields; `null`, like any body that is not an
    object, is refused."""
    assert (await api.request("POST", "/user/reading-history")).status == 200
    refused = await api.request("POST", "/user/reading-history", body="null",
                                headers={"Content-Type": "application/json"})
    assert (refused.status, refused.body["data"], refused.body["errors"][0]["field"]) == (400, "Invalid parameters", "body")
