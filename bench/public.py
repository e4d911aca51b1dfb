"""`python -m bench public`: a public reading list against the owner's own, for one reader with
1,000 and 5,000 statuses (half of them public), one request at a time, p50 and p95 of each order;
and the statistics (own and public). The issue's bar: a public page costs what the private one
does."""

from __future__ import annotations

import random

from bench.harness import bench_service, machine, summary, timed
from bench.seed import catalog, statuses
from storage.catalog import CatalogStore
from tests.api_client import ApiClient

SIZES = (1_000, 5_000)
CATALOG_SIZE = 6_000
ORDERS = {"update-desc": "order=update-desc", "name-asc, de": "order=name-asc&user_lang=de",
          "search": "search=titel%201"}
REPEATS = 40


async def main() -> None:
    print(machine())
    random.seed(17)
    async with bench_service() as bench:
        await CatalogStore(bench.db).import_file(catalog(CATALOG_SIZE, lambda _: 1))
        for size in SIZES:
            owner = ApiClient(bench.base_url)
            user = await owner.sign_up(f"reader{size}")
            listed = statuses(range(1, size + 1))
            for index, entry in enumerate(listed):
                entry["visibility"] = "public" if index % 2 else "private"
            await bench.db.users.update_one({"_id": user["id"]}, {"$set": {"statuses": listed}})
            anyone = ApiClient(bench.base_url)
            print(f"-- {size} statuses, {size // 2} public")
            for label, query in ORDERS.items():
                async def own(q: str = query) -> None:
                    assert (await owner.get(f"/user/reading-history?{q}")).status == 200

                async def public(q: str = query) -> None:
                    assert (await anyone.get(f"/users/reader{size}/reading-history?{q}")).status == 200

                print(f"{label}: own {summary(await timed(own, REPEATS))}; "
                      f"public {summary(await timed(public, REPEATS))}")

            async def own_stats() -> None:
                assert (await owner.get("/user/reading-stats")).status == 200

            async def profile() -> None:
                assert (await anyone.get(f"/users/reader{size}")).status == 200

            print(f"statistics: own {summary(await timed(own_stats, REPEATS))}; "
                  f"public profile {summary(await timed(profile, REPEATS))}")
