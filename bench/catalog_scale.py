"""`python -m bench.catalog_scale [SERIES VOLUMES]` (default 100,000 and 1,000,000; also
`python -m bench catalog_scale`): the catalog at MangaDex scale, as an operator meets it.

Generates the catalog (bench.catalog_gen), times `server.py import-catalog` into a fresh embedded
database (the importer's peak RSS sampled from /proc), the database's size on disk; then starts
`server.py` on it and reports the service's RSS (and its database's) at start and after the
catalog keys are warm. The keys (storage.catalog_keys) are read lazily, for the series and
volumes on someone's list: readers whose lists hold every series (10,000 statuses each) and up to
`MAX_VOLUMES` volumes (25,000 collection items each) read their lists ordered by name, which
loads them all, the worst case for a process."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.catalog_gen import write_catalog
from bench.harness import machine
from bench.seed import collection_items, statuses
from storage import collection_stats
from storage.catalog_keys import MAX_VOLUMES
from tests.api_client import ApiClient
from tests.service_process import ROOT, ServiceProcess, run_command, service_env

STATUSES_PER_READER = 10_000
ITEMS_PER_READER = 25_000


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def _megabytes(pids: list[int], field: str = "VmRSS") -> float:
    return sum(_status_kb(pid, field) for pid in pids) / 1024


def _disk_megabytes(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 1e6


async def _import(path: Path, data_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "server.py", "import-catalog", str(path)], cwd=ROOT,
                               env=service_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = database_peak = 0.0
    while process.poll() is None:
        # VmHWM is the process's own peak; its database child is sampled, so its peak is a lower bound.
        try:
            peak = max(peak, _megabytes([process.pid], "VmHWM"))
            database_peak = max(database_peak, _megabytes(_children(process.pid)))
        except (FileNotFoundError, ProcessLookupError):
            pass
        await asyncio.sleep(0.5)
    output = process.stdout.read() if process.stdout else ""
    assert process.returncode == 0, output
    return {"seconds": round(time.perf_counter() - started, 1), "importer_peak_mb": round(peak),
            "database_peak_mb": round(database_peak),
            "output": output.strip().splitlines()[-1]}


async def _warm(service: ServiceProcess, series: int) -> list[str]:
    uri = run_command(["database-uri"], service.env).stdout.strip()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    timings = []
    try:
        db = mongo.get_default_database()
        ids = list(range(1, series + 1))
        random.Random(29).shuffle(ids)
        volumes = [(v["series_id"], v["_id"]) async for v in db.volumes.find({}, {"series_id": 1}).limit(MAX_VOLUMES)]
        readers = max(-(-series // STATUSES_PER_READER), -(-len(volumes) // ITEMS_PER_READER))
        for n in range(readers):
            client = ApiClient(service.base_url)
            user = await client.sign_up(f"reader{n}")
            owned = collection_items(volumes[n * ITEMS_PER_READER:(n + 1) * ITEMS_PER_READER], owner=n)
            await db.users.update_one({"_id": user["id"]}, {"$set": {
                "statuses": statuses(ids[n * STATUSES_PER_READER:(n + 1) * STATUSES_PER_READER]),
                "collection": owned, collection_stats.FIELD: collection_stats.figures_of(owned)}})
            for path in ("/user/reading-history?order=name-asc&limit=20", "/user/collection?client=1&order=name-asc"):
                started = time.perf_counter()
                reply = await client.get(path)
                assert reply.status == 200, reply.body
                timings.append(f"reader {n} {path.split('?')[0]} cold: {(time.perf_counter() - started) * 1000:.0f} ms")
    finally:
        await mongo.close()
    return timings


async def main(series: int | str = 100_000, volumes: int | str = 1_000_000) -> dict[str, Any]:
    series, volumes = int(series), int(volumes)
    results: dict[str, Any] = {"machine": machine(), "series": series, "volumes": volumes}
    directory = Path(tempfile.mkdtemp(prefix="tsundoku-catalog-"))
    try:
        path = directory / "catalog.json"
        started = time.perf_counter()
        with open(path, "w", encoding="utf-8") as out:
            write_catalog(out, series, volumes)
        results["generate_seconds"] = round(time.perf_counter() - started, 1)
        results["file_mb"] = round(path.stat().st_size / 1e6, 1)
        data_dir = directory / "data"
        imported = await _import(path, data_dir)
        results["import"] = {**imported, "documents_per_second": round((series + volumes) / imported["seconds"])}
        results["database_on_disk_mb"] = round(_disk_megabytes(data_dir), 1)
        print(results, flush=True)
        service = ServiceProcess(data_dir)
        await service.start()
        try:
            pids = [service.process.pid] if service.process else []
            database = _children(pids[0])
            await asyncio.sleep(1)
            results["service_rss_at_start_mb"] = round(_megabytes(pids))
            results["database_rss_at_start_mb"] = round(_megabytes(database))
            results["warm_up"] = await _warm(service, series)
            results["service_rss_warm_mb"] = round(_megabytes(pids))
            results["service_peak_rss_mb"] = round(_megabytes(pids, "VmHWM"))
            results["database_rss_warm_mb"] = round(_megabytes(database))
        finally:
            await service.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(results)
    return results


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
