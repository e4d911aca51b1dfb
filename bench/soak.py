"""`python -m bench soak` (or `python -m bench.soak [REQUESTS]`): one service process on its embedded
database, as `make run` starts it, serving a long mixed load from 50 readers with lists of the
sizes trackers see, to show that it stays healthy: no errors, steady latency, memory that levels
off; and how the database's files grow (with what is written, not with the data:
docs/performance.md) and what `server.py compact` gives back at the end.

Each reader is a coroutine with its own session and keep-alive connection that sends its next
request as soon as the last is answered (no think time: 50 requests in flight at all times). It
keeps track of what its list holds, so that every request of the mix is one that must succeed:
any answer but 2xx/304 counts as an error. Latency is measured in this process, from sending the
request to reading the whole answer.

Prints the mix (planned and sent), requests served and errors, p50/p99 and throughput in ten
windows of the run, the resident memory of the service and of its database after the warm-up and
at the end, the size of the database directory per window and before and after, the oplog's
entries before and after, whether the series' rating aggregates still agree with the stored
ratings (`recount-ratings`), and, the service stopped, what `compact` makes of the files.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import machine, percentile
from bench.seed import avatar, catalog, collection_items, ratings, statuses
from storage import collection_stats
from storage.catalog import CatalogStore
from storage.database import connect, database
from tests.service_process import ServiceProcess, run_command

REQUESTS = 200_000
WARMUP_REQUESTS = 10_000
READERS = 50
WINDOWS = 10
CATALOG_SIZE = 5_000
PASSWORD = "soak-password-1"
MEMORY_SAMPLE_S = 2.0


def volume_count(series_id: int) -> int:
    return 1 + series_id * 7 % 9  # 1 to 9 volumes, 5 on average


# Per mille. Reads dominate, as in a tracker's use (78%): the list pages, one series' status, the
# collection; writes (22%) are mostly progress updates, then ratings and collection changes.
MIX: dict[str, int] = {
    "GET /auth/me": 100,
    "GET /user/reading-status/id/:id": 170,
    "GET /user/reading-history (update-desc)": 140,
    "GET /user/reading-history (name-asc, de)": 50,
    "GET /user/reading-history (search)": 40,
    "GET /user/series-rating/:id": 60,
    "GET /user/collection (name-asc)": 90,
    "GET /user/collection (name-desc, de, page 2)": 30,
    "GET /user/collection/stats/general": 40,
    "GET /user/avatar/:id/scaled": 60,
    "POST /user/reading-status/update/:id": 80,
    "POST /user/reading-status/add/:id": 15,
    "DELETE /user/reading-status/delete/:id": 15,
    "POST /user/series-rating/update/:id": 30,
    "POST /user/series-rating/add/:id": 10,
    "DELETE /user/series-rating/delete/:id": 10,
    "POST /user/collection/add/:volumeId": 20,
    "DELETE /user/collection/delete/:itemId": 20,
    "POST /user/collection/update/:itemId": 10,
    "POST /users/:id/save-settings": 5,
    "POST /user/update-image/:id": 2,
    "POST /auth/login": 3,
}


@dataclass
class Sample:
    finished: float  # time.monotonic()
    action: str
    status: int
    ms: float


@dataclass
class Reader:
    """One signed-in reader and what its lists hold, so that each request it sends must succeed."""

    index: int
    username: str
    user_id: str
    session: aiohttp.ClientSession
    base_url: str
    others: list[str]  # user ids whose avatars it looks at
    listed: set[int] = field(default_factory=set)  # series with a status
    rated: set[int] = field(default_factory=set)
    items: dict[str, int] = field(default_factory=dict)  # item id -> volume id
    random: random.Random = field(default_factory=random.Random)

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base_url + path, json=body) as response:
            raw = await response.read()
            answer = json.loads(raw) if response.content_type == "application/json" and raw else None
            return response.status, answer

    def _any_listed(self) -> int:
        return self.random.choice(tuple(self.listed))

    def _unlisted(self) -> int:
        while (series := self.random.randint(1, CATALOG_SIZE)) in self.listed:
            pass
        return series

    def feasible(self, action: str) -> str:
        """The action, or its opposite when what it needs is gone (a random walk of adds and
        deletes can empty a small list): every request sent is one that must succeed."""
        empty = {
            "DELETE /user/reading-status/delete/:id": not self.listed - self.rated,
            "POST /user/series-rating/add/:id": not self.listed - self.rated,
            "POST /user/series-rating/update/:id": not self.rated,
            "DELETE /user/series-rating/delete/:id": not self.rated,
            "DELETE /user/collection/delete/:itemId": not self.items,
            "POST /user/collection/update/:itemId": not self.items,
        }
        if not empty.get(action, False):
            return action
        return OPPOSITES.get(action, "POST /user/reading-status/add/:id")

    async def act(self, action: str) -> int:
        return await ACTIONS[action](self)


def _status_body(r: Reader) -> dict[str, Any]:
    return {"visibility": r.random.choice(["private", "public"]), "progressType": "chapters",
            "progress": r.random.randint(0, 300), "status": r.random.choice(["started", "completed", "paused"]),
            "priority": r.random.choice(["low", "mid", "high"]), "client": 1}


async def _status_add(r: Reader) -> int:
    series = r._unlisted()
    status, _ = await r.request("POST", f"/user/reading-status/add/{series}", _status_body(r))
    if status == 200:
        r.listed.add(series)
    return status


async def _status_delete(r: Reader) -> int:
    # Only unrated series: what the rating of a series without a status does is not what this measures.
    series = r.random.choice(tuple(r.listed - r.rated))
    status, _ = await r.request("DELETE", f"/user/reading-status/delete/{series}")
    if status == 200:
        r.listed.discard(series)
    return status


async def _rating_add(r: Reader) -> int:
    series = r.random.choice(tuple(r.listed - r.rated))
    status, _ = await r.request("POST", f"/user/series-rating/add/{series}", {"rating": r.random.randint(2, 20) / 2})
    if status == 200:
        r.rated.add(series)
    return status


async def _rating_delete(r: Reader) -> int:
    series = r.random.choice(tuple(r.rated))
    status, _ = await r.request("DELETE", f"/user/series-rating/delete/{series}")
    if status == 200:
        r.rated.discard(series)
    return status


async def _collection_add(r: Reader) -> int:
    owned = set(r.items.values())
    while True:
        series = r.random.randint(1, CATALOG_SIZE)
        volume = series * 10 + r.random.randint(1, volume_count(series))
        if volume not in owned:
            break
    status, answer = await r.request("POST", f"/user/collection/add/{volume}",
                                     {"price": r.random.randint(500, 1500) / 100, "date": "2026-11-28"})
    if status == 200:
        r.items[answer["item_id"]] = volume
    return status


async def _collection_delete(r: Reader) -> int:
    item = r.random.choice(tuple(r.items))
    status, _ = await r.request("DELETE", f"/user/collection/delete/{item}")
    if status == 200:
        del r.items[item]
    return status


async def _login(r: Reader) -> int:
    status, _ = await r.request("POST", "/auth/login", {"username": r.username, "password": PASSWORD})
    return status  # the jar takes the new cookie; the old session stays valid (20 are kept)


async def _get(r: Reader, path: str) -> int:
    return (await r.request("GET", path))[0]


async def _post(r: Reader, path: str, body: Any) -> int:
    return (await r.request("POST", path, body))[0]


SMALL_AVATAR = avatar(256)
ACTIONS: dict[str, Callable[[Reader], Awaitable[int]]] = {
    "GET /auth/me": lambda r: _get(r, "/auth/me"),
    "GET /user/reading-status/id/:id": lambda r: _get(r, f"/user/reading-status/id/{r._any_listed()}"),
    "GET /user/reading-history (update-desc)": lambda r: _get(r, "/user/reading-history"),
    "GET /user/reading-history (name-asc, de)": lambda r: _get(r, "/user/reading-history?order=name-asc&user_lang=de"),
    "GET /user/reading-history (search)":
        lambda r: _get(r, f"/user/reading-history?search=titel%20{r.random.randint(0, 9)}"),
    "GET /user/series-rating/:id": lambda r: _get(r, f"/user/series-rating/{r._any_listed()}"),
    "GET /user/collection (name-asc)": lambda r: _get(r, "/user/collection?client=1"),
    "GET /user/collection (name-desc, de, page 2)":
        lambda r: _get(r, "/user/collection?client=1&order=name-desc&user_lang=de&offset=20"),
    "GET /user/collection/stats/general": lambda r: _get(r, "/user/collection/stats/general?client=1"),
    "GET /user/avatar/:id/scaled": lambda r: _get(r, f"/user/avatar/{r.random.choice(r.others)}/scaled"),
    "POST /user/reading-status/update/:id":
        lambda r: _post(r, f"/user/reading-status/update/{r._any_listed()}", _status_body(r)),
    "POST /user/reading-status/add/:id": _status_add,
    "DELETE /user/reading-status/delete/:id": _status_delete,
    "POST /user/series-rating/update/:id":
        lambda r: _post(r, f"/user/series-rating/update/{r.random.choice(tuple(r.rated))}",
                        {"rating": r.random.randint(2, 20) / 2}),
    "POST /user/series-rating/add/:id": _rating_add,
    "DELETE /user/series-rating/delete/:id": _rating_delete,
    "POST /user/collection/add/:volumeId": _collection_add,
    "DELETE /user/collection/delete/:itemId": _collection_delete,
    "POST /user/collection/update/:itemId":
        lambda r: _post(r, f"/user/collection/update/{r.random.choice(tuple(r.items))}",
                        {"price": r.random.randint(500, 1500) / 100, "date": "2026-11-27"}),
    "POST /users/:id/save-settings":
        lambda r: _post(r, f"/users/{r.user_id}/save-settings", {"theme": r.random.choice(["light", "dark"])}),
    "POST /user/update-image/:id": lambda r: _post(r, f"/user/update-image/{r.user_id}", {"image": SMALL_AVATAR}),
    "POST /auth/login": _login,
}
OPPOSITES = {
    "DELETE /user/reading-status/delete/:id": "POST /user/reading-status/add/:id",
    "POST /user/series-rating/update/:id": "POST /user/series-rating/add/:id",
    "DELETE /user/series-rating/delete/:id": "POST /user/series-rating/add/:id",
    "DELETE /user/collection/delete/:itemId": "POST /user/collection/add/:volumeId",
    "POST /user/collection/update/:itemId": "POST /user/collection/add/:volumeId",
}  # a rating add with every listed series rated: a status add (the default), which makes one to rate
assert set(ACTIONS) == set(MIX) and sum(MIX.values()) == 1000


def list_size(rng: random.Random) -> int:
    """Statuses a reader keeps: a median near 250, a long tail to 3,000 (a log-normal)."""
    return round(min(3_000, max(20, rng.lognormvariate(5.5, 1.0))))


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def largest_files(path: Path, count: int = 3) -> str:
    files = sorted((f for f in path.iterdir() if f.is_file()), key=lambda f: f.stat().st_size, reverse=True)
    return ", ".join(f"{f.name} {mib(f.stat().st_size, 1)}" for f in files[:count])


def mib(value: int | None, unit: int = 1024) -> str:
    return "-" if value is None else f"{value * unit / 2**20:.0f} MiB"


@dataclass
class Memory:
    """RSS samples of the service and its database: (monotonic time, requests done, KiB, KiB)."""

    service_pid: int
    database_dir: Path | None = None
    samples: list[tuple[float, int, int | None, int | None]] = field(default_factory=list)
    # (monotonic time, the database directory's bytes): whether the files level off (issue 34).
    files: list[tuple[float, int]] = field(default_factory=list)

    def database_pid(self) -> int | None:
        # The embedded database is the service's one child (its supervisor may have restarted it).
        children = child_pids(self.service_pid)
        return children[0] if children else None

    def sample(self, done: int) -> tuple[float, int, int | None, int | None]:
        taken = (time.monotonic(), done, rss_kib(self.service_pid), rss_kib(self.database_pid()))
        self.samples.append(taken)
        if self.database_dir is not None:
            self.files.append((taken[0], directory_bytes(self.database_dir)))
        return taken

    def files_at(self, moment: float) -> int | None:
        return min(self.files, key=lambda f: abs(f[0] - moment))[1] if self.files else None

    def first_after(self, done: int) -> tuple[float, int, int | None, int | None]:
        return next(s for s in self.samples if s[1] >= done)

    def nearest(self, moment: float) -> tuple[float, int, int | None, int | None]:
        return min(self.samples, key=lambda s: abs(s[0] - moment))


async def sign_up(base_url: str, index: int) -> tuple[aiohttp.ClientSession, str, str]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),  # the jar skips IP hosts otherwise
                                    connector=aiohttp.TCPConnector(limit=1))
    username = f"reader{index:02}"
    credentials = {"username": username, "password": PASSWORD}
    async with session.post(base_url + "/auth/register", json=credentials) as response:
        assert response.status == 201, await response.text()
    async with session.post(base_url + "/auth/login", json=credentials) as response:
        assert response.status == 200, await response.text()
        user_id = (await response.json())["user"]["id"]
    return session, username, user_id


async def seed(service: ServiceProcess, rng: random.Random) -> list[Reader]:
    """The catalog, then 50 readers signed up through the service, then their lists written
    straight into their documents, and an avatar each (through the service)."""
    uri = run_command(["database-uri"], service.env).stdout.strip()
    client = connect(uri)
    try:
        db = database(client, service.env.get("MONGODB_DB", "tsundoku"))
        await CatalogStore(db).import_file(catalog(CATALOG_SIZE, volume_count))
        signed = [await sign_up(service.base_url, i) for i in range(READERS)]
        user_ids = [user_id for _, _, user_id in signed]
        readers = []
        for index, (session, username, user_id) in enumerate(signed):
            reader = Reader(index, username, user_id, session, service.base_url, user_ids,
                            random=random.Random(index))
            size = list_size(rng)
            reader.listed = set(rng.sample(range(1, CATALOG_SIZE + 1), size))
            reader.rated = set(rng.sample(sorted(reader.listed), max(2, size * 3 // 10)))
            owned = [(s, s * 10 + n) for s in rng.sample(sorted(reader.listed), max(2, size // 6))
                     for n in range(1, volume_count(s) + 1)]
            stored = collection_items(owned, owner=index)
            reader.items = {item["item_id"]: item["volume_id"] for item in stored}
            await db.users.update_one({"_id": user_id}, {"$set": {
                "statuses": statuses(sorted(reader.listed)), "ratings": ratings(sorted(reader.rated)),
                "collection": stored, collection_stats.FIELD: collection_stats.figures_of(stored)}})
            readers.append(reader)
        await set_rating_aggregates(db)
        for reader in readers:
            assert (await reader.request("POST", f"/user/update-image/{reader.user_id}",
                                         {"image": avatar(400)}))[0] == 200
        return readers
    finally:
        await client.close()


async def set_rating_aggregates(db: AsyncDatabase) -> None:
    """What the rating routes would have counted for the seeded ratings (recount-ratings, which
    repairs series one transaction at a time, is made for a few drifted series, not thousands)."""
    totals: dict[int, list[int]] = {}
    async for user in db.users.find({}, {"ratings": 1}):
        for rating in user.get("ratings", []):
            total = totals.setdefault(rating["series_id"], [0, 0])
            total[0] += 1
            total[1] += round(rating["rating"] * 2)
    await db.series.bulk_write([UpdateOne({"_id": series_id}, {"$set": {"rating_count": count,
                                                                        "rating_half_points": half_points}})
                                for series_id, (count, half_points) in totals.items()])


async def oplog_entries(service: ServiceProcess) -> int | None:
    uri = run_command(["database-uri"], service.env).stdout.strip()
    client = connect(uri)
    try:
        return await client.local["oplog.rs"].estimated_document_count()
    except Exception:  # noqa: BLE001 - a figure for the report, not a condition of the run
        return None
    finally:
        await client.close()


async def drive(readers: list[Reader], total: int, memory: Memory) -> tuple[list[Sample], Counter[str]]:
    samples: list[Sample] = []
    sent: Counter[str] = Counter()
    names, weights = list(MIX), list(MIX.values())
    started = 0

    async def reader_loop(reader: Reader) -> None:
        nonlocal started
        while started < total:
            started += 1
            action = reader.feasible(reader.random.choices(names, weights)[0])
            sent[action] += 1
            began = time.monotonic()
            try:
                status = await reader.act(action)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = 599  # no answer at all
            finished = time.monotonic()
            samples.append(Sample(finished, action, status, (finished - began) * 1000))

    async def sampler() -> None:
        while True:
            memory.sample(len(samples))
            await asyncio.sleep(MEMORY_SAMPLE_S)

    watching = asyncio.create_task(sampler())
    try:
        await asyncio.gather(*(reader_loop(r) for r in readers))
    finally:
        watching.cancel()
    memory.sample(len(samples))
    return samples, sent


def failed(sample: Sample) -> bool:
    return not (200 <= sample.status < 300 or sample.status == 304)


def report(samples: list[Sample], sent: Counter[str], memory: Memory, began: float) -> dict[str, Any]:
    errors = [s for s in samples if failed(s)]
    by_action = Counter(s.action for s in errors)
    print(f"\n{len(samples):,} requests served in {samples[-1].finished - began:.0f} s, {len(errors)} errors")
    if errors:
        print("errors by status: " + ", ".join(f"{code}: {n}" for code, n in Counter(s.status for s in errors).items()))
    print("\n| request | planned | sent | errors | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    for action, share in MIX.items():
        latencies = [s.ms for s in samples if s.action == action]
        print(f"| {action} | {share / 10:.1f}% | {sent[action]:,} | {by_action[action]} | "
              f"{percentile(latencies, 0.5):.1f} | {percentile(latencies, 0.99):.1f} |")
    print("\n| requests | until s | req/s | p50 ms | p99 ms | errors | service RSS | database RSS | database files |\n"
          "|---|---|---|---|---|---|---|---|---|")
    windows = []
    size = len(samples) // WINDOWS
    previous_end = began
    for w in range(WINDOWS):
        chunk = samples[w * size:(w + 1) * size if w < WINDOWS - 1 else len(samples)]
        end = chunk[-1].finished
        latencies = [s.ms for s in chunk]
        _, _, service_rss, database_rss = memory.nearest(end)
        row = {"requests": f"{w * size + 1:,}-{w * size + len(chunk):,}", "until_s": round(end - began),
               "rps": round(len(chunk) / (end - previous_end)), "p50": round(percentile(latencies, 0.5), 1),
               "p99": round(percentile(latencies, 0.99), 1), "errors": sum(failed(s) for s in chunk),
               "service_rss": mib(service_rss), "database_rss": mib(database_rss),
               "database_files": mib(memory.files_at(end), 1)}
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
        windows.append(row)
        previous_end = end
    warmup = min(WARMUP_REQUESTS, len(samples) // WINDOWS)
    warm = memory.first_after(warmup)
    final = memory.samples[-1]
    growth = (final[2] - warm[2]) / warm[2] * 100 if warm[2] and final[2] else None
    print(f"\nresident memory after the warm-up ({warmup:,} requests) and at the end: "
          f"service {mib(warm[2])} -> {mib(final[2])} ({growth:+.1f}%), "
          f"database {mib(warm[3])} -> {mib(final[3])}")
    return {"requests": len(samples), "errors": len(errors), "seconds": round(samples[-1].finished - began),
            "windows": windows, "service_rss_kib": [warm[2], final[2]], "database_rss_kib": [warm[3], final[3]],
            "service_growth_percent": None if growth is None else round(growth, 1)}


async def main(total: int = REQUESTS) -> dict[str, Any]:
    rng = random.Random(7)
    random.seed(7)
    with tempfile.TemporaryDirectory(prefix="tsundoku-soak-") as name:
        data_dir = Path(name) / "data"
        data_dir.mkdir()
        # The embedded default, as `make run` starts it; more sign-ups an hour than the default 10,
        # since all 50 readers come from one address.
        service = ServiceProcess(data_dir, REGISTER_LIMIT_PER_HOUR="1000")
        await service.start()
        readers: list[Reader] = []
        try:
            readers = await seed(service, rng)
            print(run_command(["recount-ratings"], service.env).stdout.strip().splitlines()[-1])
            sizes = sorted(len(r.listed) for r in readers)
            print(f"{machine()}; {READERS} readers with {min(sizes):,} to {max(sizes):,} statuses "
                  f"(median {sizes[len(sizes) // 2]:,}, {sum(sizes):,} in all), "
                  f"{sum(len(r.items) for r in readers):,} collection items, {sum(len(r.rated) for r in readers):,} "
                  f"ratings, an avatar each; {CATALOG_SIZE:,} series; {total:,} requests", flush=True)
            files_before = directory_bytes(data_dir / "db")
            print(f"largest database files before: {largest_files(data_dir / 'db')}")
            oplog_before = await oplog_entries(service)
            memory = Memory(service.process.pid, data_dir / "db")  # type: ignore[union-attr]
            began = time.monotonic()
            samples, sent = await drive(readers, total, memory)
            results = report(samples, sent, memory, began)
            files_after = directory_bytes(data_dir / "db")
            print(f"largest database files after: {largest_files(data_dir / 'db')}")
            oplog_after = await oplog_entries(service)
            print(f"database files: {mib(files_before, 1)} before the load, {mib(files_after, 1)} after; "
                  f"oplog entries {oplog_before} -> {oplog_after}")
            recount = run_command(["recount-ratings"], service.env).stdout.strip().splitlines()[-1]
            print(recount)
            # What `server.py compact` gives back (issue 34): the service stopped, as it requires.
            for reader in readers:
                await reader.session.close()
            readers = []
            await service.stop()
            compacted = run_command(["compact"], service.env, timeout=3600)
            print(compacted.stdout.strip().splitlines()[-1] if compacted.returncode == 0 else compacted.stderr)
            results.update({"database_bytes": [files_before, files_after, directory_bytes(data_dir / "db")],
                            "oplog_entries": [oplog_before, oplog_after], "recount": recount, "machine": machine(),
                            "database_files_mib": [round(b / 2**20) for _, b in memory.files[::30]]})
            return results
        finally:
            for reader in readers:
                await reader.session.close()
            if service.process is not None and service.process.poll() is None:
                await service.stop()


if __name__ == "__main__":  # `python -m bench.soak [REQUESTS]`: a shorter run to try it out
    print(json.dumps(asyncio.run(main(*(int(a) for a in sys.argv[1:]))), indent=1))
