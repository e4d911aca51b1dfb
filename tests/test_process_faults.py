"""The service as its own process when things die: the embedded database killed (restarted, with
nothing acknowledged lost), killed for good (the service gives up), hung or on a full disk (alive
but not serving: restarted), the service stopped while writes are in flight, a huge upload beside
other requests, and the database closed to others."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import http.client
import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pymongo import AsyncMongoClient, WriteConcern
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
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        killed = database_pid(service)
        os.kill(killed, signal.SIGKILL)
        # Hold the database's port: every restart now fails (1 s, 2 s, 4 s, 8 s of backoff). The
        # port is free a moment after the process ends; on a loaded machine the supervisor may
        # have started the database again first: that one is killed too (one more failure).
        deadline = time.monotonic() + 20
        while True:
            try:
                blocker.bind(("127.0.0.1", port))
                break
            except OSError as error:
                assert error.errno == errno.EADDRINUSE and time.monotonic() < deadline, error
            current = database_pid(service)
            if current != killed and pid_alive(current):
                os.kill(current, signal.SIGKILL)
                killed = current
            await asyncio.sleep(0.02)
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


async def longest_poll_during_upload(service: Any, client: Any, user_id: str, body: bytes) -> float:
    """Uploads `body` as the user's image from a thread while polling /health: the longest poll."""
    cookie = client.cookie_header()
    result: dict[str, Any] = {}
    uploading = threading.Event()

    def upload() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
        connection.putrequest("POST", f"/user/update-image/{user_id}")
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
    return max(waits)


@pytest.mark.alone  # bounds each request's wait
async def test_the_largest_upload_never_stalls_other_requests_for_100_ms(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        client = service.client()
        user = await client.sign_up("alice")
        # Line-wrapped base64 in a data URL: the slowest shape to clean and decode.
        encoded = base64.encodebytes(largest_allowed_png(8 * 1024 * 1024)).decode("ascii")
        body = json.dumps({"image": "data:image/png;base64," + encoded}).encode()
        # Another upload (3 at most) when one saw a poll of 100 ms or more: work on the event loop
        # stalls every upload alike, while a virtual machine whose host takes its cores away
        # (steal time, seen at 8-33% on 2026-12-07) stalls one at random: here, alone, the longest
        # polls of six uploads were 83-115 ms (one full run before had failed at 109 ms).
        longest: list[float] = []
        for _ in range(3):
            longest.append(await longest_poll_during_upload(service, client, user["id"], body))
            print(f"longest /health poll during the upload: {longest[-1] * 1000:.0f} ms")
            if longest[-1] < 0.1:
                break
        assert min(longest) < 0.1, f"the longest poll of each upload: {[round(w * 1000) for w in longest]} ms"


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


async def test_a_hung_database_gives_503_and_is_restarted_when_it_stays_hung(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        client = service.client()
        await client.sign_up("alice")
        assert (await client.post("/user/reading-status/add/1", STATUS)).status == 200
        hung = database_pid(service)
        os.kill(hung, signal.SIGSTOP)  # alive, connections accepted, nothing answered, for good
        deciding = asyncio.ensure_future(wait_for_health(client, 503, timeout=20, state="not-serving"))
        started = time.monotonic()
        reply = await client.get("/auth/me")
        waited = time.monotonic() - started
        assert reply.status == 503 and reply.body["data"] == "Service unavailable"
        assert waited < 12  # the 10 s bound on every operation, not forever
        await deciding  # its write probes failed: it said so before restarting it
        body = await wait_for_health(client, 200, timeout=40)
        assert body["database"]["restarts"] == 1
        assert body["database"]["last_exit"].startswith("stopped serving ("), body
        assert database_pid(service) != hung
        assert reaped(hung)
        assert "ERROR tsundoku.embedded: the embedded database stopped serving: " in service.output()
        assert (await client.get("/auth/me")).status == 200
        history = await client.get("/user/reading-history?limit=100")
        assert [entry["id"] for entry in history.body["series"]] == [1]


@contextlib.contextmanager
def small_disk(directory: Path, megabytes: int) -> Iterator[None]:
    """A tmpfs of `megabytes` on `directory`, unmounted afterwards."""
    directory.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}M,mode=0700", "tmpfs", str(directory)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (mount: {mounted.stderr.strip()}); it needs root")
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(directory)], check=True)


def fill_disk(path: Path) -> int:
    """Writes `path` until the filesystem has no room left; its size."""
    written = 0
    with open(path, "wb", buffering=0) as file:
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    written += file.write(b"\0" * chunk) or 0
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return written


async def test_a_full_disk_answers_503_and_the_service_recovers_alone_once_there_is_room(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with small_disk(data_dir, 64):
        async with running_service(data_dir) as service:
            client = service.client()
            await client.sign_up("alice")
            assert (await client.post("/user/reading-status/add/1", STATUS)).status == 200  # acknowledged
            printed = await asyncio.to_thread(run_command, ["database-uri"], service.env)
            assert printed.returncode == 0, printed.stderr
            # Someone else's data keeps growing on the disk. Its collection exists before the disk
            # fills: creating one on a full disk fails alone, and nothing else.
            writer: AsyncMongoClient = AsyncMongoClient(printed.stdout.strip(), timeoutMS=10_000)
            growth = writer.scratch.get_collection("growth", write_concern=WriteConcern(w="majority", j=True))
            try:
                await growth.insert_one({"_id": -1})
                filled = fill_disk(data_dir / "filler")
                # It grows until the storage engine panics (the journal's preallocated room takes a
                # few megabytes first). SecantusDB then fails every command but ping, for good, also
                # once there is room again.
                for acknowledged in range(2000):
                    try:
                        await growth.insert_one({"_id": acknowledged, "pad": os.urandom(50_000)})
                    except OperationFailure as error:
                        refused = error
                        break
                else:
                    raise AssertionError("100 MB went onto a full disk of 64 MB")
            finally:
                await writer.close()
            assert refused.code == 1, refused  # "internal server error", like any other bug in the server

            # Until the supervisor's next probe fails (a second at most), a ping on an open connection
            # still succeeds and one on a new connection fails: wait for the supervisor to know.
            deadline = time.monotonic() + 10
            while (body := (await client.get("/health")).body)["database"]["state"] == "running":
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.05)
            assert body["database"]["state"] in ("not-serving", "restarting"), body
            started = time.monotonic()
            health = await client.get("/health")
            answered_in = time.monotonic() - started
            print(f"/health on a full disk: {health.status} in {answered_in * 1000:.0f} ms; the filler took "
                  f"{filled / 2**20:.0f} MB")
            assert health.status == 503 and answered_in < 2.5  # the contract is one second; loose for a loaded machine
            assert (await client.get("/auth/me")).body == {"data": "Service unavailable", "code": 503}
            assert (await client.post("/user/reading-status/add/2", STATUS)).status == 503

            (data_dir / "filler").unlink()
            body = await wait_for_health(client, 200, timeout=40)
            assert body["database"]["restarts"] >= 1, body
            assert (await client.post("/user/reading-status/add/2", STATUS)).status == 200
            history = await client.get("/user/reading-history?limit=100")
            assert sorted(entry["id"] for entry in history.body["series"]) == [1, 2]
            # The change feed holds exactly the writes that took: the refused one left no change.
            feed = (await client.get("/user/changes")).body["changes"]
            assert [(c["cursor"], c["kind"], c["id"]) for c in feed] == [("1", "reading-status", "1"),
                                                                        ("2", "reading-status", "2")]
            # Also what the full disk still acknowledged (in the journal's preallocated room).
            reader: AsyncMongoClient = AsyncMongoClient(printed.stdout.strip(), timeoutMS=10_000)
            try:
                assert await reader.scratch.growth.count_documents({"_id": {"$gte": 0}}) == acknowledged
            finally:
                await reader.close()
            log = service.output()
            assert "ERROR tsundoku.embedded: the embedded database stopped serving: " in log
            assert not re.search(r"tsundoku\.access: \S+ \S+ 500 ", log), log  # 503, never 500


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
