"""`python -m bench mal_import`: MyAnimeList imports of 5,000 and 20,000 entries through HTTP
(gzipped, as browsers send a .xml.gz), dry run, apply into an empty list, apply again (every
entry compared, merge=greater), undo; and how long other requests wait meanwhile: a second
client asks `/health` every 20 ms during each import, its latencies against the same pings at rest.

Catalog: 25,000 series, four in five with a MAL id; the file names four in five entries by id
and the rest by title only (matched through `match_titles`)."""

from __future__ import annotations

import asyncio
import gzip
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.harness import bench_service, machine, percentile
from storage.catalog import CatalogFile, CatalogStore
from tests.api_client import ApiClient
from tests.catalog_data import series
from tests.mal_files import mal_file, manga

CATALOG_SIZE = 25_000
SIZES = (5_000, 20_000)
PING_EVERY_S = 0.02


def catalog() -> CatalogFile:
    entries = [series(i, f"Series number {i}", en=f"Series {i} in English", volumes=[],
                      **({"mal_id": 100_000 + i} if i % 5 else {})) for i in range(1, CATALOG_SIZE + 1)]
    return CatalogFile.model_validate({"series": entries})


def file_of(size: int) -> bytes:
    statuses = ("Reading", "Completed", "On-Hold", "Dropped", "Plan to Read")
    entries = [manga(manga_mangadb_id=100_000 + i if i % 5 else 0, manga_title=f"Series {i} in English",
                     my_status=statuses[i % 5], my_read_chapters=i % 300, my_read_volumes=i % 30,
                     my_start_date="2019-05-00", my_finish_date="0000-00-00", my_score=i % 11,
                     my_comments=f"comment {i}", my_tags="a, b") for i in range(1, size + 1)]
    return gzip.compress(mal_file(entries))


async def pinged(work: Callable[[], Awaitable[Any]], base_url: str) -> tuple[float, list[float], Any]:
    """Runs `work` while another client asks /health every 20 ms: work's seconds, ping latencies (ms)."""
    pinger = ApiClient(base_url)
    latencies: list[float] = []
    done = asyncio.Event()

    async def ping() -> None:
        while not done.is_set():
            started = time.perf_counter()
            assert (await pinger.get("/health")).status == 200
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(PING_EVERY_S)

    task = asyncio.create_task(ping())
    started = time.perf_counter()
    result = await work()
    seconds = time.perf_counter() - started
    done.set()
    await task
    return seconds, latencies, result


def pings(latencies: list[float]) -> str:
    if not latencies:
        return "no pings"
    return (f"pings p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
            f"max {max(latencies):.1f} ms (n={len(latencies)})")


async def main() -> None:
    print(machine())
    async with bench_service() as bench:
        await CatalogStore(bench.db).import_file(catalog())
        _, idle, _ = await pinged(lambda: asyncio.sleep(2), bench.base_url)
        print(f"at rest: {pings(idle)}")
        for size in SIZES:
            body = file_of(size)
            print(f"-- {size} entries, {len(body) / 1e6:.2f} MB gzipped")
            for repeat in range(2):
                api = ApiClient(bench.base_url)
                await api.sign_up(f"reader{size}x{repeat}")

                async def send(query: str) -> Any:
                    reply = await api.request("POST", f"/user/import/mal{query}", body=body,
                                              headers={"Content-Type": "application/gzip"})
                    assert reply.status == 200, reply.body
                    return reply.body

                for label, query in (("dry run", ""), ("apply", "?mode=apply"), ("apply again", "?mode=apply")):
                    seconds, latencies, report = await pinged(lambda q=query: send(q), bench.base_url)
                    print(f"{label}: {seconds:.2f} s, counts {report['counts']}; {pings(latencies)}")
                    if label == "apply":
                        import_id = report["import_id"]
                seconds, latencies, undo = await pinged(
                    lambda i=import_id: api.post(f"/user/import/{i}/undo", None), bench.base_url)
                assert undo.status == 200, undo.body
                print(f"undo (after apply again): {seconds:.2f} s, removed {undo.body['removed']}, "
                      f"left {len(undo.body['left'])}; {pings(latencies)}")
