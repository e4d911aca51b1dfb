"""`LOG_FORMAT=json`: one JSON object a line, access lines with the route's pattern (issue 14,
point 4); the default stays readable text; no session token in any line of either."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RunningApp
from tests.service_process import running_service
from web.log_redaction import redact

pytestmark = pytest.mark.asyncio

TOKEN = "6650a1b2c3d4e5f60718293a.i_R0cvlg9fMHeFAu61BpoDAZ4EcHPuigCzrfEPO84zU"
# Cookie headers Tornado refuses, and logs with the header's value in a repr.
MALFORMED_COOKIES: dict[str, Callable[[bytes], bytes]] = {
    "quoted, then \\x01": lambda token: b'refreshToken="' + token + b'"\x01',
    "backslash-escaped quotes": lambda token: b'refreshToken=\\"' + token + b'\\"\x01',
    "other control characters": lambda token: b"refreshToken=\x1f" + token + b"\x7f\x0b",
}


async def send_malformed_cookies(port: int, token: str) -> None:
    """Each of MALFORMED_COOKIES through a socket of its own; each answers 400."""
    for form in MALFORMED_COOKIES.values():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /auth/me HTTP/1.1\r\nHost: x\r\nCookie: " + form(token.encode()) + b"\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(65536), 5)).startswith(b"HTTP/1.1 400 ")
        writer.close()


def assert_cookies_redacted(messages: list[str], output: str, token: str) -> None:
    """Tornado's own logger wrote a line for each malformed cookie, with the value gone."""
    assert token not in output and token.partition(".")[2] not in output
    refused = [message for message in messages if "Invalid header value" in message]
    assert len(refused) == len(MALFORMED_COOKIES) and all("refreshToken=***" in m for m in refused), refused


async def test_json_lines_carry_the_route_pattern_and_no_secret(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data", LOG_FORMAT="json") as service:
        api = service.client()
        user = await api.sign_up("alice")
        assert (await api.get("/user/reading-status/id/12345")).status == 200
        assert (await api.get("/nowhere/at/all")).status == 404
        await send_malformed_cookies(service.port, api.cookies["refreshToken"])
    output = service.output()  # stopped: the last line is written
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line is JSON
    assert_cookies_redacted([line["message"] for line in lines], output, api.cookies["refreshToken"])
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "tsundoku.access"]
    read = next(line for line in access if line["route"] == "/user/reading-status/id/{id}")
    assert (read["method"], read["status"], read["user"], read["level"]) == ("GET", 200, user["id"], "info")
    # The message names the route, never the raw path (which names users and entries).
    assert read["message"].startswith("GET /user/reading-status/id/{id} 200 ")
    assert not any("12345" in line["message"] or "/nowhere" in line["message"] for line in access)
    assert isinstance(read["duration_ms"], float)
    unmatched = next(line for line in access if line["status"] == 404)
    assert unmatched["route"] == "-" and unmatched["level"] == "warning" and unmatched["message"].startswith("GET - 404")
    assert any(line["message"] == "stopped" for line in lines)
    assert output.count("refreshToken") == output.count("refreshToken=***") and "correct horse" not in output


async def test_the_default_is_readable_text_and_has_no_secret(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        api = service.client()
        await api.sign_up("alice")
        await send_malformed_cookies(service.port, api.cookies["refreshToken"])
    output = service.output()
    assert_cookies_redacted(output.splitlines(), output, api.cookies["refreshToken"])
    assert " INFO tsundoku.access: POST /auth/register 201 " in output
    assert not any(line.startswith("{") for line in output.splitlines())


@pytest.mark.parametrize("text", [
    f'{{"Cookie": "refreshToken=\\"{TOKEN}\\""}}',  # JSON-escaped
    f"{{'refreshToken': '{TOKEN}'}}",  # a dict's repr
    f"REFRESHTOKEN = {TOKEN}",
    f"a token without its name: {TOKEN}.",
])
async def test_a_token_is_redacted_in_any_quoting_or_without_its_name(text: str) -> None:
    assert TOKEN not in redact(text) and TOKEN.partition(".")[2] not in redact(text)


async def test_every_logger_and_a_traceback_are_redacted(running: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    # Not only Tornado's loggers: asyncio's, ours, and the text of an exception.
    caplog.set_level(logging.INFO)
    logging.getLogger("asyncio").error("Task exception was never retrieved: %r", {"refreshToken": TOKEN})
    logging.getLogger("tsundoku.handlers").info("cookie header %s", f"refreshToken={TOKEN}")
    try:
        raise ValueError(f"bad header {TOKEN}")
    except ValueError:
        logging.getLogger("tsundoku.handlers").exception("unhandled")
    assert len(caplog.records) == 3
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and TOKEN not in (record.exc_text or "")
    assert TOKEN not in caplog.text
