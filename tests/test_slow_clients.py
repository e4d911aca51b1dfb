"""Slow and numerous clients: a connection that never finishes its request gives its file back,
with a 408 in the service's JSON shape when a request had begun.

The limits are shortened here (the defaults are 30 s for headers, and 1 KiB/s on average for a
body once 10 s have passed); the mechanism is the same."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from tests.api_client import ApiClient
from tests.conftest import FailPoints, RunningApp, StartApp
from tests.service_process import running_service
from tests.waiting import until

pytestmark = pytest.mark.asyncio

REFUSALS = "refused connections in the last"
REQUEST_TIMEOUT = {"data": "Request timeout", "code": 408}
LOGIN_HEAD = (b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n")


async def read_to_end(reader: asyncio.StreamReader, wait_s: float = 5.0) -> bytes:
    """Everything the service sends until it closes the connection or is silent for `wait_s`."""
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), wait_s):
            received += chunk
    except (ConnectionResetError, asyncio.TimeoutError):
        pass
    return received


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
                  every_s: float) -> tuple[int, bytes] | None:
    """Sends one byte every `every_s` until the service answers or closes the connection: the
    bytes sent by then and everything the service sent; None if all of `data` went unanswered."""
    for sent, byte in enumerate(data, 1):
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return sent, b""
        try:
            first = await asyncio.wait_for(reader.read(65536), every_s)
        except asyncio.TimeoutError:
            continue
        except ConnectionResetError:
            return sent, b""
        return sent, first + (await read_to_end(reader) if first else b"")
    return None


def assert_request_timeout(answer: bytes) -> None:
    """The server's own 408: the JSON every error has, and the connection closes."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    assert status == "HTTP/1.1 408 Request Timeout", answer[:300]
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    assert headers["content-type"] == "application/json; charset=UTF-8"
    assert headers["connection"] == "close" and int(headers["content-length"]) == len(body)
    assert json.loads(body) == REQUEST_TIMEOUT


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if REFUSALS in r.getMessage()]


def in_phase(running: RunningApp, phase: str) -> int:
    return running.server.connections_by_phase().get(phase, 0)


async def test_headers_not_complete_within_the_header_timeout_are_answered_408(
    start_app: StartApp, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_app(header_timeout_s=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    headers = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    outcome = await trickle(writer, reader, headers, 0.1)
    assert outcome is not None  # answered although bytes kept coming
    sent, answer = outcome
    assert sent < len(headers)
    assert_request_timeout(answer)
    writer.close()
    assert "1 requests whose headers were too slow (408)" in " ".join(refusal_lines(caplog))


async def test_an_idle_connection_is_closed_after_the_header_timeout_without_an_answer(start_app: StartApp) -> None:
    running = await start_app(header_timeout_s=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    # Kept alive, then idle; and a connection that never sent a byte.
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", running.port)
    assert await is_closed(reader, 3.0) and await is_closed(silent_reader, 3.0)
    writer.close()
    silent_writer.close()


async def test_a_body_below_the_minimum_rate_is_answered_408_and_closed(
    start_app: StartApp, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_app(body_grace_s=1.0)  # 1024 bytes a second on average after it
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    body = b'{"username": "' + b"a" * 480
    writer.write(LOGIN_HEAD % 500)
    outcome = await trickle(writer, reader, body, 0.1)  # 10 bytes a second
    assert outcome is not None
    sent, answer = outcome
    assert sent < len(body)
    assert_request_timeout(answer)
    writer.close()
    # The application's handler learnt that the connection is gone: nothing stays in flight.
    await until(lambda: running.app.services.inflight.count == 0)
    lines = refusal_lines(caplog)
    assert len(lines) == 1 and "1 request bodies below the minimum rate (408)" in lines[0]


async def test_a_slow_body_above_the_minimum_rate_is_not_cut_off(start_app: StartApp) -> None:
    running = await start_app(body_grace_s=1.0, body_min_bytes_per_s=4096)
    api = running.client()
    await api.sign_up("alice")
    body = json.dumps({"username": "alice", "password": "correct horse"}).encode() + b" " * 60_000
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(LOGIN_HEAD % len(body))
    for start in range(0, len(body), 8192):  # 8 KiB every 0.25 s: 2 s in all, 32 KiB/s
        writer.write(body[start:start + 8192])
        await writer.drain()
        await asyncio.sleep(0.25)
    answer = await asyncio.wait_for(reader.read(65536), 5)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    writer.close()


async def test_at_the_connection_cap_slow_bodies_are_evicted_first_and_health_still_answers(
    start_app: StartApp, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_app(max_connections=20, body_grace_s=60.0)  # only the cap evicts here
    waiting = []  # older than every body: were age the rule, they would go first
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        waiting.append((reader, writer))
    await until(lambda: in_phase(running, "HEADERS") == 5)
    bodies = []
    for count in range(1, 61):  # three times the cap, each body 10 bytes of 1000
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(LOGIN_HEAD % 1000 + b'{"username"')
        bodies.append((reader, writer))
        await until(lambda count=count: in_phase(running, "BODY") == min(count, 15))
    assert (await running.client().get("/health")).status == 200

    answers = await asyncio.gather(*(read_to_end(reader, 0.5) for reader, _ in bodies))
    evicted = [answer for answer in answers if answer]
    assert len(evicted) == 60 - 15 + 1  # room for 45 bodies and the health check
    for answer in evicted:
        assert_request_timeout(answer)
    assert not any(await asyncio.gather(*(is_closed(reader, 0.2) for reader, _ in waiting)))
    lines = refusal_lines(caplog)
    assert len(lines) == 1, lines  # once per interval, not once per connection
    assert running.server.refusals.totals == {"request bodies evicted at the connection cap (408)": 46}
    for _, writer in waiting + bodies:
        writer.close()
    await until(lambda: running.app.services.inflight.count == 0)


async def test_at_the_connection_cap_half_sent_requests_make_room_for_real_ones(
    start_app: StartApp, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_app(max_connections=20)
    half_sent = []
    for count in range(1, 61):
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        half_sent.append((reader, writer))
        await until(lambda count=count: in_phase(running, "HEADERS") == min(count, 20))
    assert (await running.client().get("/health")).status == 200
    # The longest-waiting ones made room, answered 408: their requests had begun.
    assert_request_timeout(await read_to_end(half_sent[0][0], 2.0))
    lines = refusal_lines(caplog)
    assert len(lines) == 1, lines  # once per interval, not once per connection
    assert running.server.refusals.totals == {"closed at the connection cap while waiting for headers": 41}
    for _, writer in half_sent:
        writer.close()


async def test_at_the_connection_cap_requests_being_handled_are_never_evicted(
    start_app: StartApp, fail_points: FailPoints
) -> None:
    running = await start_app(max_connections=5)
    await running.client().sign_up("alice")
    # Each login has its whole body in, and waits in the handler for the database.
    await fail_points.fail(["find"], "alwaysOn", blockConnection=True, blockTimeMS=1500)
    body = json.dumps({"username": "alice", "password": "correct horse"}).encode()
    busy = []
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(LOGIN_HEAD % len(body) + body)
        busy.append((reader, writer))
    await until(lambda: in_phase(running, "BUSY") == 5 and running.app.services.inflight.count == 5)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await is_closed(reader, 1.0)
    assert running.server.refusals.totals["over the connection cap"] == 1
    await fail_points.off()
    for busy_reader, busy_writer in busy:  # each got its own answer, and only that
        answer = await asyncio.wait_for(busy_reader.readuntil(b"\r\n\r\n"), 10)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        busy_writer.close()
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
        # The connections past the cap are closed, and the first such refusal logged at once: the
        # flood has reached the service before it is asked to answer.
        await until(lambda: REFUSALS in service.output(), 10, "the first refusal at the connection cap")
        assert (await api.get("/health")).status == 200
        assert (await ApiClient(service.base_url).login("alice")).status == 200
        for writer in flood:
            writer.close()
    output = service.output()
    assert "Too many open files" not in output
    # The first refusal at once, the sum of the others as the service stops.
    assert output.count(REFUSALS) == 2, output[-3000:]
    assert "closed at the connection cap while waiting for headers" in output.split(REFUSALS)[-1]
    assert "at most 768 connections" in output


async def test_refusals_are_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    from web.connections import RefusalLog

    caplog.set_level(logging.WARNING, logger="tsundoku.connections")
    refusals = RefusalLog(interval_s=3600)
    for _ in range(10_000):
        refusals.count("over the connection cap")
    assert len(refusal_lines(caplog)) == 1
    assert refusals.totals == {"over the connection cap": 10_000}


async def test_the_refusals_of_an_interval_are_logged_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    from web.connections import RefusalLog

    caplog.set_level(logging.WARNING, logger="tsundoku.connections")
    refusals = RefusalLog(interval_s=0.3)
    for _ in range(3):
        refusals.count("over the connection cap")
    refusals.count("request bodies below the minimum rate (408)")
    await until(lambda: len(refusal_lines(caplog)) == 2, 3.0)
    first, second = refusal_lines(caplog)
    assert first.endswith(": 1 over the connection cap")
    assert second.endswith(": 2 over the connection cap, 1 request bodies below the minimum rate (408)")
