"""The catalog's sort and search keys kept in each process (storage.catalog_keys): read 100 ids a
query, dropped when an import changes the catalog, so the next page (in any process) shows the
new titles and aliases; and what a collection page and the collection's statistics cost."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from storage import catalog_keys
from storage.catalog_keys import IN_CHUNK, CatalogKeys, catalog_version, publish_catalog_change
from storage.session_reads import FIGURES
from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import CommandCounter, StartApp

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "Alpha", de="Zebra", volumes=[volume(11, 1), volume(12, 2)]),
    series(2, "Beta", de="Yak", volumes=[volume(21, 1)]),
    series(3, "Gamma", de="Xylophon", volumes=[volume(31, 1)]),
]


async def reader(api: ApiClient, db: AsyncDatabase) -> None:
    await load_catalog(db, CATALOG)
    await api.sign_up("reader")
    for series_id in (1, 2, 3):
        assert (await api.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
    for volume_id in (11, 12, 21, 31):
        assert (await api.post(f"/user/collection/add/{volume_id}")).status == 200


async def history_ids(api: ApiClient, **params: Any) -> list[int]:
    reply = await api.get("/user/reading-history?" + urlencode(params))
    assert reply.status == 200, reply.body
    return [item["id"] for item in reply.body["series"]]


async def collection_ids(api: ApiClient, **params: Any) -> list[int]:
    reply = await api.get("/user/collection?" + urlencode({"client": 1, **params}))
    assert reply.status == 200, reply.body
    return [item["id"] for item in reply.body["volumes"]]


async def test_keys_are_read_100_ids_a_query_and_then_kept(db: AsyncDatabase) -> None:
    count = 2 * IN_CHUNK + 50
    await db.series.insert_many([{"_id": i, "sort_titles": {"en": f"t{i}"}, "search_text": [f"t{i}"]}
                                 for i in range(1, count + 1)])
    keys = CatalogKeys(db)
    found = await keys.series(range(1, count + 11))  # ten ids the catalog lacks
    assert keys.loads == 3
    assert found.of[7].sort_title("de") == "t7" and found.of[count + 5] is None
    again = await keys.series(range(1, count + 11))
    assert keys.loads == 3 and again.of[count].matches(f"t{count}")


async def test_the_table_is_bounded_and_starts_over_beyond_its_limit(db: AsyncDatabase,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    await db.series.insert_many([{"_id": i, "sort_titles": {"en": f"t{i}"}, "search_text": [f"t{i}"]}
                                 for i in range(1, 301)])
    monkeypatch.setattr(catalog_keys, "_SERIES", dataclasses.replace(catalog_keys._SERIES, limit=250))
    keys = CatalogKeys(db)
    found = await keys.series(range(1, 301))
    assert all(found.of[i] is not None for i in range(1, 301))  # the caller's keys stay whole
    loads = keys.loads
    await keys.series([1])
    assert keys.loads == loads + 1  # the table started over: read again


async def test_a_catalog_change_drops_the_keys_and_reports_the_page_as_stale(db: AsyncDatabase) -> None:
    await db.series.insert_one({"_id": 1, "sort_titles": {"en": "old"}, "search_text": ["old"]})
    keys = CatalogKeys(db)
    before = await keys.series([1])
    await db.series.update_one({"_id": 1}, {"$set": {"sort_titles": {"en": "new"}}})
    await publish_catalog_change(db)
    assert await catalog_version(db) == before.version + 1
    found, current = await keys.read_current(db.series, [{"$match": {"_id": 1}}], before.version)
    assert [d["_id"] for d in found] == [1] and current is False
    after = await keys.series([1])
    assert after.version == before.version + 1 and after.of[1].sort_title("en") == "new"
    _, current = await keys.read_current(db.series, [{"$match": {"_id": 1}}], after.version)
    assert current is True


async def test_a_reimport_shows_new_titles_and_aliases_in_the_next_page_of_every_process(
    db: AsyncDatabase, start_app: StartApp
) -> None:
    first, second = (await start_app()).client(), (await start_app()).client()
    await reader(first, db)
    await second.login("reader")
    for api in (first, second):  # both processes hold the keys
        assert await history_ids(api, order="name-asc", user_lang="de") == [3, 2, 1]
        assert await history_ids(api, search="omega") == []
        assert await collection_ids(api, user_lang="de") == [31, 21, 11, 12]
    await load_catalog(db, [series(1, "Alpha", de="Aal", en="Omega", volumes=[volume(11, 2), volume(12, 1)]),
                            *CATALOG[1:]])
    for api in (first, second):
        assert await history_ids(api, order="name-asc", user_lang="de") == [1, 3, 2]
        assert await history_ids(api, search="omega") == [1]
        assert await collection_ids(api, user_lang="de") == [12, 11, 31, 21]
        assert await collection_ids(api, search="omega") == [12, 11]


async def test_the_statistics_are_computed_by_the_database(api: ApiClient, db: AsyncDatabase,
                                                           commands: CommandCounter) -> None:
    await reader(api, db)
    commands.reset()
    reply = await api.get("/user/collection/stats/general?client=1")
    assert reply.status == 200 and reply.body["total_items"] == 4
    [session_read] = commands.sent
    # One round trip whose projection computes the figures: the items themselves never travel.
    assert "collection" not in session_read["projection"] and FIGURES in session_read["projection"]
