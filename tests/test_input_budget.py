"""The route-table budget: every route that takes input gets the worst shapes at its size limit,
while a second client polls /health, and the service (its own process) must answer each with a
2xx or 4xx, never keep /health waiting more than HEALTH_WAIT_LIMIT_S, and grow its peak RSS by no
more than `rss_bound(limit)`. Routes come from `all_routes()`: a new route is covered without
anyone remembering. The table it measured is written to `input-budget.md` in the test's
temporary directory (and shown with `pytest -s`); docs/performance.md's table is one such run."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from formats import mal_xml
from handlers.application import all_routes
from settings import Settings
from tests.api_client import ApiClient
from tests.service_process import run_command, running_service
from web.openapi import Operation, Route

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.alone]

HEALTH_WAIT_LIMIT_S = 0.2
MB = 1024 * 1024
# Headers (the request line and its query string included) are at most Tornado's 64 KB.
QUERY_BYTES = 60 * 1024


def rss_bound(limit: int) -> int:
    """What one request may add to the service's peak RSS: the body as it arrived and once
    joined, what parsing builds within the value cap (together at most three times the limit),
    plus 96 MB: one argon2 hash (64 MiB, a password route) and the interpreter's own slack."""
    return 3 * limit + 96 * MB


# The poller is a process of its own: in a thread of the test process it shared that process's
# GIL with the client sending 16 MB, and the test's own work was counted as the service's wait.
POLLER = r"""
import http.client, sys, time
connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
while True:
    started = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the test's
    connection.request("GET", "/health")
    response = connection.getresponse()
    response.read()
    print(started, time.monotonic() - started, response.status, flush=True)
    time.sleep(0.01)
"""


@dataclass
class HealthPoller:
    """Polls /health on its own keep-alive connection, from its own process, and keeps each wait."""

    port: int
    waits: list[tuple[float, float]] = field(default_factory=list)  # (started, seconds)
    statuses: set[int] = field(default_factory=set)
    _process: subprocess.Popen[str] | None = None

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            started, seconds, status = line.split()
            self.statuses.add(int(status))
            self.waits.append((float(started), float(seconds)))

    async def one_poll_since(self, since: float, limit_s: float = 5.0) -> None:
        deadline = time.monotonic() + limit_s
        while not any(started >= since for started, _ in self.waits[-3:]):
            assert time.monotonic() < deadline, "the /health poller stopped"
            await asyncio.sleep(0.005)

    def longest_since(self, since: float) -> float:
        return max((seconds for started, seconds in self.waits if started + seconds >= since), default=0.0)

    def start(self) -> threading.Thread:
        self._process = subprocess.Popen([sys.executable, "-c", POLLER, str(self.port)], stdout=subprocess.PIPE,
                                         text=True)
        thread = threading.Thread(target=self._read, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


class ProcessMemory:
    """The service's resident memory from /proc; the peak is reset before each request."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _status(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def reset_peak(self) -> int:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)
        return self._status("VmRSS")

    def peak(self) -> int:
        return self._status("VmHWM")


def body_limit(route: Route, content_type: str = "application/json") -> int:
    """The handler's own limit, asked as `prepare` asks it."""
    stand_in = SimpleNamespace(services=SimpleNamespace(settings=Settings()),
                               request=SimpleNamespace(headers={"Content-Type": content_type}))
    return route.handler.body_limit(stand_in)  # type: ignore[arg-type]


def string_field(operation: Operation) -> str:
    """A string property of the request model, for the string shapes."""
    assert operation.request is not None
    properties = operation.request.model_json_schema(by_alias=True).get("properties", {})
    for name, schema in properties.items():
        if schema.get("type") == "string" or any(s.get("type") == "string" for s in schema.get("anyOf", [])):
            return name
    return next(iter(properties), "x")


def json_shapes(size: int, name: str) -> dict[str, bytes]:
    """The worst JSON of `size` bytes: what makes a parser or validator build or report most."""
    key = name.encode()
    per_key = len(b'"k1000000":0,')
    return {
        "many keys": b"{" + b",".join(b'"k%d":0' % i for i in range(size // per_key)) + b"}",
        "long array of tiny items": b"[" + b"0," * (size // 2 - 1) + b"0]",
        "empty containers": b"[" + b"[]," * (size // 3 - 1) + b"[]]",
        "deep nesting": b"[" * size,
        "deep objects": b'{"a":' * (size // 5),
        "a long string": b'{"' + key + b'":"' + b"a" * (size - 64) + b'"}',
        "many escapes": b'{"' + key + b'":"' + b"\\u00e9" * ((size - 64) // 6) + b'"}',
        "commas in a string": b'{"' + key + b'":"' + b"," * (size - 64) + b'"}',
        "dates at BSON's edges": json.dumps({"start": "0000-01-01", "end": "9999-12-31", "date": "0001-01-01",
                                             "last_update": "0001-01-01T00:00:00+00:01"}).encode(),
    }


def image_shapes(size: int) -> dict[str, bytes]:
    """The worst text for an upload's `image`: what its base64 reading once scanned whole in one
    call (a data URL prefix that never ends held the GIL 1.5 s)."""
    room = size - 64
    return {
        "a data URL prefix that never ends": b'{"image":"data:a/b' + b";a=b" * (room // 4) + b'"}',
        "base64, then a run of padding": b'{"image":"QQ' + b"=" * room + b'"}',
    }


def account_file_shapes() -> dict[str, bytes]:
    status = {"series_id": 1, "client": 1, "visibility": "public", "progress_type": "volumes", "progress": 3,
              "status": "started", "reread": 0, "score": 5, "priority": "high", "start": "2020-01",
              "end": None, "notes": "a note, with commas, as notes have", "last_update": "2024-05-06T07:08:09Z"}
    most = [{**status, "series_id": n} for n in range(1, 20_001)]
    edges = [{"series_id": 1, "rating": 5, "last_update": "9999-12-31T23:59:59-14:00"},
             {"series_id": 2, "rating": 5, "last_update": "0001-01-01T00:00:00+00:01"}]
    return {
        "20,000 statuses (a dry run)": json.dumps({"format": "tsundoku-export", "version": 1,
                                                   "reading_statuses": most}).encode(),
        "20,001 tiny items in a list": json.dumps({"format": "tsundoku-export", "version": 1,
                                                   "ratings": [0] * 20_001}).encode(),
        "instants at BSON's edges": json.dumps({"format": "tsundoku-export", "version": 1,
                                                "ratings": edges}).encode(),
    }


def mal_shapes() -> dict[str, tuple[str, bytes]]:
    head = b'<?xml version="1.0"?>\n<myanimelist><myinfo><user_export_type>2</user_export_type></myinfo>'
    entry = b"<manga><manga_mangadb_id>1</manga_mangadb_id><manga_title>T</manga_title></manga>"
    xml_limit = mal_xml.MAX_XML_BYTES
    return {
        "20 MB of bare & in a title (gzip)": ("application/gzip", gzip.compress(
            head + b"<manga><manga_title>" + b"&" * (20 * MB) + b"</manga_title></manga></myanimelist>")),
        "a gzip bomb (past 50 MB inflated)": ("application/gzip", gzip.compress(
            head + (b"<!--" + b"a" * 500_000 + b"-->") * (xml_limit // 500_000 + 1) + b"</myanimelist>")),
        "20,000 entries (a dry run)": ("application/xml", head + entry * 20_000 + b"</myanimelist>"),
        "20,001 entries": ("application/xml", head + entry * 20_001 + b"</myanimelist>"),
        "deep nesting": ("application/xml", head + b"<manga>" + b"<a>" * ((xml_limit - 1024) // 3)),
        "many children": ("application/xml", head + b"<manga>" + b"<a/>" * ((xml_limit - 1024) // 4)),
        "entity expansion": ("application/xml", b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                                                + b"".join(b'<!ENTITY a%d "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">' % i
                                                           for i in range(9)) + b"]><myanimelist>&a8;</myanimelist>"),
    }


@dataclass
class Measured:
    route: str
    shape: str
    bytes: int
    status: int
    seconds: float
    health_wait: float
    rss_growth: int
    bound: int


class Target:
    """The service under test and the values its paths need."""

    def __init__(self, service: Any, api: ApiClient, user_id: str, item_id: str) -> None:
        self.service, self.api = service, api
        self.memory = ProcessMemory(service.process.pid)
        self.poller = HealthPoller(service.port)
        self.values = {"id": "1", "slug": "alice", "res": "scaled"}
        self.by_path = {"/users/{id}/save-settings": user_id, "/user/update-image/{id}": user_id,
                        "/admin-users/update-image/{id}": user_id, "/user/collection/add/{id}": "101",
                        "/user/collection/update/{id}": item_id, "/user/import/{id}/undo": "0" * 24,
                        "/admin-users/account/{id}": "0" * 24, "/auth/sessions/{id}": "none",
                        "/user/avatar/{id}/{res}": user_id, "/user/collection/delete/{id}": "0" * 24}
        self.measured: list[Measured] = []

    def path(self, route: Route) -> str:
        path = route.path
        for name in route.parameters:
            path = path.replace("{" + name + "}", self.by_path.get(route.path, self.values[name]), 1)
        return path

    async def send(self, route: Route, method: str, shape: str, body: bytes | None, content_type: str,
                   limit: int, query: str = "") -> None:
        rss_before = self.memory.reset_peak()
        started = time.monotonic()
        # As from the service's own pages: a GET that writes (web.same_origin) then reads its input.
        headers = {"Content-Type": content_type, "Sec-Fetch-Site": "same-origin"}
        if method in ("POST", "DELETE"):
            # The longest key: a write with one is fingerprinted whole, and runs in a transaction.
            headers["Idempotency-Key"] = uuid.uuid4().hex.ljust(255, "k")
        reply = await self.api.request(method, self.path(route) + query, body=body, headers=headers)
        answered = time.monotonic()
        seconds = answered - started
        await self.poller.one_poll_since(answered)  # a poll that began after the answer, finished
        self.measured.append(Measured(f"{method} {route.path}", shape, len(body or query), reply.status, seconds,
                                      self.poller.longest_since(started), self.memory.peak() - rss_before,
                                      rss_bound(limit)))


async def exercise(target: Target, route: Route) -> None:
    for method in route.handler.implemented_methods():
        operation = route.handler.api.get(method.lower())
        if method in ("GET", "HEAD"):
            long_query = "?" + "&".join(f"k{i}=1" for i in range(QUERY_BYTES // 9))
            await target.send(route, method, "many query keys", None, "", QUERY_BYTES, long_query)
            await target.send(route, method, "a long query value", None, "", QUERY_BYTES,
                              "?search=" + "%25" * (QUERY_BYTES // 3))
        elif route.path == "/user/import/mal":
            for shape, (content_type, body) in mal_shapes().items():
                await target.send(route, method, shape, body, content_type, body_limit(route, content_type))
        elif operation is not None and operation.request is not None:
            limit = body_limit(route)
            shapes = json_shapes(limit - 1024, string_field(operation))
            if route.path == "/user/import":
                shapes.update(account_file_shapes())
            if route.path.endswith("/update-image/{id}"):
                shapes.update(image_shapes(limit - 1024))
            for shape, body in shapes.items():
                await target.send(route, method, shape, body, "application/json", limit)


def summary(measured: list[Measured]) -> str:
    """A line per route: the input that grew the peak RSS most, and the longest /health wait
    and answer time over all its inputs."""
    lines = ["| route | worst input (peak RSS) | its answer | peak RSS growth | bound | slowest answer | "
             "longest /health wait |", "|---|---|---|---|---|---|---|"]
    by_route: dict[str, list[Measured]] = {}
    for m in measured:
        by_route.setdefault(m.route, []).append(m)
    for route, rows in by_route.items():
        worst = max(rows, key=lambda m: m.rss_growth)
        lines.append(f"| `{route}` | {worst.shape} ({worst.bytes:,} bytes) | {worst.status} | "
                     f"{worst.rss_growth / MB:.1f} MB | {worst.bound / MB:.0f} MB | "
                     f"{max(m.seconds for m in rows) * 1000:.0f} ms | {max(m.health_wait for m in rows) * 1000:.0f} ms |")
    return "\n".join(lines) + "\n"


def report(measured: list[Measured]) -> str:
    lines = ["| route | worst input | bytes | answer | time | longest /health wait | peak RSS growth | bound |",
             "|---|---|---|---|---|---|---|---|"]
    for m in measured:
        lines.append(f"| `{m.route}` | {m.shape} | {m.bytes:,} | {m.status} | {m.seconds * 1000:.0f} ms | "
                     f"{m.health_wait * 1000:.0f} ms | {m.rss_growth / MB:.1f} MB | {m.bound / MB:.0f} MB |")
    return "\n".join(lines) + "\n"


async def test_every_route_stays_within_its_budget_at_its_size_limit(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        api = service.client()
        user = await api.sign_up("alice")
        assert run_command(["set-role", "alice", "admin"], service.env).returncode == 0
        added = await api.post("/user/collection/add/101", {})
        assert added.status == 200, added.body
        target = Target(service, api, user["id"], added.body["item_id"])
        thread = target.poller.start()
        try:
            for route in all_routes():
                await exercise(target, route)
        finally:
            target.poller.stop()
            thread.join(10)
        assert (await api.get("/auth/me")).status == 200  # alice was never signed out by a shape
    table = report(target.measured)
    (tmp_path / "input-budget.md").write_text(summary(target.measured) + "\n" + table)
    print("\n" + summary(target.measured) + "\n" + table)
    covered = {m.route.split(" ", 1)[1] for m in target.measured}
    takes_input = {r.path for r in all_routes() if r.path == "/user/import/mal" or any(
        operation.request is not None or method == "get" for method, operation in r.handler.api.items())}
    assert takes_input <= covered, takes_input - covered
    assert target.poller.statuses == {200}, target.poller.statuses
    failures = [m for m in target.measured if not (200 <= m.status < 500)]
    assert not failures, failures
    slow_health = [m for m in target.measured if m.health_wait > HEALTH_WAIT_LIMIT_S]
    assert not slow_health, report(slow_health)
    too_much_memory = [m for m in target.measured if m.rss_growth > m.bound]
    assert not too_much_memory, report(too_much_memory)

