"""Input a hostile client sends: what a probe found, each pinned by a test."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.catalog_data import series
from tests.conftest import RunningApp
from tests.images import b64, image_bytes
from tests.waiting import until

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!")]
LONE_SURROGATE_PASSWORD = "\ud800abcdefgh"  # JSON can carry it; no UTF-8 encoder takes it


async def test_a_lone_surrogate_password_is_refused_at_registration_with_422(api: ApiClient) -> None:
    reply = await api.register("mallory", LONE_SURROGATE_PASSWORD)
    assert (reply.status, reply.body["data"], reply.body["errors"][0]["field"]) == (422, "Invalid password", "password")


async def test_a_lone_surrogate_password_at_login_is_invalid_credentials(api: ApiClient, alice: dict) -> None:
    reply = await api.login("alice", LONE_SURROGATE_PASSWORD)
    assert (reply.status, reply.body) == (401, {"data": "Invalid credentials", "code": 401})


@pytest.mark.parametrize("raw", ["1_0", "%2B5", "-0", "%D9%A1%D9%A0", "0x10", "1e1"])
async def test_paging_numbers_must_be_plain_digits(api: ApiClient, alice: dict, raw: str) -> None:
    for name in ("limit", "offset"):
        reply = await api.get(f"/user/reading-history?{name}={raw}")
        assert (reply.status, reply.body["data"]) == (400, "Invalid parameters"), (name, raw)
        assert reply.body["errors"][0]["field"] == name


async def test_plain_digit_paging_numbers_are_taken(api: ApiClient, alice: dict) -> None:
    reply = await api.get("/user/reading-history?limit=10&offset=0")
    assert reply.status == 200 and reply.body["to"] == 0


async def test_no_answer_names_the_server_software(api: ApiClient) -> None:
    for reply in (await api.get("/health"), await api.get("/nowhere")):
        assert "Server" not in reply.headers


async def test_head_on_an_avatar_answers_its_headers_without_a_body(api: ApiClient, alice: dict) -> None:
    assert (await api.post(f"/user/update-image/{alice['id']}", {"image": b64(image_bytes("PNG"))})).status == 200
    path = f"/user/avatar/{alice['id']}/scaled"
    full = await api.get(path, send_cookies=False)
    head = await api.request("HEAD", path, send_cookies=False)
    assert head.status == 200 and head.raw == b""
    assert head.headers["Content-Length"] == str(len(full.raw))
    assert head.headers["ETag"] == full.headers["ETag"] and head.headers["Content-Type"] == "image/webp"


async def test_a_weak_if_none_match_of_the_current_image_answers_304(api: ApiClient, alice: dict) -> None:
    assert (await api.post(f"/user/update-image/{alice['id']}", {"image": b64(image_bytes("PNG"))})).status == 200
    path = f"/user/avatar/{alice['id']}/high"
    etag = (await api.get(path, send_cookies=False)).headers["ETag"]
    reply = await api.get(path, headers={"If-None-Match": f'"other", W/{etag}'}, send_cookies=False)
    assert reply.status == 304 and reply.raw == b""


async def test_a_name_that_cannot_be_a_username_is_refused_before_it_is_counted(api: ApiClient,
                                                                                 db: AsyncDatabase) -> None:
    huge = "x" * 255 * 1024
    for _ in range(30):  # more than the failure limit: none of them counted
        assert (await api.login(huge, "whatever password")).body == {"data": "Invalid credentials", "code": 401}
    assert await db.rate_limits.count_documents({}) == 0


async def raw_request(port: int, data: bytes, *, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 5) if read else b""
    writer.close()
    return answer


async def test_a_cookie_in_a_malformed_request_never_reaches_the_log(
    running: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tornado")
    token = "S3cretTokenValue-" + "x" * 30
    await raw_request(running.port, b"GET /auth/me HTTP/1.1\r\nHost: x\r\nCookie: refreshToken=" + token.encode()
                      + b"\x00\r\n\r\n")
    await until(lambda: any("refreshToken=***" in r.getMessage() for r in caplog.records), what="the logged refusal")
    assert any("refreshToken=***" in r.getMessage() for r in caplog.records), caplog.text
    assert token not in caplog.text


async def test_a_client_that_leaves_mid_body_is_no_longer_in_flight(running: RunningApp, api: ApiClient) -> None:
    await api.sign_up("alice")
    cookie = api.cookie_header()
    head = (f"POST /auth/logout HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"all\"").encode()
    await raw_request(running.port, head, read=False)
    await until(lambda: running.app.services.inflight.count == 0, 2, "no request in flight")


async def read_until_closed(port: int, data: bytes) -> bytes:
    """Sends `data`, then reads everything the service sends until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = b""
    try:
        await writer.drain()
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            received += chunk
    except ConnectionResetError:
        pass  # what was sent before the reset has been read
    writer.close()
    return received


def single_json_answer(raw: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of a raw HTTP/1.1 answer that must be the only one on the wire."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"HTTP/1.1" not in body, raw[:2000]  # no second answer (Tornado's bare 400) after ours
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert headers["Content-Type"].startswith("application/json"), head
    return int(head.split()[1]), json.loads(body)


def chunked(head: str, chunk_size: int, chunks: int) -> bytes:
    chunk = b"x" * chunk_size
    return head.encode() + b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(chunks)) + b"0\r\n\r\n"


async def test_a_chunked_body_over_the_limit_answers_413_in_json_and_is_no_longer_in_flight(
    running: RunningApp, api: ApiClient
) -> None:
    await api.sign_up("alice")
    head = (f"POST /auth/logout HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {api.cookie_header()}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    raw = await read_until_closed(running.port, chunked(head, 65536, 6))  # 384 KiB > 256 KiB
    assert single_json_answer(raw) == (413, {"data": "Request body too large", "code": 413})
    await until(lambda: running.app.services.inflight.count == 0, 2, "no request in flight")
    assert (await api.get("/auth/me")).status == 200  # the session was not logged out


async def test_a_chunk_that_declares_more_than_any_limit_answers_413_in_json(running: RunningApp) -> None:
    # Tornado itself would refuse a chunk header over its server-wide limit with a bare 400.
    head = ("POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    raw = await read_until_closed(running.port, head.encode() + b"40000000\r\n" + b"x" * 300_000)
    assert single_json_answer(raw) == (413, {"data": "Request body too large", "code": 413})


async def test_a_declared_length_over_any_limit_answers_one_413_in_json(running: RunningApp) -> None:
    head = ("POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000000\r\n\r\n")
    raw = await read_until_closed(running.port, head.encode() + b"x" * 100_000)
    assert single_json_answer(raw) == (413, {"data": "Request body too large", "code": 413})


def jpeg_with_forged_size(width: int, height: int) -> bytes:
    """A real 16x16 JPEG whose frame header claims `width` x `height`."""
    data = bytearray(image_bytes("JPEG", (16, 16)))
    frame = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, height, width)
    return bytes(data)


async def test_a_jpeg_whose_header_claims_more_pixels_than_its_data_holds_answers_400(
    api: ApiClient, alice: dict
) -> None:
    reply = await api.post(f"/user/update-image/{alice['id']}", {"image": b64(jpeg_with_forged_size(6000, 6000))})
    assert (reply.status, reply.body["data"]) == (400, "Image data is truncated or corrupt")


async def test_a_large_flat_colour_jpeg_is_still_accepted(api: ApiClient, alice: dict) -> None:
    # The floor of one bit per 8x8 block must not refuse a real file, however well it compresses.
    flat = image_bytes("JPEG", (6000, 4000), color="gray", quality=10)
    reply = await api.post(f"/user/update-image/{alice['id']}", {"image": b64(flat)})
    assert reply.status == 200, (len(flat), reply.body)


async def test_22000_unknown_keys_at_login_are_refused_before_validation(api: ApiClient) -> None:
    # Was: 400 after 34 s, the event loop blocked meanwhile (errors de-duplicated by list scans).
    body = json.dumps({f"k{i}": 1 for i in range(22_000)}, separators=(",", ":"))
    assert 200_000 < len(body) < 256 * 1024
    reply = await api.request("POST", "/auth/login", body=body, headers={"Content-Type": "application/json"})
    assert (reply.status, reply.body) == (413, {"data": "Request body holds more than 20000 JSON values",
                                                "code": 413})
    documented = (await api.get("/openapi.json")).body["paths"]["/auth/login"]["post"]["responses"]["413"]
    assert "more JSON values" in documented["description"]


async def test_many_invalid_fields_answer_the_first_twenty_and_their_count(api: ApiClient) -> None:
    body = {"username": "alice", "password": "correct horse", **{f"key{i}": 1 for i in range(60)}}
    reply = await api.post("/auth/login", body)
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")
    assert [e["field"] for e in reply.body["errors"]] == [f"key{i}" for i in range(20)]
    assert reply.body["error_count"] == 60
