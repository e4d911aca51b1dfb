"""The catalog's list routes: `GET /series` (orders, paging, search, filters, 18+ in pages and
counts) and `GET /series/quick-search`, and that a page reads only its own series."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from bench import catalog_gen
from storage.catalog import CatalogSeries, series_document
from storage.indexes import prepare_database
from storage.series_browse import mark_listing_stale, publish_listing
from storage.series_listing import SERIES_FIELDS
from tests.api_client import ApiClient
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import CommandCounter, RunningApp
from tests.test_catalog_detail import show_18_plus

pytestmark = pytest.mark.asyncio


def titled(id: int, name: str, *aliases: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return series(id, name, aliases=[{"title": title, "language": language} for title, language in aliases], **extra)


CATALOG = [
    titled(1, "Shingeki no Kyojin", ("Attack on Titan", "English"), ("Titanen-Angriff", "German"),
           ("進撃の巨人", "Japanese"), descriptions={"English": "Walls.", "German": "Mauern."}, tags=["action"],
           volumes=[volume(12, 2), volume(11, 1)]),
    titled(2, "Pokémon Adventures", volumes=[]),
    titled(3, "Na Honjaman Rebel-eob", ("Solo Leveling", "English"), ("나 혼자만 레벨업", "Korean"), type="Manhwa",
           origin="Korean"),
    titled(4, "Berserk"),
    titled(5, "Adult Title", nsfw18=1),
    titled(6, "Dragon Ball"),
    titled(7, "A Dragon's Tale", type="Light Novel"),
    titled(8, "Snapdragon"),
    titled(9, "Asterix", type="Comic", origin="French", client=2),
]
# Name order in English (by the English title where there is one), and without the 18+ series.
BY_ENGLISH_NAME = [7, 5, 1, 4, 6, 2, 8, 3]
LISTED = [7, 1, 4, 6, 2, 8, 3]


async def listed(api: ApiClient, **query: Any) -> dict[str, Any]:
    reply = await api.get("/series?" + urlencode({"client": 1, **query}))
    assert reply.status == 200, reply.body
    return reply.body


def ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["series"]]


async def quick(api: ApiClient, search: str, **query: Any) -> list[int]:
    reply = await api.get("/series/quick-search?" + urlencode({"search": search, **query}))
    assert reply.status == 200, reply.body
    return [item["id"] for item in reply.body]


@pytest_asyncio.fixture
async def shows_18_plus(running: RunningApp, db: AsyncDatabase, catalog: None) -> ApiClient:
    reader = running.client()
    await show_18_plus(db, (await reader.sign_up("reader"))["id"])
    return reader


async def test_an_item_has_the_list_shape(api: ApiClient, catalog: None) -> None:
    page = await listed(api, lang="German", search="titan")
    assert page == {"series": [{
        "id": 1, "name": "Shingeki no Kyojin", "type": "Manga", "slug": "series-1", "public": 1,
        "relation_diagram": None, "client": 1, "origin": "Japanese",
        "aliases": ["Attack on Titan", "Titanen-Angriff", "進撃の巨人"], "alias": "Titanen-Angriff",
        "description": "Mauern.", "tags": ["action"],
        "volume": {"id": 11, "cover_path": "/covers/11.jpg", "nsfw": 0, "nsfw18": 0, "aspect_ratio": 0.7},
        "average_rating": None, "rating_count": 0}], "max": 1, "from": 0, "to": 1}
    assert (await listed(api, search="pokemon"))["series"][0]["volume"] is None


async def test_the_rating_is_the_stored_aggregate(api: ApiClient, catalog: None) -> None:
    await api.sign_up("alice")
    assert (await api.post("/user/series-rating/add/4", {"rating": 8.5})).status == 200
    item = (await listed(api, search="berserk"))["series"][0]
    assert (item["average_rating"], item["rating_count"]) == (8.5, 1)


async def test_orders_by_name_in_the_language_asked_and_by_added(api: ApiClient, catalog: None) -> None:
    assert ids(await listed(api)) == LISTED  # name-asc by default
    assert ids(await listed(api, order="name-desc")) == LISTED[::-1]
    # German sorts Shingeki no Kyojin by its German title, "Titanen-Angriff"; Japanese by 進撃の巨人,
    # after every Latin letter. French has no title of its own: English.
    assert ids(await listed(api, lang="German")) == [7, 4, 6, 2, 8, 3, 1]
    assert ids(await listed(api, user_lang="de")) == [7, 4, 6, 2, 8, 3, 1]
    assert ids(await listed(api, lang="jpn")) == [7, 4, 6, 2, 8, 3, 1]
    assert ids(await listed(api, lang="fr")) == LISTED
    assert ids(await listed(api, order="added-asc")) == [1, 2, 3, 4, 6, 7, 8]
    assert ids(await listed(api, order="added-desc")) == [8, 7, 6, 4, 3, 2, 1]


async def test_pages_say_max_from_and_to(api: ApiClient, catalog: None) -> None:
    page = await listed(api, limit=3, offset=2)
    assert (ids(page), page["max"], page["from"], page["to"]) == (LISTED[2:5], 7, 2, 5)
    beyond = await listed(api, offset=50)
    assert (beyond["series"], beyond["max"], beyond["from"], beyond["to"]) == ([], 7, 50, 50)
    assert len((await listed(api, limit=1000))["series"]) == 7  # capped at 100, not refused
    assert ids(await listed(api, limit=0)) == [] and (await listed(api, limit=0))["max"] == 7


async def test_a_search_finds_word_beginnings_in_names_and_aliases(api: ApiClient, catalog: None) -> None:
    assert ids(await listed(api, search="Kyojin")) == [1]  # the name
    assert ids(await listed(api, search="titan")) == [1]  # an alias
    assert ids(await listed(api, search="  ATTACK   tit ")) == [1]  # every word begins one, in any order
    assert ids(await listed(api, search="attack berserk")) == []
    assert ids(await listed(api, search="drag")) == [7, 6]  # "Snapdragon" holds it, but not as a word's beginning
    assert ids(await listed(api, search="dragon s tale")) == [7]
    assert ids(await listed(api, search="itan")) == []


async def test_a_search_ignores_case_accents_and_punctuation(api: ApiClient, catalog: None) -> None:
    for search in ("pokemon", "POKÉMON", "Pokémon!", "ｐｏｋｅｍｏｎ", "poke-mon adv"):
        assert ids(await listed(api, search=search)) == ([] if search == "poke-mon adv" else [2]), search
    assert ids(await listed(api, search="!!!")) == []  # no word: nothing matches
    assert (await listed(api, search="!!!"))["max"] == 0


async def test_a_search_finds_cjk_titles_anywhere_and_hangul_by_word(api: ApiClient, catalog: None) -> None:
    assert ids(await listed(api, search="巨人")) == [1]
    assert ids(await listed(api, search="撃の")) == [1]
    assert ids(await listed(api, search="레벨")) == [3]
    assert ids(await listed(api, search="혼자")) == [3]


async def test_a_search_is_ordered_and_paged_like_the_list(api: ApiClient, catalog: None) -> None:
    page = await listed(api, search="dragon", order="added-desc", limit=1)
    assert (ids(page), page["max"], page["to"]) == ([7], 2, 1)
    assert ids(await listed(api, search="dragon", order="name-desc")) == [6, 7]


async def test_filters_by_type_and_origin(api: ApiClient, catalog: None) -> None:
    assert ids(await listed(api, filters="type:Manhwa")) == [3]
    assert ids(await listed(api, filters="type:manhwa;type:Light Novel")) == [7, 3]  # either type
    assert ids(await listed(api, filters="origin:Korean")) == [3]
    assert ids(await listed(api, filters="type:Manga;origin:Korean")) == []  # both
    page = await listed(api, filters=" type : Manga ; ", order="added-asc")
    assert (ids(page), page["max"]) == ([1, 2, 4, 6, 8], 5)
    assert ids(await listed(api, filters="type:Manga", search="drag")) == [6]
    assert ids(await listed(api, client=2, filters="origin:french")) == [9]
    assert ids(await listed(api, filters="type:Opera")) == []


async def test_the_client_scopes_the_list(api: ApiClient, catalog: None) -> None:
    assert ids(await listed(api, client=2)) == [9]
    assert ids(await listed(api, client="2", search="asterix")) == [9]
    assert ids(await listed(api, search="asterix")) == []
    assert (await listed(api, client=3)) == {"series": [], "max": 0, "from": 0, "to": 0}


@pytest.mark.parametrize("query, status, message, field", [
    ({}, 400, "Required parameters missing", "client"),
    ({"client": "abc"}, 400, "Invalid parameters", "client"),
    ({"client": 1, "order": "newest"}, 400, "Invalid parameters", "order"),
    ({"client": 1, "limit": -1}, 400, "Invalid parameters", "limit"),
    ({"client": 1, "search": "x" * 101}, 400, "Invalid parameters", "search"),
    ({"client": 1, "filters": "genre:Horror"}, 400, "Invalid parameters", "filters"),
    ({"client": 1, "filters": "type"}, 400, "Invalid parameters", "filters"),
    ({"client": 1, "filters": "type:"}, 400, "Invalid parameters", "filters"),
    ({"client": 1, "filters": ";".join(["type:Manga"] * 21)}, 400, "Invalid parameters", "filters"),
    ({"client": 1, "colour": "red"}, 400, "Invalid parameters", "colour"),
])
async def test_bad_queries_are_400(api: ApiClient, query: dict[str, Any], status: int, message: str,
                                   field: str) -> None:
    reply = await api.get("/series?" + urlencode(query))
    assert (reply.status, reply.body["data"], reply.body["code"]) == (status, message, status)
    assert [error["field"] for error in reply.body["errors"]] == [field]


async def test_the_order_and_filter_errors_say_what_is_accepted(api: ApiClient) -> None:
    order = (await api.get("/series?client=1&order=newest")).body["errors"][0]["message"]
    assert all(value in order for value in ("name-asc", "name-desc", "added-asc", "added-desc")), order
    unknown = (await api.get("/series?client=1&filters=genre:Horror")).body["errors"][0]["message"]
    assert "'genre'" in unknown and "type and origin" in unknown, unknown


async def test_18_plus_is_listed_found_and_counted_only_for_a_reader_who_shows_it(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, shows_18_plus: ApiClient) -> None:
    anyone = running.client()
    signed_in = running.client()
    await show_18_plus(db, (await signed_in.sign_up("unverified"))["id"], verified=False)
    for client in (anyone, signed_in):
        page = await listed(client)
        assert 5 not in ids(page) and page["max"] == 7
        assert (await listed(client, search="adult"))["max"] == 0
        assert await quick(client, "adult") == []
    page = await listed(shows_18_plus)
    assert ids(page) == BY_ENGLISH_NAME and page["max"] == 8
    assert ids(await listed(shows_18_plus, search="adult")) == [5]
    assert await quick(shows_18_plus, "adult") == [5]
    # A cookie that names no session reads as no one, and is left as it is.
    forged = running.client()
    forged.cookies["refreshToken"] = "0" * 24 + ".forged"
    reply = await forged.get("/series?client=1")
    assert reply.status == 200 and reply.body["max"] == 7 and not reply.set_cookies


async def test_quick_search_answers_the_spec_shape_titles_that_begin_with_it_first(
        api: ApiClient, catalog: None) -> None:
    reply = await api.get("/series/quick-search?search=attack")
    assert (reply.status, reply.body) == (200, [{
        "id": 1, "name": "Shingeki no Kyojin", "type": "Manga", "slug": "series-1", "origin": "Japanese",
        "aliases": ["Attack on Titan", "Titanen-Angriff", "進撃の巨人"]}])
    # "Dragon Ball" begins with the word; "A Dragon's Tale" sorts before it but holds it later.
    assert await quick(api, "dragon") == [6, 7]
    assert await quick(api, "dra") == [6, 7]
    assert await quick(api, "asterix") == [9]  # every client's series
    assert await quick(api, "dragon", limit=1) == [6]
    assert await quick(api, "zzz") == []


async def test_quick_search_limits(api: ApiClient, db: AsyncDatabase) -> None:
    await load_catalog(db, [titled(n, f"Moon {n}") for n in range(1, 61)])
    assert len(await quick(api, "moon")) == 10  # the default
    assert len(await quick(api, "moon", limit=55)) == 50  # capped
    assert await quick(api, "moon", limit=3) == [1, 10, 11]  # English name order ("moon 1", "moon 10", ...)
    assert await quick(api, "moon", limit=0) == []


@pytest.mark.parametrize("query, field", [({}, None), ({"search": ""}, None), ({"search": "   "}, None),
                                          ({"search": "x", "limit": "ten"}, "limit"),
                                          ({"search": "x" * 101}, "search")])
async def test_quick_search_needs_a_search(api: ApiClient, query: dict[str, Any], field: str | None) -> None:
    reply = await api.get("/series/quick-search?" + urlencode(query))
    assert reply.status == 400, reply.body
    if field is None:
        assert reply.body["data"] == "Required parameters missing"
    else:
        assert (reply.body["data"], reply.body["errors"][0]["field"]) == ("Invalid parameters", field)


async def test_a_reimport_shows_in_the_next_page_of_every_process(start_app: Any, db: AsyncDatabase,
                                                                   catalog: None) -> None:
    first, second = (await start_app()).client(), (await start_app()).client()
    assert (await listed(first))["max"] == (await listed(second))["max"] == 7
    await load_catalog(db, [titled(10, "Aardvark Tales"), titled(4, "Berserk", nsfw18=1)])
    for client in (first, second):
        page = await listed(client)
        assert ids(page)[:2] == [7, 10] and 4 not in ids(page) and page["max"] == 7
        assert await quick(client, "aardvark") == [10]


async def test_a_page_costs_one_round_trip_and_reads_only_its_series(
        running: RunningApp, api: ApiClient, catalog: None, shows_18_plus: ApiClient,
        commands: CommandCounter) -> None:
    await listed(api)  # the process reads the listing once
    costs = {}
    for name, client, path in [("page", api, "/series?client=1&limit=3"),
                               ("search", api, "/series?client=1&search=dragon&order=added-asc"),
                               ("deep page", api, "/series?client=1&offset=6"),
                               ("quick search", api, "/series/quick-search?search=dra"),
                               ("signed in, 18+", shows_18_plus, "/series?client=1&limit=3"),
                               ("no 18+ in client 2", shows_18_plus, "/series?client=2")]:
        commands.reset()
        assert (await client.get(path)).status == 200, name
        costs[name] = commands.total
        reads = [sent for sent in commands.sent if "aggregate" in sent]
        assert len(reads) == 1, name
        matched = [stage["$match"]["_id"]["$in"] for stage in reads[0]["pipeline"] if "$match" in stage] + \
                  [stage["$unionWith"]["pipeline"][0]["$match"]["_id"] for stage in reads[0]["pipeline"]
                   if "$unionWith" in stage]
        assert matched[-1] == "listing", name
    assert costs == {"page": 1, "search": 1, "deep page": 1, "quick search": 1, "signed in, 18+": 2,
                     "no 18+ in client 2": 1}


async def test_a_catalog_imported_before_the_listing_gets_one_at_start(start_app: Any, db: AsyncDatabase,
                                                                        catalog: None) -> None:
    await db.catalog_meta.delete_one({"_id": "listing"})
    await db.catalog_listing.delete_many({})
    assert (await listed((await start_app()).client()))["max"] == 0  # nothing to walk yet
    await prepare_database(db)  # what each start runs
    built = (await db.catalog_meta.find_one({"_id": "listing"}))["build"]
    assert ids(await listed((await start_app()).client())) == LISTED
    await prepare_database(db)
    assert (await db.catalog_meta.find_one({"_id": "listing"}))["build"] == built  # once


async def test_an_import_that_stopped_before_storing_its_listing_gets_one_at_the_next_start(
        start_app: Any, db: AsyncDatabase, catalog: None) -> None:
    built = (await db.catalog_meta.find_one({"_id": "listing"}))["build"]
    await mark_listing_stale(db)  # as an import does before its writes
    await db.series.insert_one({"_id": 10, "name": "Aardvark Tales", "client": 1, "type": "Manga",
                                "slug": "aardvark-tales", "sort_titles": {"en": "aardvark tales"}})
    await prepare_database(db)
    pointer = await db.catalog_meta.find_one({"_id": "listing"})
    assert pointer["build"] != built and "stale" not in pointer
    assert await db.catalog_listing.count_documents({"build": built}) == 0  # the old build's parts are gone
    assert ids(await listed((await start_app()).client()))[:2] == [7, 10]


async def test_an_empty_database_stores_no_listing(db: AsyncDatabase, api: ApiClient) -> None:
    assert await db.catalog_meta.find_one({"_id": "listing"}) is None
    assert await listed(api) == {"series": [], "max": 0, "from": 0, "to": 0}
    assert await quick(api, "a") == []


def documents_examined(plan: dict[str, Any]) -> int:
    assert "COLLSCAN" not in json.dumps(plan["queryPlanner"]), plan["queryPlanner"]
    return int(plan["executionStats"]["totalDocsExamined"])


async def test_pages_and_searches_of_a_generated_catalog_read_only_their_series(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, commands: CommandCounter) -> None:
    # Stored as an import stores them, without the import's upserts (15 s for 2,000 series), and
    # only what the listing reads: dropping the test's database deletes row by row, slowly.
    generated = list(catalog_gen.entries(2000, 2000, seed=29))
    await db.series.insert_many([{"_id": entry["id"], **{field: value for field, value in series_document(
        CatalogSeries.model_validate(entry)).items() if field in SERIES_FIELDS}} for entry in generated])
    await publish_listing(db)
    pointer = await db.catalog_meta.find_one({"_id": "listing"})
    # A process reads the listing once: the document that names it, then its parts, by _id.
    commands.reset()
    assert (await listed(api, limit=1))["max"] == sum(1 for s in generated if not s["nsfw18"])
    assert commands.log == ["find", "find", "aggregate"], commands.log  # the pointer, the parts, the page
    parts = commands.sent[1]["filter"]
    assert parts == {"_id": {"$in": [f"{pointer['build']}.{n:04}" for n in range(pointer["parts"])]}}
    plan = await db.command("explain", {"find": "catalog_listing", "filter": parts}, verbosity="executionStats")
    assert documents_examined(plan) == pointer["parts"] == 1

    word = next(a["title"] for a in generated[0]["aliases"] if a["language"] == "English").split()[-1]
    examined = {}
    for name, path, size in [
        ("first page", "/series?client=1&limit=100", 100),
        ("deep page, added order", "/series?client=1&order=added-desc&offset=1800&limit=20", 20),
        ("German, filtered", "/series?client=1&lang=de&filters=type:Manhwa&offset=100", 20),
        (f"search {word!r}", f"/series?client=1&search={word}&order=name-desc", 20),
        (f"quick search {word[:3]!r}", f"/series/quick-search?search={word[:3]}", 10),
    ]:
        commands.reset()
        reply = await api.get(path)
        assert reply.status == 200, (name, reply.body)
        assert len(reply.body if isinstance(reply.body, list) else reply.body["series"]) == size, name
        # The page's series by _id, 25 a command (SecantusDB's `$in` grows with the square of its
        # list), the first with the listing's pointer.
        assert commands.log == ["aggregate"] + ["find"] * (size // 25 - 1 if size > 25 else 0), (name, commands.log)
        total = 0
        for command, sent in list(zip(commands.log, commands.sent, strict=True)):  # (the explains add to them)
            where = sent["filter"] if command == "find" else sent["pipeline"][0]["$match"]
            if command == "aggregate":
                # A `$unionWith` reads the whole collection it names, on SecantusDB: only catalog_meta's few.
                assert [stage["$unionWith"]["coll"] for stage in sent["pipeline"] if "$unionWith" in stage] == \
                    ["catalog_meta"], name
            total += documents_examined(await db.command("explain", {"find": "series", "filter": where},
                                                         verbosity="executionStats"))
        examined[name] = total
    assert examined == {"first page": 100, "deep page, added order": 20, "German, filtered": 20,
                        f"search {word!r}": 20, f"quick search {word[:3]!r}": 10}
    assert await db.catalog_meta.count_documents({}) == 2  # the catalog's version and the listing's pointer
    assert running.app.services.series_browse.loads == 1


async def test_a_quick_search_without_a_search_names_the_missing_field(api: ApiClient, catalog: None) -> None:
    for query in ("", "?search=", "?search=%20%20"):
        reply = await api.get("/series/quick-search" + query)
        assert (reply.status, reply.body) == (400, {"data": "Required parameters missing", "code": 400,
                                                    "errors": [{"field": "search", "message": "Field required"}]}), query
