"""One service process against three, on the same embedded database: a read route and a write route.

`python -m bench scale_out`. The database runs as its own process; each service process gets
`MONGODB_URI`, as a deployment behind a load balancer would. The load comes from one process per
service process (the client side of a round-robin balancer), each with its own signed-in users
so that writes go to different documents, as real users' do.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import machine
from storage.database import connect, database
from storage.embedded import EmbeddedDatabase
from storage.indexes import prepare_database
from tests.api_client import ApiClient
from tests.catalog_data import load_catalog, series
from tests.service_process import ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
USERS = 48
# Clients in all, shared out among the processes: the same offered load for 1 and for 3.
CONCURRENCY = 24
SECONDS = 10
STATUS = {"visibility": "public", "progressType": "volumes", "progress": 3, "status": "started",
          "priority": "high", "client": 1}

# One load process: `python -c WORKER PORT SECONDS CONCURRENCY KIND COOKIE...`; prints JSON.
WORKER = """
import asyncio, json, sys, time
from tornado.httpclient import AsyncHTTPClient
port, seconds, concurrency, kind = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cookies = sys.argv[5:]
body = json.dumps({"visibility": "public", "progressType": "volumes", "progress": 4, "status": "started",
                   "priority": "high", "client": 1})
async def main():
    AsyncHTTPClient.configure(None, max_clients=concurrency)
    client = AsyncHTTPClient()
    latencies, statuses = [], {}
    deadline = time.perf_counter() + seconds
    async def worker(n):
        cookie = cookies[n % len(cookies)]
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if kind == "read":
                r = await client.fetch(f"http://127.0.0.1:{port}/auth/me", headers={"Cookie": cookie}, raise_error=False)
            else:
                r = await client.fetch(f"http://127.0.0.1:{port}/user/reading-status/update/1", method="POST",
                                       body=body, headers={"Cookie": cookie, "Content-Type": "application/json"},
                                       raise_error=False)
            latencies.append(time.perf_counter() - started)
            statuses[r.code] = statuses.get(r.code, 0) + 1
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    print(json.dumps({"latencies": latencies, "statuses": statuses}))
asyncio.run(main())
"""


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def load(ports: list[int], kind: str, cookies: list[str]) -> dict[str, Any]:
    share = [cookies[i::len(ports)] for i in range(len(ports))]
    runs = [asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, str(port), str(SECONDS), str(CONCURRENCY // len(ports)), kind, *mine,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE) for port, mine in zip(ports, share, strict=True)]
    processes = [await run for run in runs]
    outputs = [json.loads((await p.communicate())[0]) for p in processes]
    latencies = [x for out in outputs for x in out["latencies"]]
    statuses: dict[str, int] = {}
    for out in outputs:
        for code, n in out["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    return {"per_second": round(len(latencies) / SECONDS, 1), "p50_ms": round(percentile(latencies, 0.5), 1),
            "p95_ms": round(percentile(latencies, 0.95), 1), "statuses": statuses}


async def measure(processes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tsundoku-scale-") as directory:
        server = EmbeddedDatabase(Path(directory) / "db")
        await server.start_async()
        setup = connect(server.uri)
        services = [ServiceProcess(Path(directory) / f"service{n}" / "data", MONGODB_URI=server.uri,
                                   MONGODB_DB="bench", LOG_LEVEL="warning", REGISTER_LIMIT_PER_HOUR="100000")
                    for n in range(processes)]
        try:
            db = database(setup, "bench")
            await prepare_database(db)
            await load_catalog(db, [series(1, "Yotsuba to!")])
            for service in services:
                (Path(service.env["DATA_DIR"])).mkdir(parents=True)
                await service.start()
            ports = [service.port for service in services]
            cookies = []
            for n in range(USERS):
                client = ApiClient(f"http://127.0.0.1:{ports[n % processes]}")
                await client.sign_up(f"reader{n}")
                assert (await client.post("/user/reading-status/add/1", STATUS)).status == 200
                cookies.append(client.cookie_header())
            return {"read (GET /auth/me)": await load(ports, "read", cookies),
                    "write (POST /user/reading-status/update/1)": await load(ports, "write", cookies)}
        finally:
            for service in services:
                if service.process is not None:
                    await service.stop()
            await setup.close()
            await server.stop_async()


async def main() -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine()}
    for processes in (1, 3):
        results[f"{processes} process(es)"] = measured = await measure(processes)
        for route, numbers in measured.items():
            print(f"{processes} process(es), {route}: {numbers}", flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=1))
