"""`python -m bench users`: GET /users over USERS users (BENCH_USERS, default 20,000) (seeded straight into the database, each
with a reading list, then the directory built as a start builds it): pages at the start, middle
and end of each order, searches short and long, at 1 and 32 clients; what building the directory
takes; and a registration's cost with the directory to keep. Against it, what one count of every
listed user costs, which is what a page found by `skip` or a `max` by counting would read."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from datetime import datetime, timedelta, timezone

from bench.harness import bench_service, machine, percentile, summary, timed
from bench.seed import statuses
from settings import Settings
from storage.user_directory import RANGES, ROWS, UserDirectory
from tests.api_client import ApiClient

USERS = int(os.environ.get("BENCH_USERS", "20000"))
STATUSES_EACH = int(os.environ.get("BENCH_STATUSES", "50"))
REPEATS = 30
SYLLABLES = ("ka", "mi", "ro", "sa", "to", "na", "yu", "ri", "ko", "ha", "el", "an", "jo", "lu", "ma", "ze")


def queries(listed: int) -> dict[str, str]:
    """Pages at the start, middle and end of each order (`listed` users), and searches."""
    return {
        "name-asc, first page": "order=name-asc",
        f"name-asc, offset {listed // 2:,}": f"order=name-asc&offset={listed // 2}",
        f"name-desc, offset {listed - 300:,}": f"order=name-desc&offset={listed - 300}",
        "registered-desc, first page": "order=registered-desc",
        f"registered-asc, offset {listed * 3 // 4:,}, limit 100": f"order=registered-asc&offset={listed * 3 // 4}"
                                                                   "&limit=100",
        "search 'k' (1 letter)": "search=k",
        "search 'reader1' (5,000 matches), offset 2,000": "search=reader1&offset=2000",
        "search 'kama' by name": "search=kama",
        "search 'kamiro' by registration": "search=kamiro&order=registered-desc",
    }


def name_of(index: int, rng: random.Random) -> str:
    if index % 2:
        return f"reader{index:05d}"  # half share one prefix, as generated names do
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 5))) + str(index)


async def main() -> None:
    print(machine())
    rng = random.Random(29)
    async with bench_service(Settings(cookie_secure=False, register_limit_per_hour=10_000)) as bench:
        start = datetime(2020, 1, 1, tzinfo=timezone.utc)
        started = time.perf_counter()
        batch = []
        for index in range(USERS):
            name = name_of(index, rng)
            batch.append({"_id": f"{index:024x}", "username": name, "slug": name.lower(),
                          "registered": start + timedelta(minutes=index), "age_verified": False,
                          "roles": ["banned" if index % 97 == 0 else "member"], "settings": {},
                          "profile_image": None, "sessions": [], "statuses": statuses(range(1, STATUSES_EACH + 1))})
            if len(batch) == 500:
                await bench.db.users.insert_many(batch)
                await bench.db.usernames.insert_many([{"_id": u["slug"], "user_id": u["_id"]} for u in batch])
                batch = []
        print(f"seeded {USERS} users of {STATUSES_EACH} statuses in {time.perf_counter() - started:.1f} s")
        await bench.db[RANGES].delete_many({})
        started = time.perf_counter()
        listed = await UserDirectory(bench.db).build()
        ranges = await bench.db[RANGES].find_one({})
        print(f"directory built from the users in {time.perf_counter() - started:.1f} s: {listed} listed, "
              f"{len(ranges['name'])} name ranges, {len(ranges['since'])} registration ranges")
        started = time.perf_counter()
        await bench.db[ROWS].count_documents({})
        print(f"for comparison, one count of every listed user: {(time.perf_counter() - started) * 1000:.0f} ms")

        async def ranges_read() -> None:
            await bench.db[RANGES].find_one({}, {"name": 1})

        async def rows_read() -> None:
            await bench.db[ROWS].find({"name": {"$gte": "m"}}).sort("name", 1).limit(44).to_list(None)

        print(f"of a page: the ranges' read {summary(await timed(ranges_read, REPEATS))}; for comparison a read of "
              f"the rows from 'm' on, limit 44, {summary(await timed(rows_read, 5))}")

        anyone = ApiClient(bench.base_url)
        for label, query in queries(listed).items():
            reply = await anyone.get(f"/users?{query}")
            assert reply.status == 200, (query, reply.body)

            async def one(q: str = query) -> None:
                assert (await anyone.get(f"/users?{q}")).status == 200

            print(f"{label} (max {reply.body['max']}): {summary(await timed(one, REPEATS))}")

        for label, query in (("first page", "order=name-asc"), ("search 'kama'", "search=kama")):
            clients = [ApiClient(bench.base_url) for _ in range(32)]

            async def client_loop(client: ApiClient, q: str = query) -> list[float]:
                samples = []
                for _ in range(10):
                    begun = time.perf_counter()
                    assert (await client.get(f"/users?{q}")).status == 200
                    samples.append((time.perf_counter() - begun) * 1000)
                return samples

            began = time.perf_counter()
            samples = [s for each in await asyncio.gather(*(client_loop(c) for c in clients)) for s in each]
            elapsed = time.perf_counter() - began
            print(f"32 clients, {label}: p50 {statistics.median(samples):.0f} ms, p99 {percentile(samples, 0.99):.0f} "
                  f"ms, {len(samples) / elapsed:.0f} requests/s")

        registering = ApiClient(bench.base_url)
        samples = []
        for index in range(30):
            begun = time.perf_counter()
            assert (await registering.register(f"newcomer{index:03d}")).status == 201
            samples.append((time.perf_counter() - begun) * 1000)
        print(f"registration with {USERS} users (argon2 at tiny costs): {summary(samples)}")
