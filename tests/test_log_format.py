"""`LOG_FORMAT=json`: one JSON object a line, access lines with the route's pattern (issue 14,
point 4); the default stays readable text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service_process import running_service

pytestmark = pytest.mark.asyncio


async def test_json_lines_carry_the_route_pattern_and_no_secret(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data", LOG_FORMAT="json") as service:
        api = service.client()
        user = await api.sign_up("alice")
        assert (await api.get("/user/reading-status/id/12345")).status == 200
        assert (await api.get("/nowhere/at/all")).status == 404
    output = service.output()  # stopped: the last line is written
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "tsundoku.access"]
    read = next(line for line in access if line["route"] == "/user/reading-status/id/{id}")
    assert (read["method"], read["status"], read["user"], read["level"]) == ("GET", 200, user["id"], "info")
    assert isinstance(read["duration_ms"], float)
    unmatched = next(line for line in access if line["status"] == 404)
    assert unmatched["route"] == "-" and unmatched["level"] == "warning"
    assert any(line["message"] == "stopped" for line in lines)
    assert "refreshToken" not in output and "correct horse" not in output


async def test_the_default_is_readable_text(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        await service.client().register("alice")
    output = service.output()
    assert " INFO tsundoku.access: POST /auth/register 201 " in output
    assert not any(line.startswith("{") for line in output.splitlines())
