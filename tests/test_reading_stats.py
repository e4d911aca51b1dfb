"""GET /user/reading-stats and GET /user/reading-history/stats/general: every figure of a known
list, the client filter, and the round trip."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import CommandCounter, RunningApp

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "A", volumes=[volume(11, 1), volume(12, 2)]),
    series(2, "B", type="Light Novel", volumes=[volume(21, 1)]),
    series(3, "C", type="Manhwa"),
    series(4, "D"),
    series(5, "E", type="Light Novel"),
    series(6, "F", client=2),
]
# series, fields: a list whose every figure is known.
LIST: list[tuple[int, dict[str, Any]]] = [
    (1, {"status": "completed", "progressType": "chapters", "progress": 120, "score": 9, "reread": 2,
         "end": "2024-03-01", "visibility": "private"}),
    (2, {"status": "completed", "progress": 10, "score": 7.5, "end": "2025", "reread": 1}),
    (3, {"status": "started", "progressType": "chapters", "progress": 30.5}),
    (4, {"status": "dropped", "progress": 2, "score": 0.4}),
    (5, {"status": "planned", "progress": 0, "score": 0}),  # 0 means unscored: in no score figure
    (6, {"status": "completed", "progress": 5, "score": 3, "end": "2023-01", "client": 2}),
]


@pytest_asyncio.fixture
async def reader(api: ApiClient, db: AsyncDatabase) -> dict[str, Any]:
    await load_catalog(db, CATALOG)
    user = await api.sign_up("alice")
    for series_id, fields in LIST:
        reply = await api.post(f"/user/reading-status/add/{series_id}", {**STATUS, **fields})
        assert reply.status == 200, reply.body
    for volume_id in (11, 12, 21):
        assert (await api.post(f"/user/collection/add/{volume_id}", {"price": 5})).status == 200
    return user


async def test_every_figure_of_a_known_list(running: RunningApp, api: ApiClient, reader: dict) -> None:
    reply = await api.get("/user/reading-stats")
    assert reply.status == 200, reply.body
    distribution = {str(n): 0 for n in range(1, 11)}
    distribution.update({"9": 1, "8": 1, "1": 1, "3": 1})  # 7.5 rounds to 8; 0.4 counts as 1; 0 not at all
    assert reply.body == {
        "entries": 6,
        "by_status": {"started": 1, "completed": 3, "paused": 0, "dropped": 1, "planned": 1},
        "chapters_read": 150.5, "volumes_read": 17, "rereads": 3,
        "mean_score": round((9 + 7.5 + 0.4 + 3) / 4, 2),
        "score_distribution": distribution,
        "by_type": {"Light Novel": 2, "Manga": 3, "Manhwa": 1},
        "completed_by_year": {"2023": 1, "2024": 1, "2025": 1},
        "collection": {"volumes_owned": 3, "series_owned": 2},
    }
    one_client = (await api.get("/user/reading-stats?client=2")).body
    assert (one_client["entries"], one_client["by_type"], one_client["collection"]) == \
        (1, {"Manga": 1}, {"volumes_owned": 0, "series_owned": 0})
    assert (await api.get("/user/reading-stats?client=0")).status == 400
    assert (await api.get("/user/reading-stats?client=x")).status == 400


async def test_an_empty_list_and_no_session(running: RunningApp, api: ApiClient) -> None:
    await api.sign_up("bob")
    body = (await api.get("/user/reading-stats")).body
    assert (body["entries"], body["mean_score"], body["chapters_read"], body["collection"]) == \
        (0, None, 0, {"volumes_owned": 0, "series_owned": 0})
    assert (await running.client().get("/user/reading-stats")).status == 401


async def test_the_statistics_cost_one_round_trip(running: RunningApp, api: ApiClient, reader: dict,
                                                  commands: CommandCounter) -> None:
    await api.get("/user/reading-stats")  # the process meets the series' keys once
    commands.reset()
    assert (await api.get("/user/reading-stats")).status == 200
    assert commands.log == ["find"]


# ---- GET /user/reading-history/stats/general ----

async def test_the_general_figures_of_a_known_list(api: ApiClient, reader: dict) -> None:
    reply = await api.get("/user/reading-history/stats/general?client=1")
    assert reply.status == 200, reply.body
    assert reply.body == {
        "total_read_series": 5, "started_series": 1, "completed_series": 2, "paused_series": 0,
        "total_rereads": 3,
        "avg_score": round((9 + 7.5 + 0.4) / 3, 2),  # the score of 0 is unscored: not in the mean
        "first_entry": "2024-03-01", "last_entry": "2025",  # `2025` ends after 2024-03-01
    }
    assert (await api.get("/user/reading-history/stats/general?client=2")).body == {
        "total_read_series": 1, "started_series": 0, "completed_series": 1, "paused_series": 0,
        "total_rereads": 0, "avg_score": 3, "first_entry": "2023-01", "last_entry": "2023-01"}


async def test_the_general_figures_of_an_empty_list_and_the_refusals(running: RunningApp, api: ApiClient,
                                                                    commands: CommandCounter) -> None:
    await api.sign_up("bob")
    commands.reset()
    assert (await api.get("/user/reading-history/stats/general?client=1")).body == {
        "total_read_series": 0, "started_series": 0, "completed_series": 0, "paused_series": 0,
        "total_rereads": 0, "avg_score": 0, "first_entry": None, "last_entry": None}
    assert commands.log == ["find"]  # counted from the session query's statuses
    missing = await api.get("/user/reading-history/stats/general")
    assert (missing.status, missing.body["data"]) == (400, "Required parameters missing")
    for bad in ("0", "x", "1.5"):
        reply = await api.get(f"/user/reading-history/stats/general?client={bad}")
        assert (reply.status, reply.body["data"]) == (400, "Invalid parameters"), bad
    no_session = await running.client().get("/user/reading-history/stats/general?client=1")
    assert (no_session.status, no_session.body) == (401, {"data": "Unauthorized", "code": 401})
