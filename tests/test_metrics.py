"""`GET /metrics` (issue 14, point 3): Prometheus text, requests by route pattern, latency and
round trips per request, database errors, counts of users and sessions; loopback or a
`METRICS_TOKEN` bearer only."""

from __future__ import annotations

import re

import pytest

from tests.api_client import ApiClient
from tests.conftest import FailPoints, RunningApp, StartApp

pytestmark = pytest.mark.asyncio
TOKEN = "a-metrics-secret-of-enough-length"


def value(text: str, sample: str) -> float | None:
    """The value of one sample line, `name{labels}` exactly as written."""
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def scrape(api: ApiClient, **headers: str) -> str:
    reply = await api.get("/metrics", headers=headers)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return reply.raw.decode()


async def test_requests_are_counted_by_route_pattern_with_latency_and_round_trips(running: RunningApp) -> None:
    api = running.client()
    await api.sign_up("alice")
    for series_id in (5, 6, 7):
        assert (await api.get(f"/user/reading-status/id/{series_id}")).status == 200
    assert (await api.get("/auth/me")).status == 200
    text = await scrape(api)
    route = '{method="GET",route="/user/reading-status/id/{id}",status="200"}'
    assert value(text, f"tsundoku_requests_total{route}") == 3.0
    assert "/user/reading-status/id/5" not in text  # never the raw path
    # `GET /auth/me` is one round trip (asserted elsewhere with command monitoring too).
    assert value(text, 'tsundoku_request_database_round_trips_sum{route="/auth/me"}') == 1.0
    assert value(text, 'tsundoku_request_duration_seconds_count{method="GET",route="/auth/me"}') == 1.0
    assert value(text, 'tsundoku_requests_total{method="POST",route="/auth/login",status="200"}') == 1.0
    assert value(text, "tsundoku_requests_in_flight") == 1.0  # the scrape itself; nothing else is running


async def test_the_first_scrape_answers_counted_users_and_sessions(running: RunningApp) -> None:
    # Found by a newcomer: the first scrape started the count without waiting, answered 0, and the
    # next count came 5 minutes later.
    first, second = running.client(), running.client()
    await first.sign_up("alice")
    await second.sign_up("bob")
    await second.login("bob")  # a second session
    text = await scrape(first)
    assert value(text, "tsundoku_users") == 2.0 and value(text, "tsundoku_stored_sessions") == 3.0
    assert 0 <= value(text, "tsundoku_counts_age_seconds") < 5


async def test_a_database_failure_is_counted(running: RunningApp, fail_points: FailPoints) -> None:
    api = running.client()
    await api.sign_up("alice")
    await fail_points.fail(["find"], {"times": 1}, errorCode=50)  # an operation timed out: not retried
    assert (await api.get("/auth/me")).status == 503
    assert value(await scrape(api), "tsundoku_database_errors_total") == 1.0


async def test_other_addresses_need_the_token(start_app: StartApp) -> None:
    # Behind a trusted proxy the client's address is the forwarded one: not loopback.
    api = (await start_app(trust_proxy=True, metrics_token=TOKEN)).client()
    remote = {"X-Forwarded-For": "203.0.113.7"}
    refused = await api.get("/metrics", headers=remote)
    assert (refused.status, refused.body) == (403, {"data": "Forbidden", "code": 403})
    wrong = await api.get("/metrics", headers={**remote, "Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status == 403
    assert "tsundoku_requests_total" in await scrape(api, **remote, Authorization=f"Bearer {TOKEN}")


async def test_without_a_token_only_loopback_is_answered(start_app: StartApp) -> None:
    api = (await start_app(trust_proxy=True)).client()
    assert (await api.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7",
                                              "Authorization": "Bearer anything"})).status == 403
    assert (await api.get("/metrics")).status == 200
