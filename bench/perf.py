"""`python -m bench perf` (or `python -m bench.perf [TEXT]` for the routes whose name holds TEXT): every measured route of the service against its floor (bench.floors),
in turn, on the same embedded database, with the same load from wrk.

One user with 1,000 statuses, 500 collection items, ratings and an avatar; a catalog of 3,000
series. Reads at 1 and 32 connections, writes at 1 and 4; each run `SECONDS` long after a warm-up,
service and floor alternated for `ROUNDS` rounds: each side's median run, and the median of the
rounds' ratios.
Prints requests/s, p50 and p99 for both, and the ratio service/floor (of requests/s).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import machine
from bench.seed import avatar, catalog, collection_items, ratings, statuses
from storage import collection_stats
from storage.catalog import CatalogStore
from storage.database import connect, database
from storage.embedded import EmbeddedDatabase, free_loopback_port
from storage.indexes import prepare_database
from tests.api_client import ApiClient
from tests.service_process import ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 4
ROUNDS = 3
WARMUP_SECONDS = 1
CATALOG_SIZE = 3_000
STATUSES = 1_000
COLLECTION_SERIES = 100  # each with 5 volumes: 500 items
# `FLOORS_WITHOUT_FEED=1`: the write floors as before issue 31, without numbering and recording
# their change (bench.floors), to compare with the figures of before.
FLOORS_WITHOUT_FEED = os.environ.get("FLOORS_WITHOUT_FEED") == "1"
READ_CONCURRENCY = (1, 32)
WRITE_CONCURRENCY = (1, 4)
STATUS_BODY = {"visibility": "public", "progressType": "volumes", "progress": 4, "status": "started",
               "priority": "high", "client": 1}


@dataclass(frozen=True)
class Load:
    name: str
    path: str  # {series} and {user} are filled in
    body: dict[str, Any] | None = None  # a POST with this JSON body

    @property
    def concurrencies(self) -> tuple[int, ...]:
        return WRITE_CONCURRENCY if self.body is not None else READ_CONCURRENCY


LOADS = [
    Load("GET /auth/me", "/auth/me"),
    Load("GET /user/reading-status/id/:id", "/user/reading-status/id/{series}"),
    Load("GET /user/reading-history (update-desc)", "/user/reading-history"),
    Load("GET /user/reading-history (name-asc, de)", "/user/reading-history?order=name-asc&user_lang=de"),
    Load("GET /user/reading-history (search)", "/user/reading-history?search=titel%201"),
    Load("GET /user/collection (name-asc)", "/user/collection?client=1"),
    Load("GET /user/collection (name-desc, de)", "/user/collection?client=1&order=name-desc&user_lang=de"),
    Load("GET /user/collection/stats/general", "/user/collection/stats/general?client=1"),
    Load("GET /user/avatar/:id/scaled", "/user/avatar/{user}/scaled"),
    Load("POST /user/reading-status/update/:id", "/user/reading-status/update/{series}", STATUS_BODY),
    Load("POST /user/series-rating/update/:id", "/user/series-rating/update/{series}", {"rating": 7.5}),
]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True)
        found = shutil.which("wrk")
    if found is None:
        sys.exit("bench perf needs wrk (Debian: apt-get install wrk)")
    return found


def collection() -> list[dict[str, Any]]:
    return collection_items((series, series * 10 + n) for series in range(1, COLLECTION_SERIES + 1) for n in range(1, 6))


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(binary: str, url: str, concurrency: int, seconds: int, cookie: str, script: Path | None,
        headers: tuple[str, ...] = ()) -> dict[str, Any]:
    command = [binary, f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{seconds}s", "--latency",
               "-H", f"Cookie: {cookie}"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latency = {p: float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(output)}
    return {"rps": float(rate.group(1)) if rate else 0.0, "p50": latency.get("50"), "p99": latency.get("99"),
            "errors": int(errors.group(1)) if errors else 0}


def post_script(directory: Path, body: dict[str, Any]) -> Path:
    path = directory / f"post-{abs(hash(json.dumps(body)))}.lua"
    path.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
                    'wrk.headers["Content-Type"] = "application/json"\n')
    return path


async def start_floor(uri: str, user_id: str, log: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_loopback_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.floors", str(port), uri, "bench", user_id,
                                *(["--no-feed"] if FLOORS_WITHOUT_FEED else [])], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    assert process.stdout is not None
    line = await asyncio.to_thread(process.stdout.readline)
    if line.strip() != "ready":
        raise RuntimeError(f"the floor app did not start: {log.read_text()}")
    return process, port


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@dataclass
class Seeded:
    """The database with the benchmark's catalog and reader, and the service on it."""

    server: EmbeddedDatabase
    directory: Path
    service: ServiceProcess
    client: ApiClient  # signed in as the reader
    user: dict[str, Any]
    rated: int  # a series the reader has a status and a rating for


@asynccontextmanager
async def seeded_service(**service_env: str) -> AsyncIterator[Seeded]:
    random.seed(7)
    with tempfile.TemporaryDirectory(prefix="tsundoku-perf-") as name:
        directory = Path(name)
        server = EmbeddedDatabase(directory / "db")
        await server.start_async()
        setup = connect(server.uri)
        service = ServiceProcess(directory / "service" / "data", MONGODB_URI=server.uri, MONGODB_DB="bench",
                                 **service_env)
        try:
            db = database(setup, "bench")
            await prepare_database(db)
            await CatalogStore(db).import_file(catalog(CATALOG_SIZE, lambda i: 5 if i <= COLLECTION_SERIES else 1))
            (directory / "service" / "data").mkdir(parents=True)
            await service.start()
            client = ApiClient(service.base_url)
            user = await client.sign_up("reader")
            chosen = random.sample(range(1, CATALOG_SIZE + 1), STATUSES)
            items = collection()
            # The collection's figures as the writes would have kept them (storage.collection_stats).
            await db.users.update_one({"_id": user["id"]}, {"$set": {
                "statuses": statuses(chosen), "collection": items,
                collection_stats.FIELD: collection_stats.figures_of(items), "ratings": ratings(chosen[:200])}})
            assert (await client.post(f"/user/update-image/{user['id']}", {"image": avatar()})).status == 200
            yield Seeded(server, directory, service, client, user, chosen[0])
        finally:
            if service.process is not None:
                await service.stop()
            await setup.close()
            await server.stop_async()


async def main(only: str = "") -> dict[str, Any]:
    binary = ensure_wrk()
    results: dict[str, Any] = {"machine": machine(), "rows": []}
    async with seeded_service() as seeded:
        floor, floor_port = await start_floor(seeded.server.uri, seeded.user["id"], seeded.directory / "floor.log")
        try:
            cookie = seeded.client.cookie_header()
            print(f"{machine()}; {STATUSES:,} statuses, {len(collection())} collection items, "
                  f"{CATALOG_SIZE:,} series; wrk, {ROUNDS} alternated rounds of {SECONDS} s", flush=True)
            print("| route | c | service rps | p50 ms | p99 ms | floor rps | p50 ms | p99 ms | service/floor |")
            print("|---|---|---|---|---|---|---|---|---|")
            for load in [load for load in LOADS if only in load.name]:
                path = load.path.format(series=seeded.rated, user=seeded.user["id"])
                script = post_script(seeded.directory, load.body) if load.body is not None else None
                bases = {"service": seeded.service.base_url, "floor": f"http://127.0.0.1:{floor_port}"}
                for concurrency in load.concurrencies:
                    results["rows"].append(compare(binary, bases, path, concurrency, cookie, script, load.name))
        finally:
            floor.terminate()
            floor.wait()
    return results


def compare(binary: str, bases: dict[str, str], path: str, concurrency: int, cookie: str, script: Path | None,
            name: str) -> dict[str, Any]:
    for base in bases.values():
        wrk(binary, base + path, concurrency, WARMUP_SECONDS, cookie, script)
    # Alternated, round by round: this machine's speed drifts from minute to minute (a shared VM),
    # and within a round both sides meet about the same speed. Each side's figures are its median
    # run; the ratio is the median of the rounds' ratios.
    # Who goes first alternates too, so that neither side always follows the other's load.
    runs: dict[str, list[dict[str, Any]]] = {app: [] for app in bases}
    for round_number in range(ROUNDS):
        order = list(bases.items()) if round_number % 2 == 0 else list(reversed(bases.items()))
        for app, base in order:
            runs[app].append(wrk(binary, base + path, concurrency, SECONDS, cookie, script))
    measured = {app: sorted(results, key=lambda r: r["rps"])[len(results) // 2] for app, results in runs.items()}
    ratio = statistics.median(s["rps"] / f["rps"] if f["rps"] else 0.0
                              for s, f in zip(runs["service"], runs["floor"], strict=True))
    s, f = measured["service"], measured["floor"]
    flag = " (errors: %d/%d)" % (s["errors"], f["errors"]) if s["errors"] or f["errors"] else ""
    print(f"| {name} | {concurrency} | {s['rps']:.0f} | {ms(s['p50'])} | {ms(s['p99'])} | "
          f"{f['rps']:.0f} | {ms(f['p50'])} | {ms(f['p99'])} | {ratio:.2f}x{flag} |", flush=True)
    return {"route": name, "concurrency": concurrency,
            **{f"{app}_{k}": v for app, m in measured.items() for k, v in m.items()}, "ratio": round(ratio, 2)}


if __name__ == "__main__":  # `python -m bench.perf [TEXT]`: only the routes whose name holds TEXT
    print(json.dumps(asyncio.run(main(*sys.argv[1:])), indent=1))
