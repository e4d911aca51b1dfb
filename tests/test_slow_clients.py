"""Slow and numerous clients: a connection that never finishes its request gives its file back.

The limits are shortened here (the defaults are 30 s for headers and 60 s for a stalled body);
the mechanism is the same."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from tests.api_client import ApiClient
from tests.conftest import StartApp
from tests.service_process import running_service

pytestmark = pytest.mark.asyncio

REFUSALS = "refused connections in the last"


async def is_closed(reader: asyncio.StreamReader, wait_s: float) -> bool:
    """True when the service closed the connection (EOF) within `wait_s`, without answering."""
    try:
        data = await asyncio.wait_for(reader.read(65536), wait_s)
    except asyncio.TimeoutError:
        return False
    except ConnectionResetError:
        return True
    assert data == b"", data[:200]
    return True


async def trickle(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, data: bytes,
                  every_s: float) -> float | None:
    """Sends one byte every `every_s`; the seconds until the service closed the connection, or None."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for byte in data:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return loop.time() - started
        if await is_closed(reader, every_s):
            return loop.time() - started
    return None


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if REFUSALS in r.getMessage()]


async def test_headers_not_complete_within_the_header_timeout_close_the_connection(start_app: StartApp) -> None:
    running = await start_app(header_timeout_s=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    closed_after = await trickle(writer, reader, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, 0.1)
    assert closed_after is not None and 0.9 <= closed_after < 3.0, closed_after
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed_after_the_header_timeout(start_app: StartApp) -> None:
    running = await start_app(header_timeout_s=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    assert await is_closed(reader, 3.0)
    writer.close()


async def test_a_body_that_brings_too_little_within_the_stall_interval_is_cut_off(
    start_app: StartApp, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_app(body_stall_s=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 500\r\n\r\n")
    closed_after = await trickle(writer, reader, b'{"username": "' + b"a" * 480, 0.1)
    assert closed_after is not None and 0.9 <= closed_after < 3.0, closed_after
    writer.close()
    for _ in range(50):
        if running.app.services.inflight.count == 0:
            break
        await asyncio.sleep(0.02)
    assert running.app.services.inflight.count == 0
    assert len(refusal_lines(caplog)) == 1 and "1 request bodies that stalled" in refusal_lines(caplog)[0]


async def test_a_slow_body_that_keeps_coming_is_not_cut_off(start_app: StartApp) -> None:
    running = await start_app(body_stall_s=1.0)
    api = running.client()
    await api.sign_up("alice")
    body = json.dumps({"username": "alice", "password": "correct horse"}).encode() + b" " * 60_000
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body))
    for start in range(0, len(body), 8192):  # 8 KiB every 0.25 s: 2.5 s in all, 32 KiB/s
        writer.write(body[start:start + 8192])
        await writer.drain()
        await asyncio.sleep(0.25)
    answer = await asyncio.wait_for(reader.read(65536), 5)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    writer.close()


async def test_at_the_connection_cap_half_sent_requests_make_room_for_real_ones(
    start_app: StartApp, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_app(max_connections=20)
    half_sent = []
    for _ in range(60):
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        half_sent.append((reader, writer))
        await asyncio.sleep(0.005)
    assert (await running.client().get("/health")).status == 200
    assert await is_closed(half_sent[0][0], 2.0)  # the longest-waiting ones made room
    assert running.app.services is not None
    lines = refusal_lines(caplog)
    assert len(lines) == 1, lines  # once per interval, not once per connection
    for _, writer in half_sent:
        writer.close()


async def test_at_the_connection_cap_with_every_connection_busy_a_new_one_is_refused(
    start_app: StartApp, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_app(max_connections=5)
    busy = []
    for _ in range(5):  # each has sent its headers and part of a body: a request in progress
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        await writer.drain()
        busy.append((reader, writer))
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await is_closed(reader, 2.0)
    assert "1 over the connection cap" in " ".join(refusal_lines(caplog))
    for _, busy_writer in busy:
        busy_writer.close()
    await asyncio.sleep(0.2)
    assert (await running.client().get("/health")).status == 200


async def test_a_flood_of_half_sent_requests_past_the_open_file_limit_leaves_the_service_answering(
    tmp_path: Path,
) -> None:
    # The probe's attack: thousands of half-sent requests against a process whose file limit is
    # 1024. Without a cap, accept() fails with EMFILE, /health and login stop answering, and the
    # log fills with tracebacks.
    async with running_service(tmp_path / "data", open_file_limit=1024) as service:
        api = service.client()
        await api.sign_up("alice")
        flood = []
        for _ in range(1500):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            except OSError:
                continue
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            flood.append(writer)
        await asyncio.sleep(0.5)
        assert (await api.get("/health")).status == 200
        assert (await ApiClient(service.base_url).login("alice")).status == 200
        for writer in flood:
            writer.close()
        output = service.output()
    assert "Too many open files" not in output
    assert output.count(REFUSALS) == 1, output[-3000:]
    assert "at most 768 connections" in output


async def test_refusals_are_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    from handlers.connections import RefusalLog

    caplog.set_level(logging.WARNING, logger="tsundoku.connections")
    refusals = RefusalLog(interval_s=3600)
    for _ in range(10_000):
        refusals.count("over the connection cap")
    assert len(refusal_lines(caplog)) == 1
    assert refusals.totals == {"over the connection cap": 10_000}
