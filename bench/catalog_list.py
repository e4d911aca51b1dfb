"""`python -m bench.catalog_list DATA_DIR` (on request): the catalog's list routes on an imported
catalog (bench.catalog_scale makes one; 100,000 series take about 20 minutes to import).

Times the service's start on DATA_DIR (with the start-up layout steps, the series listing's
included: a database imported before it builds it once) and the first page (the process reads the
listing), then p50/p99 of `GET /series` by name and by added date, a search and a quick search,
each with 1 and with 32 clients at once, from a client in its own process. Searches are words of
the catalog's own names (3 to 10 letters), each request another. Prints the machine's load average
beside the figures: the machines here have two cores, shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pymongo import AsyncMongoClient

from bench.catalog_scale import _megabytes
from bench.harness import machine
from tests.service_process import ROOT, ServiceProcess, run_command

REQUESTS = {1: 200, 32: 1000}  # per scenario, by clients at once


async def _words(service: ServiceProcess, count: int = 300) -> list[str]:
    """Words of the catalog's names and aliases, 3 to 10 letters, from series picked at random."""
    uri = run_command(["database-uri"], service.env).stdout.strip()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        db = mongo.get_default_database()
        pointer = await db["catalog_meta"].find_one({"_id": "listing"}) or {}
        picked = random.Random(29).sample(range(1, int(pointer.get("series", 0)) + 1), 100)
        words: set[str] = set()
        async for series in db["series"].find({"_id": {"$in": picked}}, {"name": 1, "aliases.title": 1}):
            for title in [series["name"], *(alias["title"] for alias in series.get("aliases") or [])]:
                words.update(word for word in re.findall(r"\w+", title) if 3 <= len(word) <= 10)
    finally:
        await mongo.close()
    chosen = sorted(words)
    random.Random(29).shuffle(chosen)
    return (chosen * (count // max(1, len(chosen)) + 1))[:count]


def _paths(scenario: str, words: list[str], count: int) -> list[str]:
    rng = random.Random(scenario)
    if scenario == "name":
        return [f"/series?client=1&order=name-asc&limit=20&offset={rng.randrange(0, 2000, 20)}" for _ in range(count)]
    if scenario == "added":
        return [f"/series?client=1&order=added-desc&limit=20&offset={rng.randrange(0, 2000, 20)}"
                for _ in range(count)]
    if scenario == "name, deep":
        return [f"/series?client=1&order=name-asc&limit=20&offset={rng.randrange(40_000, 90_000, 20)}"
                for _ in range(count)]
    if scenario == "search":
        return [f"/series?client=1&search={quote(words[n % len(words)])}&limit=20" for n in range(count)]
    if scenario == "quick-search":
        return [f"/series/quick-search?search={quote(words[n % len(words)][:rng.randint(3, 10)])}"
                for n in range(count)]
    raise ValueError(scenario)


async def _client(base_url: str, paths: list[str], concurrency: int) -> dict[str, Any]:
    """Run in its own process: every path once, `concurrency` at a time; latencies in ms."""
    from tornado.httpclient import AsyncHTTPClient

    AsyncHTTPClient.configure(None, max_clients=concurrency)
    http = AsyncHTTPClient()
    pending = list(reversed(paths))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        while pending:
            path = pending.pop()
            started = time.perf_counter()
            response = await http.fetch(base_url + path, raise_error=False)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.code] = statuses.get(response.code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"p50_ms": round(latencies[len(latencies) // 2], 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
            "per_second": round(len(paths) / elapsed, 1), "statuses": statuses}


def _measure(base_url: str, paths: list[str], concurrency: int) -> dict[str, Any]:
    found = subprocess.run([sys.executable, "-m", "bench.catalog_list", "--client", base_url, str(concurrency)],
                           cwd=ROOT, input=json.dumps(paths), capture_output=True, text=True, check=True)
    return {**json.loads(found.stdout), "load_average": round(os.getloadavg()[0], 2)}


async def main(data_dir: str = "") -> dict[str, Any]:
    if not data_dir:
        raise SystemExit("usage: python -m bench.catalog_list DATA_DIR (a data directory with an imported catalog)")
    results: dict[str, Any] = {"machine": machine(), "load_average_before": os.getloadavg()[0]}
    service = ServiceProcess(Path(data_dir))
    started = time.perf_counter()
    try:
        await service.start(attempts=36_000)
        results["start_seconds"] = round(time.perf_counter() - started, 1)
        pids = [service.process.pid] if service.process else []
        client = service.client()
        started = time.perf_counter()
        first = await client.get("/series?client=1&limit=20")
        results["first_page_ms"] = round((time.perf_counter() - started) * 1000)
        results["series_listed"] = first.body["max"]
        results["service_rss_mb"] = round(_megabytes(pids))
        words = await _words(service)
        results["words"] = words[:10]
        for scenario in ("name", "added", "search", "quick-search", "name, deep"):
            for concurrency, count in REQUESTS.items():
                figures = _measure(service.base_url, _paths(scenario, words, count), concurrency)
                results[f"{scenario} x{concurrency}"] = figures
                print(scenario, concurrency, figures, flush=True)
        results["service_rss_after_mb"] = round(_megabytes(pids))
    finally:
        await service.stop()
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        print(json.dumps(asyncio.run(_client(sys.argv[2], json.loads(sys.stdin.read()), int(sys.argv[3])))))
    else:
        asyncio.run(main(*sys.argv[1:]))
