"""The catalog's detail routes: a series and a volume by slug, a series' volumes; 18+ visibility,
the owned flag, and their round trips."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.catalog_data import series, volume
from tests.conftest import CommandCounter, RunningApp

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "Yotsuba to!", en="Yotsuba&!", de="Yotsuba&! (de)", descriptions={"English": "A girl.", "German": "Ein Mädchen."},
           volumes=[volume(13, None), volume(12, 2, language="English"), volume(11, 1, slug="yotsuba-one")],
           tags=["comedy", "slice-of-life"]),
    series(2, "Berserk", volumes=[volume(21, 1), volume(22, 2, nsfw18=1), volume(23, 3)]),
    series(3, "Adult Title", nsfw18=1, volumes=[volume(31, 1)]),
]
SERIES_NOT_FOUND = {"data": "Series not found", "code": 404}
VOLUME_NOT_FOUND = {"data": "Volume not found", "code": 404}


async def show_18_plus(db: AsyncDatabase, user_id: Any, *, verified: bool = True) -> None:
    await db.users.update_one({"_id": user_id}, {"$set": {"age_verified": verified,
                                                          "settings.nsfw-mode": "settings.nsfw.show-nsfw-18"}})


async def test_a_series_by_slug_has_the_detail_shape(api: ApiClient, catalog: None) -> None:
    reply = await api.get("/series/slug/series-1?lang=German")
    assert reply.status == 200, reply.body
    assert reply.body == {
        "id": 1, "name": "Yotsuba to!", "type": "Manga", "slug": "series-1", "origin": "Japanese", "client": 1,
        "alias": "Yotsuba&! (de)", "description": "Ein Mädchen.", "aliases": ["Yotsuba&!", "Yotsuba&! (de)"],
        "tags": ["comedy", "slice-of-life"], "contributors": [], "publishers": [], "publisher_editions": [],
        "relations": {}, "average_rating": None, "rating_count": 0,
        "volume": {"id": 11, "cover_path": "/covers/11.jpg", "nsfw": 0, "nsfw18": 0, "aspect_ratio": 0.7},
    }
    english = (await api.get("/series/slug/series-1?user_lang=en")).body
    assert (english["alias"], english["description"]) == ("Yotsuba&!", "A girl.")
    assert (await api.get("/series/slug/series-2")).body["tags"] == []


async def test_the_rating_is_the_stored_aggregate(api: ApiClient, alice: dict) -> None:
    assert (await api.post("/user/series-rating/add/1", {"rating": 7.5})).status == 200
    body = (await api.get("/series/slug/series-1")).body
    assert (body["average_rating"], body["rating_count"]) == (7.5, 1)


async def test_unknown_slugs_are_404_and_an_empty_one_400(api: ApiClient, catalog: None) -> None:
    for path, answer in [("/series/slug/nothing-here", SERIES_NOT_FOUND), ("/series/slug/Not%20A%20Slug", SERIES_NOT_FOUND),
                         ("/volumes/slug/nothing-here", VOLUME_NOT_FOUND), ("/volumes/slug/UPPER", VOLUME_NOT_FOUND),
                         ("/series/volumes/99", SERIES_NOT_FOUND)]:
        reply = await api.get(path)
        assert (reply.status, reply.body) == (404, answer), path
    for path in ("/series/slug/", "/volumes/slug/"):
        reply = await api.get(path)
        assert (reply.status, reply.body) == (400, {"data": "Required parameters missing", "code": 400,
                                                    "errors": [{"field": "slug", "message": "Field required"}]}), path
    assert (await api.get("/series/volumes/abc")).status == 400
    assert (await api.get("/series/volumes/1?limit=-1")).status == 400


async def test_a_volume_by_slug_with_its_series_and_neighbours(api: ApiClient, catalog: None) -> None:
    reply = await api.get("/volumes/slug/series-1-12?lang=de")
    assert reply.status == 200, reply.body
    assert reply.body == {
        "id": 12, "name": "Volume 2", "slug": "series-1-12", "language": "English", "pages": 200,
        "release_date": "2020-01-01", "cover_path": "/covers/12.jpg", "aspect_ratio": 0.7, "nsfw": 0, "nsfw18": 0,
        "in_collection": False, "collection": None,
        "series": {"id": 1, "name": "Yotsuba to!", "alias": "Yotsuba&! (de)", "type": "Manga", "slug": "series-1"},
        "navigation": {"count": 3, "index": 1, "prev": "yotsuba-one", "next": "series-1-13"},
    }
    first = (await api.get("/volumes/slug/yotsuba-one")).body
    assert first["id"] == 11 and first["navigation"] == {"count": 3, "index": 0, "prev": None, "next": "series-1-12"}


async def test_a_series_volumes_in_reading_order_paged_and_by_edition(api: ApiClient, catalog: None) -> None:
    def ids(body: dict[str, Any]) -> list[int]:
        return [v["id"] for v in body["volumes"]]

    every = (await api.get("/series/volumes/1")).body
    assert ids(every) == [11, 12, 13] and (every["max"], every["from"], every["to"]) == (3, 0, 3)
    assert every["volumes"][0] == {
        "id": 11, "name": "Volume 1", "slug": "yotsuba-one", "release_date": "2020-01-01", "language": "German",
        "pages": 200, "nsfw": 0, "nsfw18": 0, "cover_path": "/covers/11.jpg", "aspect_ratio": 0.7,
        "in_collection": False, "collection": None}
    paged = (await api.get("/series/volumes/1?limit=1&offset=1")).body
    assert ids(paged) == [12] and (paged["max"], paged["from"], paged["to"]) == (3, 1, 2)
    assert ids((await api.get("/series/volumes/1?edition=German")).body) == [11, 13]
    assert ids((await api.get("/series/volumes/1?edition=English:5")).body) == [12]
    assert ids((await api.get("/series/volumes/1?edition=Klingon")).body) == []


async def test_each_volume_says_whether_the_reader_owns_it(running: RunningApp, api: ApiClient, alice: dict) -> None:
    assert (await api.post("/user/collection/add/12", {})).status == 200
    owned = {v["id"]: v["in_collection"] for v in (await api.get("/series/volumes/1")).body["volumes"]}
    assert owned == {11: False, 12: True, 13: False}
    assert (await api.get("/volumes/slug/series-1-12")).body["in_collection"] is True
    assert (await api.get("/volumes/slug/yotsuba-one")).body["in_collection"] is False
    anyone = running.client()
    assert not any(v["in_collection"] or v["collection"] for v in (await anyone.get("/series/volumes/1")).body["volumes"])
    assert (await anyone.get("/volumes/slug/series-1-12")).body["collection"] is None
    # A cookie that names no session reads as no one, and is left as it is.
    forged = running.client()
    forged.cookies["refreshToken"] = alice["id"] + ".forged"
    reply = await forged.get("/series/volumes/1")
    assert reply.status == 200 and not reply.set_cookies
    assert not any(v["in_collection"] for v in reply.body["volumes"])


async def test_an_owned_volume_names_its_item_which_its_update_takes_with_its_tag(running: RunningApp, api: ApiClient,
                                                                                  alice: dict) -> None:
    added = await api.post("/user/collection/add/12", {"price": 7.5, "date": "2024-05-01"})
    item_id = added.body["item_id"]
    volumes = {v["id"]: v for v in (await api.get("/series/volumes/1")).body["volumes"]}
    item = volumes[12]["collection"]
    # As the collection list shows the item: the same id, price, date and tag.
    listed = (await api.get("/user/collection?client=1")).body["volumes"][0]["collection"]
    assert item == listed and (item["item_id"], item["price"], item["buy_date"]) == (item_id, 7.5, "2024-05-01")
    assert volumes[11]["collection"] is None and volumes[13]["collection"] is None
    assert (await api.get("/volumes/slug/series-1-12")).body["collection"] == item
    # What the series page does with it: a new price and date, only if unchanged since it was read.
    update = f"/user/collection/update/{item_id}"
    changed = await api.post(update, {"price": 8, "date": "2024-06-02"}, headers={"If-Match": item["etag"]})
    assert changed.status == 200, changed.body
    stale = await api.post(update, {"price": 9, "date": None}, headers={"If-Match": item["etag"]})
    assert stale.status == 412
    now = (await api.get("/series/volumes/1?limit=1&offset=1")).body["volumes"][0]["collection"]
    assert (now["price"], now["buy_date"]) == (8, "2024-06-02") and now["etag"] != item["etag"]


async def test_18_plus_only_for_a_verified_reader_who_shows_it(running: RunningApp, db: AsyncDatabase,
                                                              catalog: None) -> None:
    anyone = running.client()
    reader = running.client()
    bob = await reader.sign_up("bob")

    async def visible(client: ApiClient) -> dict[str, Any]:
        return {
            "series": (await client.get("/series/slug/series-3")).status,
            "its volumes": (await client.get("/series/volumes/3")).status,
            "its volume": (await client.get("/volumes/slug/series-3-31")).status,
            "18+ volume": (await client.get("/volumes/slug/series-2-22")).status,
            "list": [v["id"] for v in (await client.get("/series/volumes/2")).body["volumes"]],
            "next": (await client.get("/volumes/slug/series-2-21")).body["navigation"]["next"],
        }

    hidden = {"series": 404, "its volumes": 404, "its volume": 404, "18+ volume": 404, "list": [21, 23],
              "next": "series-2-23"}
    assert await visible(anyone) == hidden
    assert await visible(reader) == hidden
    assert (await reader.get("/series/slug/series-3")).body == SERIES_NOT_FOUND
    await show_18_plus(db, bob["id"], verified=False)
    assert await visible(reader) == hidden
    await show_18_plus(db, bob["id"])
    assert await visible(reader) == {"series": 200, "its volumes": 200, "its volume": 200, "18+ volume": 200,
                                     "list": [21, 22, 23], "next": "series-2-22"}
    assert await visible(anyone) == hidden


async def test_round_trips(running: RunningApp, api: ApiClient, db: AsyncDatabase, alice: dict,
                           commands: CommandCounter) -> None:
    await show_18_plus(db, alice["id"])
    anyone = running.client()
    costs = {}
    for name, client, path, status in [
        ("series", anyone, "/series/slug/series-1", 200),
        ("series, signed in", api, "/series/slug/series-1", 200),  # the session is not read for it
        ("18+ series, signed in", api, "/series/slug/series-3", 200),
        ("18+ series, anyone", anyone, "/series/slug/series-3", 404),
        ("volume", anyone, "/volumes/slug/series-1-12", 200),
        ("volume, signed in", api, "/volumes/slug/series-1-12", 200),
        ("volumes", anyone, "/series/volumes/1", 200),
        ("volumes, signed in", api, "/series/volumes/1", 200),
    ]:
        commands.reset()
        assert (await client.get(path)).status == status, name
        costs[name] = commands.total
    # A volume page: the volume, then its series and its siblings at once; a series' volumes: the
    # series and its volumes at once (two commands, one wait; no $unionWith, see storage.catalog_pages).
    assert costs == {"series": 1, "series, signed in": 1, "18+ series, signed in": 2, "18+ series, anyone": 1,
                     "volume": 3, "volume, signed in": 4, "volumes": 2, "volumes, signed in": 3}


def filters_sent(sent: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each collection a find or an aggregation the app sent reads, with the filter it reads it by."""
    if "find" in sent:
        return [(sent["find"], sent["filter"])]
    pipeline = sent["pipeline"]
    union = [stage["$unionWith"] for stage in pipeline if "$unionWith" in stage]
    return [(sent["aggregate"], pipeline[0]["$match"]), *((u["coll"], u["pipeline"][0]["$match"]) for u in union)]


async def test_every_lookup_uses_an_index(api: ApiClient, db: AsyncDatabase, catalog: None,
                                          commands: CommandCounter) -> None:
    commands.reset()
    for path in ("/series/slug/series-1", "/volumes/slug/series-1-12", "/series/volumes/1"):
        assert (await api.get(path)).status == 200
    reads = [read for name, sent in zip(commands.log, commands.sent, strict=True)
             if name in ("find", "aggregate") for read in filters_sent(sent)]
    assert {(collection, tuple(where)) for collection, where in reads} == {
        ("series", ("slug",)), ("volumes", ("slug",)), ("series", ("_id",)), ("volumes", ("series_id",))}
    for collection, where in reads:
        plan = await db.command("explain", {"find": collection, "filter": where}, verbosity="executionStats")
        assert plan["queryPlanner"]["winningPlan"]["inputStage"]["stage"] == "IXSCAN", (collection, where)
        stats = plan["executionStats"]
        assert stats["totalDocsExamined"] == stats["nReturned"], (collection, where)


async def test_a_first_volume_flagged_18_plus_is_left_off_the_card_for_a_reader_who_does_not_show_it(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, alice: dict) -> None:
    # A series for everyone whose first volume is 18+: its id and cover must not say it exists.
    await db.series.update_one({"_id": 1}, {"$set": {"first_volume.nsfw18": 1}})
    status = {"visibility": "public", "progressType": "chapters", "progress": 1, "status": "started",
              "priority": "high", "client": 1}
    assert (await api.post("/user/reading-status/add/1", status)).status == 200

    async def cards(client: ApiClient) -> list[Any]:
        return [(await client.get("/series/slug/series-1")).body["volume"],
                (await client.get("/series?client=1&search=yotsuba")).body["series"][0]["volume"],
                *[item["volume"] for item in (await client.get("/user/reading-history")).body.get("series", [])]]

    assert await cards(running.client()) == [None, None]
    assert await cards(api) == [None, None, None]
    await show_18_plus(db, alice["id"])
    assert [card["id"] for card in await cards(api)] == [11, 11, 11]
