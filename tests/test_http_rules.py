"""The contract's General rules: JSON errors, unknown routes and methods, bodies, CORS, the
Origin check, failures of our own and of the database, and what the log may hold."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_openapi
from pymongo.asynchronous.database import AsyncDatabase

from handlers.application import all_routes
from storage.database import connect, database
from storage.embedded import EmbeddedDatabase, free_loopback_port
from storage.supervisor import DatabaseState, EmbeddedSupervisor
from tests.api_client import ApiClient
from tests.conftest import FRONTEND_ORIGIN, FailPoints, RunningApp, StartApp
from tests.waiting import until
from web.base import ApiHandler

pytestmark = pytest.mark.asyncio


async def test_an_unknown_route_answers_404_in_json(api: ApiClient) -> None:
    for method in ("GET", "POST", "DELETE"):
        reply = await api.request(method, "/no/such/route")
        assert (reply.status, reply.body) == (404, {"data": "Not found", "code": 404})


@pytest.mark.parametrize("query, field, message", [
    ("since=%20", "since", "String should match pattern"),  # judged as sent: not stripped to nothing
    ("since=1%0B", "since", "String should match pattern"),  # nor a control character made a space
    ("limit=%205", "limit", "digits only"),
    ("limit=%FF", "limit", "must be UTF-8"),  # a query value that is not UTF-8 names its field
])
async def test_query_values_are_judged_as_sent(api: ApiClient, alice: dict[str, Any], query: str, field: str,
                                               message: str) -> None:
    reply = await api.get(f"/user/changes?{query}")
    assert (reply.status, reply.body["data"], reply.body["errors"][0]["field"]) == (400, "Invalid parameters", field)
    assert message in reply.body["errors"][0]["message"]


async def test_a_wrong_method_answers_405_with_allow(api: ApiClient) -> None:
    reply = await api.get("/auth/login")
    assert (reply.status, reply.body) == (405, {"data": "Method not allowed", "code": 405})
    assert reply.headers["Allow"] == "POST, OPTIONS"


async def test_a_wrong_method_answers_405_before_authentication(api: ApiClient) -> None:
    reply = await api.delete("/auth/me")
    assert reply.status == 405 and reply.headers["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("path", ["/auth/me", "/user/reading-history", "/user/collection/stats/general?client=1", "/health",
                                  "/openapi.json", "/users/alice"])
async def test_head_answers_what_get_answers_without_the_body(api: ApiClient, path: str) -> None:
    await api.sign_up("alice")
    got = await api.get(path)
    head = await api.request("HEAD", path)
    assert got.status == 200 and head.status == 200, (got.body, head.status)
    assert head.raw == b"" and head.headers["Content-Type"] == got.headers["Content-Type"]
    assert head.headers["Content-Length"] == got.headers["Content-Length"]


async def test_head_follows_gets_authentication(api: ApiClient) -> None:
    reply = await api.request("HEAD", "/auth/me", send_cookies=False)
    assert reply.status == 401 and reply.raw == b""


async def test_head_on_a_route_without_get_answers_405(api: ApiClient) -> None:
    reply = await api.request("HEAD", "/auth/login")
    assert reply.status == 405 and reply.headers["Allow"] == "POST, OPTIONS"


async def test_malformed_json_answers_400(api: ApiClient) -> None:
    reply = await api.request("POST", "/auth/register", body='{"username": "alice",',
                              headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.body["code"] == 400
    assert reply.body["data"] == "Request body is not valid JSON"


@pytest.mark.parametrize("body", ["NaN", '{"a": Infinity}', "[" * 5000, b"\xff\xfe"])
async def test_hostile_json_answers_400(api: ApiClient, body: str | bytes) -> None:
    reply = await api.request("POST", "/auth/register", body=body, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.body["data"] == "Request body is not valid JSON"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_a_body_of_another_media_type_answers_415(api: ApiClient, content_type: str) -> None:
    """415 on every JSON route, as a file route answers a file of another kind."""
    await api.sign_up("bob")  # the list route reads its body after the session
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/auth/register", "/user/reading-history"):
        reply = await api.request("POST", path, body='{"username": "alice", "password": "long enough"}',
                                  headers=headers)
        assert reply.status == 415 and reply.body == {
            "data": "Request body must be JSON (Content-Type: application/json)", "code": 415}, path


async def test_json_with_a_charset_parameter_is_accepted(api: ApiClient) -> None:
    reply = await api.request("POST", "/auth/register", body='{"username": "alice", "password": "long enough"}',
                              headers={"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 201


async def test_an_allowed_origin_gets_credentialed_cors_headers(api: ApiClient) -> None:
    reply = await api.get("/health", headers={"Origin": FRONTEND_ORIGIN})
    assert reply.headers["Access-Control-Allow-Origin"] == FRONTEND_ORIGIN
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in reply.headers["Vary"]


async def test_cors_headers_also_come_with_errors(api: ApiClient) -> None:
    reply = await api.get("/auth/me", headers={"Origin": FRONTEND_ORIGIN})
    assert reply.status == 401
    assert reply.headers["Access-Control-Allow-Origin"] == FRONTEND_ORIGIN


async def test_another_origin_gets_no_cors_headers(api: ApiClient) -> None:
    reply = await api.get("/health", headers={"Origin": "https://evil.test"})
    assert reply.status == 200
    assert "Access-Control-Allow-Origin" not in reply.headers


async def test_preflight_from_an_allowed_origin_answers_204(api: ApiClient) -> None:
    reply = await api.request("OPTIONS", "/users/abc/save-settings", headers={
        "Origin": FRONTEND_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == FRONTEND_ORIGIN
    assert reply.headers["Access-Control-Allow-Methods"] == "POST"
    assert reply.headers["Access-Control-Allow-Headers"] == \
        "Content-Type, Idempotency-Key, Authorization, If-Match, If-None-Match"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"


async def test_preflight_from_another_origin_answers_403(api: ApiClient) -> None:
    reply = await api.request("OPTIONS", "/auth/login", headers={
        "Origin": "https://evil.test", "Access-Control-Request-Method": "POST"})
    assert (reply.status, reply.body) == (403, {"data": "Forbidden", "code": 403})
    assert "Access-Control-Allow-Origin" not in reply.headers


async def test_a_write_from_a_foreign_origin_answers_403_and_changes_nothing(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    reply = await api.post(f"/users/{user['id']}/save-settings", {"theme": "dark"},
                           headers={"Origin": "https://evil.test"})
    assert (reply.status, reply.body) == (403, {"data": "Forbidden", "code": 403})
    assert (await api.get("/auth/me")).body["user"]["settings"]["theme"] == "light"
    reply = await api.post("/auth/logout", headers={"Origin": "null"})
    assert reply.status == 403
    assert (await api.get("/auth/me")).status == 200


async def test_a_login_from_a_foreign_origin_answers_403(api: ApiClient) -> None:
    await api.register("alice")
    reply = await api.request("POST", "/auth/login", json_body={"username": "alice", "password": "correct horse"},
                              headers={"Origin": "https://evil.test"})
    assert reply.status == 403 and "refreshToken" not in api.cookies


async def test_writes_from_the_frontend_and_from_the_service_itself_pass(running: RunningApp, api: ApiClient) -> None:
    user = await api.sign_up("alice")
    path = f"/users/{user['id']}/save-settings"
    assert (await api.post(path, {"theme": "dark"}, headers={"Origin": FRONTEND_ORIGIN})).status == 200
    own = f"http://127.0.0.1:{running.port}"
    assert (await api.post(path, {"theme": "system"}, headers={"Origin": own})).status == 200


async def test_an_unexpected_failure_answers_500_and_logs_the_traceback(
    api: ApiClient, db: AsyncDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    user = await api.sign_up("alice")
    await db.users.update_one({"_id": user["id"]}, {"$set": {"registered": "not a date"}})
    reply = await api.get("/auth/me")
    assert (reply.status, reply.body) == (500, {"data": "Internal server error", "code": 500})
    assert b"Traceback" not in reply.raw and b"isoformat" not in reply.raw
    errors = [r for r in caplog.records if r.name == "tsundoku.handlers" and r.levelno == logging.ERROR]
    assert errors and errors[0].exc_info is not None


async def test_an_unreachable_database_answers_503_instead_of_hanging(start_app: StartApp) -> None:
    client = connect(f"mongodb://127.0.0.1:{free_loopback_port()}/?directConnection=true")
    try:
        api = (await start_app(database(client, "nowhere"))).client()
        reply = await api.get("/health")
        assert (reply.status, reply.body) == (503, {"data": "Service unavailable", "code": 503, "database": {
            "state": "external", "restarts": 0, "last_exit": None}})
        reply = await api.get("/auth/me", headers={"Cookie": "refreshToken=" + "0" * 24 + "." + "a" * 43}, send_cookies=False)
        assert (reply.status, reply.body) == (503, {"data": "Service unavailable", "code": 503})
        reply = await api.register("alice")
        assert reply.status == 503
    finally:
        await client.close()


async def test_health_answers_ok_when_the_database_answers(api: ApiClient) -> None:
    reply = await api.get("/health")
    assert (reply.status, reply.body) == (200, {"status": "ok", "database": {
        "state": "external", "restarts": 0, "last_exit": None}})


async def test_health_on_a_database_that_answers_but_refuses_writes_is_503(
    api: ApiClient, fail_points: FailPoints
) -> None:
    await fail_points.fail(["update"], "alwaysOn", errorCode=1, errorLabels=[])  # as a panicked engine answers
    try:
        reply = await api.get("/health")
    finally:
        await fail_points.off()
    assert reply.status == 503
    assert (await api.get("/health")).status == 200


@pytest.mark.parametrize("fault", [{"blockConnection": True, "blockTimeMS": 3000}, {"closeConnection": True}],
                         ids=["hung", "connection dropped"])
async def test_health_answers_503_within_a_second_when_the_database_does_not_answer(
    api: ApiClient, fail_points: FailPoints, fault: dict[str, Any]
) -> None:
    # Before, the ping waited for the driver's server selection (3 s), and then for it again. On a
    # MongoDB of its own (as here) the health check is a write.
    await fail_points.fail(["update"], "alwaysOn", **fault)
    try:
        started = time.monotonic()
        reply = await api.get("/health")
        elapsed = time.monotonic() - started
    finally:
        await fail_points.off()
    assert (reply.status, reply.body) == (503, {"data": "Service unavailable", "code": 503, "database": {
        "state": "external", "restarts": 0, "last_exit": None}})
    assert elapsed < 2.5, elapsed  # the contract is one second; loose for a loaded machine
    assert (await api.get("/health")).status == 200


async def test_health_reports_the_supervisors_state_after_the_ping_not_before(
    running: RunningApp, fail_points: FailPoints, tmp_path: Path
) -> None:
    # A /health that arrived just before the embedded database stopped said "running", with 503
    # or (once it was back) with 200, although the supervisor knew it was restarting.
    supervisor = EmbeddedSupervisor(EmbeddedDatabase(tmp_path / "db"))  # never started: only its state
    running.app.services.supervisor = supervisor
    await fail_points.fail(["ping"], "alwaysOn", blockConnection=True, blockTimeMS=3000)
    try:
        health = asyncio.ensure_future(running.client().get("/health"))
        # The app shares this event loop: once the request is counted, it waits in its ping (at
        # worst it has not read the state yet, and sees "restarting" at once: the same answer).
        await until(lambda: running.app.services.inflight.count > 0, 10, "the health request in flight")
        supervisor.state = DatabaseState.RESTARTING
        reply = await health
    finally:
        await fail_points.off()
    assert (reply.status, reply.body["database"]["state"]) == (503, "restarting")
    supervisor.state = DatabaseState.RUNNING
    reply = await running.client().get("/health")
    assert (reply.status, reply.body["database"]["state"]) == (200, "running")


async def test_the_access_log_names_request_status_and_user_but_no_secret(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    user = await api.sign_up("alice", "my secret pw")
    token = api.cookies["refreshToken"]
    await api.get("/auth/me")
    await api.login("alice", "wrong secret pw")
    lines = [r.getMessage() for r in caplog.records if r.name == "tsundoku.access"]
    assert any(line.startswith("GET /auth/me 200 ") and line.endswith(f"user={user['id']}") for line in lines)
    everything = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    for secret in (token, "my secret pw", "wrong secret pw"):
        assert secret not in everything


async def test_the_openapi_document_is_valid_and_lists_every_route(api: ApiClient) -> None:
    reply = await api.get("/openapi.json")
    assert reply.status == 200
    document = reply.body
    validate_openapi(document)
    for route in all_routes():
        assert route.path in document["paths"], route.path
        documented = set(document["paths"][route.path])
        implemented = {m.lower() for m in route.handler.implemented_methods()}
        if route.handler.head is ApiHandler.head:
            implemented.discard("head")  # implied by GET, as HTTP says: not an operation of its own
        assert documented == implemented, route.path
    save = document["paths"]["/users/{id}/save-settings"]["post"]
    schema = document["components"]["schemas"][save["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    # The spec's flat settings, one shape (the same wrapped under `settings` is taken too, and said).
    assert "nsfw-mode" in schema["properties"] and schema["minProperties"] == 1
    assert '{"settings": {...}}' in schema["description"]
