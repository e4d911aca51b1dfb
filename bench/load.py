"""A load generator in its own process: `python -m bench.load URL REQUESTS CONCURRENCY [HEADER=VALUE]`.
Prints requests per second and the status counts as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

from tornado.httpclient import AsyncHTTPClient


async def run(url: str, total: int, concurrency: int, headers: dict[str, str]) -> dict:
    AsyncHTTPClient.configure(None, max_clients=concurrency)
    client = AsyncHTTPClient()
    statuses: Counter[int] = Counter()
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await client.fetch(url, headers=headers, raise_error=False)
            statuses[response.code] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"requests": total, "seconds": round(elapsed, 2), "per_second": round(total / elapsed, 1),
            "statuses": dict(statuses)}


if __name__ == "__main__":
    url, total, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    extra = dict(arg.split("=", 1) for arg in sys.argv[4:])
    print(json.dumps(asyncio.run(run(url, total, concurrency, extra))))
