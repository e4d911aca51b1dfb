"""The service as its own process when things die: the embedded database killed (restarted, with
nothing acknowledged lost), killed for good (the service gives up), the service stopped while
writes are in flight, a huge upload beside other requests, and the database closed to others."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import re
import signal
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from tests.api_client import ApiClient
from tests.bodies import STATUS as BASE_STATUS
from tests.images import b64, image_bytes
from tests.service_process import ServiceProcess, run_command, running_service

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

STATUS = {**BASE_STATUS, "progress": 1, "priority": "mid"}
# Demo catalog: series 1..124 of client 1, each with volumes <id>01..<id>03.
SERIES = list(range(1, 21))
VOLUMES = [series_id * 100 + 1 for series_id in range(1, 11)]


def database_pid(service: ServiceProcess) -> int:
    """The embedded database's current pid, from the service's log."""
    found = re.findall(r"pid (\d+)\)", service.output())
    assert found, service.output()
    return int(found[-1])


def database_port(data_dir: Path) -> int:
    return int(json.loads((data_dir / "embedded.json").read_text())["port"])


def reaped(pid: int) -> bool:
    """Gone from the process table: not running and not a zombie."""
    return not Path(f"/proc/{pid}").exists()


async def wait_for_health(client: ApiClient, status: int, timeout: float = 40, state: str | None = None
                          ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = await client.get("/health")
            if reply.status == status and state in (None, reply.body["database"]["state"]):
                return reply.body
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"/health did not answer {status} within {timeout} s")


async def watch_recovery(client: ApiClient, timeout: float = 40) -> list[tuple[int, Any, tuple[int, float] | None]]:
    """Polls /health every 50 ms without waiting for earlier polls (one may be stuck in a ping
    to the dead server), until it is healthy after a restart. Whenever a poll says the database
    is restarting, it also asks /auth/me and notes its status and how long it took."""
    seen: list[tuple[int, Any, tuple[int, float] | None]] = []

    async def probe() -> None:
        try:
            reply = await client.get("/health")
            me = None
            if reply.status == 503 and reply.body["database"]["state"] == "restarting":
                started = time.monotonic()
                me = ((await client.get("/auth/me")).status, time.monotonic() - started)
            seen.append((reply.status, reply.body, me))
        except OSError:
            pass

    probes = []
    deadline = time.monotonic() + timeout
    while not any(status == 200 and body["database"]["restarts"] for status, body, _ in seen):
        assert time.monotonic() < deadline, "the service did not recover"
        probes.append(asyncio.create_task(probe()))
        await asyncio.sleep(0.05)
    await asyncio.gather(*probes)
    return sorted(seen, key=lambda s: s[0] == 200 and s[1]["database"]["restarts"])


async def write_burst(client: ApiClient, user_id: str) -> None:
    """Statuses, ratings, collection items and an avatar, every one acknowledged with 200."""
    writes = [client.post(f"/user/reading-status/add/{s}", STATUS) for s in SERIES]
    writes += [client.post(f"/user/series-rating/add/{s}", {"rating": 1 + s % 10}) for s in SERIES[:10]]
    writes += [client.post(f"/user/collection/add/{v}", {"price": v / 100, "date": "2024-05-01"}) for v in VOLUMES]
    writes.append(client.post(f"/user/update-image/{user_id}", {"image": b64(image_bytes("PNG", (300, 200)))}))
    replies = await asyncio.gather(*writes)
    assert [r.status for r in replies] == [200] * len(replies), [r.body for r in replies if r.status != 200]


async def assert_burst_stored(client: ApiClient, user_id: str) -> None:
    history = await client.get("/user/reading-history?limit=100")
    assert sorted(entry["id"] for entry in history.body["series"]) == SERIES
    for s in SERIES[:10]:
        assert (await client.get(f"/user/series-rating/{s}")).body["rating"] == 1 + s % 10
    items = await client.get("/user/collection?client=1&limit=100")
    assert sorted(v["id"] for v in items.body["volumes"]) == VOLUMES
    assert (await client.get(f"/user/avatar/{user_id}/scaled", send_cookies=False)).status == 200


@pytest.mark.alone  # bounds each request's wait
async def test_a_killed_database_is_restarted_and_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        client = service.client()
        user = await client.sign_up("alice")
        await write_burst(client, user["id"])
        killed = database_pid(service)
        os.kill(killed, signal.SIGKILL)

        seen = await watch_recovery(client)
        restarting = [body for status, body, _ in seen if status == 503 and body["database"]["state"] == "restarting"]
        assert restarting and restarting[0]["database"]["last_exit"] == "killed by signal SIGKILL"
        # Meanwhile other routes answer 503 at once, not after a server selection timeout (3 s).
        # A probe whose /auth/me arrived after the restart had finished is answered normally.
        meanwhile = [me for _, _, me in seen if me is not None]
        assert meanwhile and meanwhile[0][0] == 503, meanwhile
        assert all(status in (503, 200) and took < 1.0 for status, took in meanwhile), meanwhile
        assert seen[-1][1]["database"] == {"state": "running", "restarts": 1, "last_exit": "killed by signal SIGKILL"}
        assert reaped(killed)
        assert database_pid(service) != killed
        log = service.output()
        assert re.search(r"ERROR tsundoku.embedded: the embedded database exited unexpectedly "
                         r"\(killed by signal SIGKILL\); the last lines of its log:", log), log
        await assert_burst_stored(client, user["id"])
        # And it keeps working: the old session, new writes.
        assert (await client.post("/user/reading-status/add/50", STATUS)).status == 200


async def test_a_database_that_keeps_dying_makes_the_service_exit_non_zero(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path / "data")
    await service.start()
    port = database_port(tmp_path / "data")
    blocker = socket.socket()
    try:
        os.kill(database_pid(service), signal.SIGKILL)
        await asyncio.sleep(0.05)
        # Hold the database's port: every restart now fails (1 s, 2 s, 4 s, 8 s of backoff).
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        code = await service.wait(timeout=60)
    finally:
        blocker.close()
    assert code == 3
    log = service.output()
    assert "did not start again" in log
    assert "failed 5 times within 60 s" in log


async def test_sigterm_during_a_burst_of_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path / "data")
    await service.start()
    client = service.client()
    await client.sign_up("alice")
    writes = [asyncio.create_task(client.post(f"/user/reading-status/add/{s}", STATUS)) for s in range(1, 61)]
    while sum(task.done() for task in writes) < 5:
        await asyncio.sleep(0.005)
    service.signal(signal.SIGTERM)
    replies = await asyncio.gather(*writes, return_exceptions=True)
    assert await service.wait() == 0
    acknowledged = [s for s, r in zip(range(1, 61), replies, strict=True) if not isinstance(r, BaseException) and r.status == 200]
    refused = [r for r in replies if isinstance(r, BaseException) or r.status != 200]
    assert len(acknowledged) >= 5
    # Refused cleanly: the connection was refused or closed, or the answer was 503.
    assert all(isinstance(r, OSError) or getattr(r, "status", None) == 503 or "Stream closed" in str(r)
               for r in refused), refused

    again = ServiceProcess(tmp_path / "data")
    await again.start()
    try:
        client.base_url = again.base_url
        history = await client.get("/user/reading-history?limit=100")
        stored = {entry["id"] for entry in history.body["series"]}
        assert set(acknowledged) <= stored
    finally:
        assert await again.stop() == 0


def largest_allowed_png(max_bytes: int) -> bytes:
    """Noise does not compress: a PNG of just under `max_bytes`."""
    side = int((max_bytes / 3) ** 0.5) - 8
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    from io import BytesIO

    buffer = BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    data = buffer.getvalue()
    assert max_bytes * 0.95 < len(data) <= max_bytes
    return data


@pytest.mark.alone  # bounds each request's wait
async def test_the_largest_upload_never_stalls_other_requests_for_100_ms(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        client = service.client()
        user = await client.sign_up("alice")
        # Line-wrapped base64 in a data URL: the slowest shape to clean and decode.
        encoded = base64.encodebytes(largest_allowed_png(8 * 1024 * 1024)).decode("ascii")
        body = json.dumps({"image": "data:image/png;base64," + encoded}).encode()
        cookie = client.cookie_header()
        result: dict[str, Any] = {}
        uploading = threading.Event()

        def upload() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
            connection.putrequest("POST", f"/user/update-image/{user['id']}")
            for header, value in (("Content-Type", "application/json"), ("Cookie", cookie),
                                  ("Content-Length", str(len(body)))):
                connection.putheader(header, value)
            connection.endheaders()
            uploading.set()
            for offset in range(0, len(body), 256 * 1024):
                connection.send(body[offset:offset + 256 * 1024])
            response = connection.getresponse()
            result["status"] = response.status
            result["body"] = response.read()
            connection.close()

        thread = threading.Thread(target=upload)
        thread.start()
        await asyncio.to_thread(uploading.wait)
        waits = []
        while thread.is_alive():
            started = time.monotonic()
            assert (await client.get("/health")).status == 200
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.005)
        thread.join()
        assert result["status"] == 200, result
        assert len(waits) > 20
        print(f"longest /health poll during the upload: {max(waits) * 1000:.0f} ms")
        assert max(waits) < 0.1, f"a poll waited {max(waits) * 1000:.0f} ms"


async def test_the_embedded_database_refuses_anyone_without_the_credentials(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_service(data_dir) as service:
        await service.client().sign_up("alice")
        credentials = data_dir / "db-credentials.json"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "db").stat().st_mode) == 0o700  # the files themselves
        stranger: AsyncMongoClient = AsyncMongoClient(
            f"mongodb://127.0.0.1:{database_port(data_dir)}/?directConnection=true", serverSelectionTimeoutMS=3000)
        try:
            with pytest.raises(OperationFailure, match="requires authentication"):
                await stranger.tsundoku.users.find_one({})
        finally:
            await stranger.close()
        # The operator's command prints a URI with the credentials, and it works.
        printed = await asyncio.to_thread(run_command, ["database-uri"], service.env)
        assert printed.returncode == 0, printed.stderr
        operator: AsyncMongoClient = AsyncMongoClient(printed.stdout.strip())
        try:
            assert (await operator.tsundoku.users.find_one({}, {"username": 1}))["username"] == "alice"
        finally:
            await operator.close()


async def test_a_hung_database_gives_503_within_the_operation_timeout_and_recovers(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        client = service.client()
        await client.sign_up("alice")
        hung = database_pid(service)
        os.kill(hung, signal.SIGSTOP)  # alive, connections accepted, nothing answered
        try:
            started = time.monotonic()
            reply = await client.get("/auth/me")
            waited = time.monotonic() - started
        finally:
            os.kill(hung, signal.SIGCONT)
        assert reply.status == 503 and reply.body["data"] == "Service unavailable"
        assert waited < 12  # the 10 s bound on every operation, not forever
        await wait_for_health(client, 200)
        assert (await client.get("/auth/me")).status == 200
        assert database_pid(service) == hung  # it was not restarted: it never exited


async def test_a_service_killed_outright_takes_its_database_with_it_also_after_a_restart(tmp_path: Path) -> None:
    # The database is started through a launcher (no preexec_fn) from the event loop's thread; its
    # parent-death signal must fire when the service dies, for the first and a restarted database.
    service = ServiceProcess(tmp_path / "data")
    await service.start()
    first = database_pid(service)
    os.kill(first, signal.SIGKILL)
    client = service.client()
    for _ in range(100):
        reply = await client.get("/health")
        if reply.status == 200 and reply.body["database"]["restarts"] == 1:
            break
        await asyncio.sleep(0.1)
    restarted = database_pid(service)
    assert restarted != first
    service.signal(signal.SIGKILL)
    await service.wait()
    for _ in range(100):
        if not pid_alive(restarted):
            break
        await asyncio.sleep(0.1)
    assert not pid_alive(restarted), "the database outlived the service"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())
