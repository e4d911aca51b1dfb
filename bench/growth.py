"""`python -m bench growth`: p50 latency of every list order at 100, 1,000 and 5,000 entries (one
user's statuses, and collection items), one request at a time, against SecantusDB; and the
memory the catalog's keys take per series (storage.catalog_keys) at 100,000 series."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import tracemalloc
from typing import Any

from bench.harness import bench_service, machine, timed
from bench.seed import catalog, statuses
from storage import collection_stats
from storage.catalog import CatalogStore
from storage.catalog_keys import SeriesKeys
from tests.api_client import ApiClient

SIZES = (100, 1_000, 5_000)
CATALOG_SIZE = 6_000  # series; each with two volumes, so 5,000 collection items fit in 2,500 series
HISTORY_ORDERS = {
    "history update-desc": "order=update-desc",
    "history priority-asc": "order=priority-asc",
    "history score-desc": "order=score-desc",
    "history start-date-asc": "order=start-date-asc",
    "history end-date-desc": "order=end-date-desc",
    "history name-asc, de": "order=name-asc&user_lang=de",
    "history name-desc": "order=name-desc",
    "history search": "search=titel%201",
    "history search, name-asc": "search=titel%201&order=name-asc",
}
COLLECTION_ORDERS = {
    "collection name-asc": "client=1",
    "collection name-desc, de": "client=1&order=name-desc&user_lang=de",
    "collection search": "client=1&search=volume%202",
}


def items(count: int) -> list[dict[str, Any]]:
    return [{"item_id": f"{n:024}", "volume_id": (n // 2 + 1) * 10 + n % 2 + 1, "series_id": n // 2 + 1, "client": 1,
             "price_cents": 900, "buy_date": "2024-01-01", "added": None} for n in range(count)]


def keys_memory(series: int = 100_000) -> float:
    """Bytes a series takes in the keys table: the object, its strings, and the table's slot."""
    documents = [{"sort_titles": {code: (f"title {i}" if code != "de" else f"titel {i}")
                                  for code in ("en", "de", "fr", "es", "it", "ja", "ko", "zh", "pt", "ru", "pl", "nl")},
                  "search_text": [f"series {i:05}", f"title {i}", f"titel {i}"]} for i in range(series)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table = {i: SeriesKeys(d["sort_titles"], d["search_text"]) for i, d in enumerate(documents)}
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(table) == series
    return (after - before) / series


async def main() -> dict[str, Any]:
    random.seed(7)
    results: dict[str, Any] = {"machine": machine(), "p50_ms": {}}
    per_series = keys_memory()
    results["keys_bytes_per_series"] = round(per_series)
    print(f"{machine()}\ncatalog keys: {per_series:.0f} bytes a series "
          f"({per_series * 100_000 / 2**20:.0f} MB for 100,000 series)", flush=True)
    async with bench_service() as bench:
        await CatalogStore(bench.db).import_file(catalog(CATALOG_SIZE, lambda i: 2, cover_paths=False))
        for size in SIZES:
            client = ApiClient(bench.base_url)
            user = await client.sign_up(f"reader{size}")
            chosen = random.sample(range(1, CATALOG_SIZE + 1), size)
            owned = items(size)
            await bench.db.users.update_one({"_id": user["id"]}, {"$set": {
                "statuses": statuses(chosen), "collection": owned,
                collection_stats.FIELD: collection_stats.figures_of(owned)}})
            routes = {**{k: f"/user/reading-history?{q}" for k, q in HISTORY_ORDERS.items()},
                      **{k: f"/user/collection?{q}" for k, q in COLLECTION_ORDERS.items()}}
            for label, path in routes.items():
                async def fetch(p: str = path) -> None:
                    reply = await client.get(p)
                    assert reply.status == 200, reply.body

                started = time.perf_counter()
                await fetch()  # the first: this user's keys are read into the process
                first = (time.perf_counter() - started) * 1000
                samples = await timed(fetch, 30 if size <= 1_000 else 15, warmup=1)
                p50 = statistics.median(samples)
                results["p50_ms"].setdefault(label, {})[size] = round(p50, 1)
                print(f"{size:>6} entries  {label:<28} p50 {p50:6.1f} ms  (first request {first:6.1f} ms)", flush=True)
    print("| order | " + " | ".join(f"{s:,}" for s in SIZES) + " |")
    print("|---|" + "---|" * len(SIZES))
    for label, by_size in results["p50_ms"].items():
        print(f"| {label} | " + " | ".join(f"{by_size[s]:.1f}" for s in SIZES) + " |")
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=1))
