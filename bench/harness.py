"""What every benchmark needs: a SecantusDB of its own, the real app on a free port, percentiles."""

from __future__ import annotations

import platform
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from pymongo.asynchronous.database import AsyncDatabase
from tornado.netutil import bind_sockets

from auth.passwords import Passwords
from handlers.application import make_app
from server import set_process_wide
from settings import Settings
from storage.database import connect, database
from storage.embedded import EmbeddedDatabase
from storage.indexes import prepare_database
from web.http_server import make_http_server


@dataclass
class Bench:
    db: AsyncDatabase
    base_url: str


@asynccontextmanager
async def bench_service(settings: Settings | None = None, passwords: Passwords | None = None) -> AsyncIterator[Bench]:
    """The service on its own database; `passwords` defaults to argon2 with tiny costs (pass
    `Passwords()` for the production ones)."""
    with tempfile.TemporaryDirectory(prefix="tsundoku-bench-") as directory:
        server = EmbeddedDatabase(Path(directory) / "db")
        await server.start_async()
        client = connect(server.uri)
        try:
            db = database(client, "bench")
            await prepare_database(db)
            settings = settings or Settings(cookie_secure=False)
            set_process_wide(settings)
            app = make_app(settings, db,
                           passwords=passwords or Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)))
            sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
            http = make_http_server(app)
            http.add_sockets(sockets)
            yield Bench(db, f"http://127.0.0.1:{sockets[0].getsockname()[1]}")
            http.stop()
        finally:
            await client.close()
            await server.stop_async()


async def timed(action: Callable[[], Awaitable[object]], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        await action()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):.1f} ms, p95 {percentile(samples, 0.95):.1f} ms (n={len(samples)})"


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
