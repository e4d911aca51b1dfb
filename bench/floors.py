"""The floors: for each measured route, the least work it cannot avoid with this data model, as a
minimal Tornado app on the same database. `python -m bench.floors PORT MONGODB_URI DB USER_ID`.

No session check, no validation, no response models: a floor knows its user (USER_ID) and trusts
its input. What it does do is what the route's answer needs:
- a single read: one `find_one` by `_id` with a small projection;
- a list page: read the user's list, order it (name orders with every series' keys held in
  memory from the start), read the page's catalog documents;
- a status update: in one transaction, a read of the entry and the change counter, the update of
  the entry with the counter, and the insert of its change (since issue 31 every write is
  numbered and recorded with its entry before and after, together or not at all: docs/api.md
  "Sync"); a rating update: the same, and the series' aggregates (two documents that must change
  together). The read is the cheapest way to the number and the entry before on SecantusDB (its
  findAndModify took 31-34 ms where the read takes 3: storage/embedded_list.py `_write`).
  `python -m bench.floors ... --no-feed` runs the floors as they were before issue 31 (one
  `arrayFilters` update, no change), for comparison;
- the collection's figures: one `find_one` whose projection computes them;
- an avatar: the user's image reference, then the file's chunks.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timezone
from typing import Any

import tornado.web
from pymongo.asynchronous.database import AsyncDatabase

from storage.avatars import BUCKET
from storage.collection import stats_expression
from storage.database import connect, database

PAGE = 20
# Whether the write floors number and record their change (`--no-feed`: as before issue 31).
FEED = "--no-feed" not in sys.argv
SERIES_CARD = {"name": 1, "type": 1, "slug": 1, "origin": 1, "client": 1, "titles": 1, "descriptions": 1,
               "first_volume": 1, "rating_count": 1, "rating_half_points": 1}


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


class Floor(tornado.web.RequestHandler):
    def initialize(self, db: AsyncDatabase, user_id: str, keys: dict[str, Any]) -> None:
        self.db, self.user_id, self.keys = db, user_id, keys

    def answer(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(_json(value))


class Me(Floor):
    async def get(self) -> None:
        self.answer(await self.db.users.find_one({"_id": self.user_id}, {"username": 1, "slug": 1, "registered": 1,
                                                                         "roles": 1, "settings": 1}))


class StatusOfSeries(Floor):
    async def get(self, series_id: str) -> None:
        found = await self.db.users.find_one(
            {"_id": self.user_id}, {"_id": 0, "statuses": {"$elemMatch": {"series_id": int(series_id)}}})
        self.answer((found or {}).get("statuses"))


class History(Floor):
    async def get(self) -> None:
        found = await self.db.users.find_one({"_id": self.user_id}, {"_id": 0, "statuses": 1})
        entries = (found or {}).get("statuses") or []
        search = self.get_query_argument("search", None)
        titles = self.keys["series"]
        if search:
            term = search.casefold()
            entries = [e for e in entries if term in titles[e["series_id"]][1]]
        if self.get_query_argument("order", "update-desc") == "name-asc":
            language = self.get_query_argument("user_lang", "en")
            entries.sort(key=lambda e: titles[e["series_id"]][0].get(language, ""))
        else:
            entries.sort(key=lambda e: e["last_update"], reverse=True)
        page = entries[:PAGE]
        cards = {s["_id"]: s async for s in self.db.series.find({"_id": {"$in": [e["series_id"] for e in page]}},
                                                                 SERIES_CARD)}
        self.answer({"series": [[e, cards.get(e["series_id"])] for e in page], "max": len(entries)})


class Collection(Floor):
    async def get(self) -> None:
        found = await self.db.users.find_one({"_id": self.user_id}, {"_id": 0, "collection": 1})
        items = (found or {}).get("collection") or []
        titles, volumes = self.keys["series"], self.keys["volumes"]
        language = self.get_query_argument("user_lang", "en")
        items.sort(key=lambda i: (titles[i["series_id"]][0].get(language, ""), volumes[i["volume_id"]]),
                   reverse=self.get_query_argument("order", "name-asc") == "name-desc")
        page = items[:PAGE]
        volume_documents = await self.db.volumes.find({"_id": {"$in": [i["volume_id"] for i in page]}}).to_list(None)
        series = await self.db.series.find({"_id": {"$in": list({i["series_id"] for i in page})}},
                                           {"name": 1, "type": 1, "titles": 1}).to_list(None)
        self.answer({"volumes": [page, volume_documents, series], "max": len(items)})


class Stats(Floor):
    async def get(self) -> None:
        client = int(self.get_query_argument("client", "1"))
        found = await self.db.users.find_one({"_id": self.user_id}, {"_id": 0, "figures": stats_expression(client)})
        self.answer((found or {}).get("figures"))


async def recorded(db: AsyncDatabase, user_id: str, field: str, series: int, entry: dict[str, Any],
                   session: Any) -> None:
    """The entry of `field` for `series` replaced by `entry`, numbered and recorded as a change:
    the read of the entry before and the counter, the update, the change's insert."""
    before = await db.users.find_one({"_id": user_id}, {"_id": 0, "change_seq": 1,
                                                        field: {"$elemMatch": {"series_id": series}}}, session=session)
    await db.users.update_one({"_id": user_id, f"{field}.series_id": series},
                              {"$set": {f"{field}.$": entry}, "$inc": {"change_seq": 1}}, session=session)
    seq = int((before or {}).get("change_seq") or 0) + 1
    await db.changes.insert_one({"user_id": user_id, "seq": seq, "kind": field, "id": str(series), "op": "put",
                                 "at": entry["last_update"], "entry": entry,
                                 "before": ((before or {}).get(field) or [None])[0]}, session=session)


class StatusUpdate(Floor):
    async def post(self, series_id: str) -> None:
        series = int(series_id)
        entry = {**json.loads(self.request.body), "series_id": series, "last_update": datetime.now(timezone.utc)}
        if not FEED:
            await self.db.users.update_one({"_id": self.user_id}, {"$set": {"statuses.$[e]": entry}},
                                           array_filters=[{"e.series_id": series}])
        else:
            async with self.db.client.start_session() as session:
                await session.with_transaction(
                    lambda s: recorded(self.db, self.user_id, "statuses", series, entry, s))
        self.answer({"data": "Reading status updated successfully", "code": 200})


class RatingUpdate(Floor):
    async def post(self, series_id: str) -> None:
        rating = float(json.loads(self.request.body)["rating"])
        series = int(series_id)
        now = datetime.now(timezone.utc)

        async def change(session: Any) -> None:
            # A rating and its series' aggregates change together, or neither: one transaction.
            if FEED:
                await recorded(self.db, self.user_id, "ratings", series,
                               {"series_id": series, "rating": rating, "last_update": now}, session)
            else:
                await self.db.users.update_one({"_id": self.user_id},
                                               {"$set": {"ratings.$[r].rating": rating, "ratings.$[r].last_update": now}},
                                               array_filters=[{"r.series_id": series}], session=session)
            await self.db.series.update_one({"_id": series}, {"$inc": {"rating_half_points": 1}}, session=session)

        async with self.db.client.start_session() as session:
            await session.with_transaction(change)
        self.answer({"data": "Rating updated successfully", "code": 200})


class Avatar(Floor):
    async def get(self, user_id: str, resolution: str) -> None:
        found = await self.db.users.find_one({"_id": user_id}, {"_id": 0, "profile_image": 1})
        file_id = found["profile_image"][resolution]
        chunks = await self.db[f"{BUCKET}.chunks"].find({"files_id": file_id}, {"data": 1}).sort("n", 1).to_list(None)
        self.set_header("Content-Type", "image/webp")
        self.finish(b"".join(chunk["data"] for chunk in chunks))


async def catalog_keys(db: AsyncDatabase) -> dict[str, Any]:
    series = {s["_id"]: (s["sort_titles"], "\x00".join(s["search_text"]))
              async for s in db.series.find({}, {"sort_titles": 1, "search_text": 1})}
    volumes = {v["_id"]: (v.get("group_order") is None, v.get("group_order") or 0, v["_id"])
               async for v in db.volumes.find({}, {"group_order": 1})}
    return {"series": series, "volumes": volumes}


async def main(port: int, uri: str, name: str, user_id: str) -> None:
    db = database(connect(uri), name)  # journaled majority writes, as the service's
    arguments = {"db": db, "user_id": user_id, "keys": await catalog_keys(db)}
    app = tornado.web.Application([
        (r"/auth/me", Me, arguments),
        (r"/user/reading-status/id/(\d+)", StatusOfSeries, arguments),
        (r"/user/reading-history", History, arguments),
        (r"/user/collection", Collection, arguments),
        (r"/user/collection/stats/general", Stats, arguments),
        (r"/user/reading-status/update/(\d+)", StatusUpdate, arguments),
        (r"/user/series-rating/update/(\d+)", RatingUpdate, arguments),
        (r"/user/avatar/(\w+)/(scaled|high)", Avatar, arguments),
    ])
    app.listen(port, "127.0.0.1")
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]))  # then `--no-feed`, if given
