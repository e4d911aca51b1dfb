"""Reading-history latency at 100, 1,000 and 5,000 statuses for one user, against SecantusDB."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta, timezone

from bench.harness import bench_service, machine, summary, timed
from storage.catalog import CatalogFile, CatalogStore
from storage.reading import NAME_ORDER, HistoryRequest, ReadingStatusStore
from storage.records import StoredList
from tests.api_client import ApiClient

SIZES = (100, 1_000, 5_000)
CATALOG_SIZE = 6_000
QUERIES = {
    "update-desc": ("limit=20", HistoryRequest("update", True, 0, 20, None, "en", None)),
    "name-asc, user_lang=de": ("limit=20&order=name-asc&user_lang=de",
                               HistoryRequest(NAME_ORDER, False, 0, 20, None, "de", None)),
}


def catalog(count: int) -> CatalogFile:
    entries = []
    for i in range(1, count + 1):
        entries.append({
            "id": i, "name": f"Series {i:05}", "type": "Manga", "slug": f"series-{i}", "client": 1,
            "aliases": [{"title": f"Title {random.randint(0, 99999):05}", "language": "English"},
                        {"title": f"Titel {random.randint(0, 99999):05}", "language": "German"}],
            "descriptions": [{"description": "A description of ordinary length. " * 8, "language": "English"}],
            "volumes": [{"id": i * 10 + 1, "name": "Volume 1", "group_order": 1, "cover_path": f"/c/{i}.jpg"}],
        })
    return CatalogFile.model_validate({"series": entries})


def statuses(count: int) -> list[dict]:
    now = datetime.now(timezone.utc)
    chosen = random.sample(range(1, CATALOG_SIZE + 1), count)
    return [{
        "series_id": series_id, "client": 1, "visibility": "private", "progress_type": "chapters",
        "progress": random.randint(0, 300), "status": random.choice(["started", "completed", "paused", "dropped"]),
        "reread": 0, "score": random.randint(0, 10), "priority": random.choice(["low", "mid", "high"]),
        "start": f"20{random.randint(10, 24)}-0{random.randint(1, 9)}", "end": None, "notes": None,
        "last_update": now - timedelta(minutes=random.randint(0, 10**6)),
    } for series_id in chosen]


async def main() -> dict:
    random.seed(7)
    results: dict = {"machine": machine(), "rows": []}
    async with bench_service() as bench:
        await CatalogStore(bench.db).import_file(catalog(CATALOG_SIZE))
        for size in SIZES:
            client = ApiClient(bench.base_url)
            user = await client.sign_up(f"reader{size}")
            await bench.db.users.update_one({"_id": user["id"]}, {"$set": {"statuses": statuses(size)}})
            store = ReadingStatusStore(bench.db)
            for label, (query, request) in QUERIES.items():
                async def fetch(q: str = query) -> None:
                    reply = await client.get(f"/user/reading-history?{q}")
                    assert reply.status == 200 and len(reply.body["series"]) == 20

                # The floor: the same database work (session read + history query) without HTTP.
                async def floor(r: HistoryRequest = request, uid: str = user["id"]) -> None:
                    document = await bench.db.users.find_one({"_id": uid}, {"statuses": 0 if r.needs_series else 1})
                    page = await store.history(uid, r, StoredList("statuses", (document or {}).get("statuses") or []))
                    assert len(page.entries) == 20

                repeats = 40 if size <= 1_000 else 20
                service = summary(await timed(fetch, repeats))
                database_only = summary(await timed(floor, repeats))
                row = {"statuses": size, "query": label, "service": service, "database_only": database_only}
                results["rows"].append(row)
                print(f"{size:>6} statuses  {label:<24} service {service}; database only {database_only}", flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=1))
