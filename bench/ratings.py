"""Rating writes through HTTP: each is the session read plus, in one transaction, the user's
write and the series' $inc. A user with many ratings makes the user's write dearer."""

from __future__ import annotations

from bench.harness import bench_service, machine, summary, timed
from tests.api_client import ApiClient
from tests.catalog_data import load_catalog, series

SERIES_IN_CATALOG = 1100


async def main() -> None:
    print(machine())
    async with bench_service() as bench:
        await load_catalog(bench.db, [series(i, f"Series {i}") for i in range(1, SERIES_IN_CATALOG + 1)])
        for existing in (0, 1000):
            api = ApiClient(bench.base_url)
            user = await api.sign_up(f"rater{existing}")
            if existing:
                await bench.db.users.update_one({"_id": user["id"]}, {"$set": {"ratings": [
                    {"series_id": i, "rating": 5, "last_update": None} for i in range(101, 101 + existing)]}})
            await api.post("/user/series-rating/add/1", {"rating": 5})
            values = iter(range(10**6))

            async def update() -> None:
                reply = await api.post("/user/series-rating/update/1", {"rating": 1 + next(values) % 10})
                assert reply.status == 200, reply.body

            async def add_and_delete() -> None:
                assert (await api.post("/user/series-rating/add/2", {"rating": 7})).status == 200
                assert (await api.delete("/user/series-rating/delete/2")).status == 200

            print(f"{existing} other ratings: update {summary(await timed(update, 100))}; "
                  f"add+delete {summary(await timed(add_and_delete, 50))}")
