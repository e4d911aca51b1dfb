"""Series ratings: routes, permissions, values, and exact series aggregates under concurrency."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from server import _parser, recount_ratings
from settings import Settings
from storage.ratings import RatingStore
from tests.api_client import ApiClient
from tests.conftest import CommandCounter, RunningApp
from tests.roles import set_roles
from tests.service_process import ROOT, run_command, service_env

RATING_MISSING = {"data": "Rating does not exist for this series", "code": 404}


async def aggregates(db: AsyncDatabase, series_id: int) -> tuple[int, int]:
    stored = await db.series.find_one({"_id": series_id})
    return stored["rating_count"], stored["rating_half_points"]


@pytest.mark.asyncio
async def test_an_unrated_series_answers_null_on_both_paths(api: ApiClient, alice: dict) -> None:
    for path in ("/user/series-rating/1", "/user/series-rating/id/1"):
        reply = await api.get(path)
        assert reply.status == 200 and reply.raw == b"null"


@pytest.mark.asyncio
async def test_adding_a_rating_answers_200_and_reads_back(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/series-rating/add/1", {"rating": 7.5})
    assert (reply.status, reply.body) == (200, {"data": "Rating added successfully", "code": 200})
    for path in ("/user/series-rating/1", "/user/series-rating/id/1"):
        stored = (await api.get(path)).body
        assert {k: stored[k] for k in ("user_id", "series_id", "rating")} == \
            {"user_id": alice["id"], "series_id": 1, "rating": 7.5}
        assert stored["last_update"].endswith("Z")


@pytest.mark.asyncio
async def test_rating_twice_answers_409(api: ApiClient, alice: dict) -> None:
    await api.post("/user/series-rating/add/1", {"rating": 7})
    reply = await api.post("/user/series-rating/add/1", {"rating": 8})
    assert (reply.status, reply.body) == (409, {"data": "Rating already exists for this series", "code": 409})
    assert (await api.get("/user/series-rating/1")).body["rating"] == 7


@pytest.mark.asyncio
async def test_update_changes_the_rating(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    await api.post("/user/series-rating/add/1", {"rating": 7})
    before = (await db.users.find_one({"_id": alice["id"]}, {"ratings": 1}))["ratings"]
    reply = await api.post("/user/series-rating/update/1", {"rating": 9.5})
    assert (reply.status, reply.body) == (200, {"data": "Rating updated successfully", "code": 200})
    assert (await api.get("/user/series-rating/1")).body["rating"] == 9.5
    after = (await db.users.find_one({"_id": alice["id"]}, {"ratings": 1}))["ratings"]
    assert [(r["series_id"], r["rating"]) for r in after] == [(1, 9.5)]  # replaced, not added
    assert after[0]["last_update"] >= before[0]["last_update"]
    assert await aggregates(db, 1) == (1, 19)  # the series moved from 7 to 9.5, still one rating


@pytest.mark.asyncio
async def test_updating_a_missing_rating_answers_404(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/series-rating/update/1", {"rating": 5})
    assert (reply.status, reply.body) == (404, RATING_MISSING)


@pytest.mark.asyncio
async def test_delete_removes_the_rating(api: ApiClient, alice: dict) -> None:
    await api.post("/user/series-rating/add/1", {"rating": 7})
    reply = await api.delete("/user/series-rating/delete/1")
    assert (reply.status, reply.body) == (200, {"data": "Rating deleted successfully", "code": 200})
    assert (await api.get("/user/series-rating/1")).raw == b"null"
    assert (await api.delete("/user/series-rating/delete/1")).body == RATING_MISSING


@pytest.mark.asyncio
async def test_rating_an_unknown_series_answers_404(api: ApiClient, alice: dict) -> None:
    reply = await api.post("/user/series-rating/add/999", {"rating": 5})
    assert (reply.status, reply.body) == (404, {"data": "Series not found", "code": 404})
    reply = await api.post("/user/series-rating/update/999", {"rating": 5})
    assert (reply.status, reply.body) == (404, RATING_MISSING)


@pytest.mark.asyncio
async def test_rating_an_18_plus_series_is_not_found_for_a_reader_who_does_not_show_18_plus(
        api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    await db.series.update_one({"_id": 2}, {"$set": {"nsfw18": 1}})
    reply = await api.post("/user/series-rating/add/2", {"rating": 5})
    assert (reply.status, reply.body) == (404, {"data": "Series not found", "code": 404})
    assert await aggregates(db, 2) == (0, 0)
    await db.users.update_one({"_id": alice["id"]}, {"$set": {"age_verified": True,
                                                              "settings.nsfw-mode": "settings.nsfw.show-nsfw-18"}})
    assert (await api.post("/user/series-rating/add/2", {"rating": 5})).status == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("value", [0, 0.5, 10.5, 11, -1, 7.3, 7.25, "7", True, None, {"key": 7}, [7]])
async def test_a_rating_outside_1_to_10_in_halves_answers_400(api: ApiClient, alice: dict, db: AsyncDatabase,
                                                               value: Any) -> None:
    reply = await api.post("/user/series-rating/add/1", {"rating": value})
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")
    assert reply.body["errors"][0]["field"] == "rating"
    assert await aggregates(db, 1) == (0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("value", [1, 1.0, 5.5, 10])
async def test_ratings_at_the_edges_are_accepted(api: ApiClient, alice: dict, value: float) -> None:
    assert (await api.post("/user/series-rating/add/1", {"rating": value})).status == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [{}, {"score": 5}, None])
async def test_a_missing_rating_answers_400_missing(api: ApiClient, alice: dict, body: Any) -> None:
    reply = await api.post("/user/series-rating/add/1", body)
    # A missing field outranks an unknown one.
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/user/series-rating/abc", "/user/series-rating/id/0"])
async def test_a_malformed_series_id_answers_400(api: ApiClient, alice: dict, path: str) -> None:
    assert (await api.get(path)).status == 400


@pytest.mark.asyncio
@pytest.mark.parametrize("method, path", [("GET", "/user/series-rating/id/"), ("POST", "/user/series-rating/add/"),
                                          ("POST", "/user/series-rating/update/"),
                                          ("DELETE", "/user/series-rating/delete/")])
async def test_an_empty_series_id_answers_400_missing(api: ApiClient, alice: dict, method: str, path: str) -> None:
    reply = await api.request(method, path, json_body={"rating": 5} if method == "POST" else None)
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")


@pytest.mark.asyncio
@pytest.mark.parametrize("role, allowed", [("member", True), ("admin", True), ("banned", False)])
async def test_rating_needs_the_rate_series_permission(api: ApiClient, alice: dict, db: AsyncDatabase,
                                                        role: str, allowed: bool) -> None:
    await set_roles(db, alice["id"], role)
    replies = [
        await api.post("/user/series-rating/add/1", {"rating": 6}),
        await api.post("/user/series-rating/update/1", {"rating": 7}),
        await api.delete("/user/series-rating/delete/1"),
    ]
    if allowed:
        assert [r.status for r in replies] == [200, 200, 200]
    else:
        assert all((r.status, r.body) == (403, {"data": "Forbidden", "code": 403}) for r in replies)
        assert await aggregates(db, 1) == (0, 0)
    assert (await api.get("/user/series-rating/1")).status == 200  # reading needs no permission


@pytest.mark.asyncio
async def test_a_banned_user_keeps_an_earlier_rating_and_cannot_remove_it(api: ApiClient, alice: dict,
                                                                          db: AsyncDatabase) -> None:
    await api.post("/user/series-rating/add/1", {"rating": 6})
    await set_roles(db, alice["id"], "banned")
    assert (await api.delete("/user/series-rating/delete/1")).status == 403
    assert await aggregates(db, 1) == (1, 12)


@pytest.mark.asyncio
@pytest.mark.parametrize("method, path", [("GET", "/user/series-rating/1"), ("POST", "/user/series-rating/add/1"),
                                          ("POST", "/user/series-rating/update/1"),
                                          ("DELETE", "/user/series-rating/delete/1")])
async def test_every_rating_route_needs_a_session(api: ApiClient, catalog: None, method: str, path: str) -> None:
    reply = await api.request(method, path, json_body={"rating": 5} if method == "POST" else None)
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


@pytest.mark.asyncio
async def test_the_series_average_follows_every_change(running: RunningApp, api: ApiClient, alice: dict,
                                                       db: AsyncDatabase) -> None:
    bob = running.client()
    await bob.sign_up("bob")
    status = {"visibility": "public", "progressType": "chapters", "progress": 1, "status": "started",
              "priority": "mid", "client": 1}
    await api.post("/user/reading-status/add/1", status)

    async def shown() -> tuple[Any, Any]:
        item = (await api.get("/user/reading-history")).body["series"][0]
        return item["average_rating"], item["rating_count"]

    assert await shown() == (None, 0)
    await api.post("/user/series-rating/add/1", {"rating": 8})
    await bob.post("/user/series-rating/add/1", {"rating": 7.5})
    assert await shown() == (7.75, 2)
    await bob.post("/user/series-rating/update/1", {"rating": 1})
    assert await shown() == (4.5, 2)
    await api.delete("/user/series-rating/delete/1")
    assert await shown() == (1.0, 1)
    await bob.delete("/user/series-rating/delete/1")
    assert await shown() == (None, 0)
    assert await aggregates(db, 1) == (0, 0)


@pytest.mark.asyncio
async def test_an_average_of_thirds_is_exact(running: RunningApp, db: AsyncDatabase, catalog: None) -> None:
    for name, value in (("ann", 7), ("ben", 7), ("cat", 8)):
        client = running.client()
        await client.sign_up(name)
        await client.post("/user/series-rating/add/2", {"rating": value})
    assert await aggregates(db, 2) == (3, 44)
    status = {"visibility": "public", "progressType": "chapters", "progress": 1, "status": "started",
              "priority": "mid", "client": 1}
    await client.post("/user/reading-status/add/2", status)
    item = (await client.get("/user/reading-history")).body["series"][0]
    assert item["average_rating"] == 22 / 3


@pytest.mark.asyncio
async def test_concurrent_changes_by_many_users_keep_the_aggregates_exact(
    running: RunningApp, db: AsyncDatabase, catalog: None
) -> None:
    rng = random.Random(42)
    clients = [running.client() for _ in range(24)]
    await asyncio.gather(*(c.sign_up(f"rater{i:02}") for i, c in enumerate(clients)))

    def rating() -> float:
        return rng.randint(2, 20) / 2

    async def churn(client: ApiClient) -> None:
        # Each user adds, changes and removes at the same moments as everybody else, and some
        # race their own requests against each other.
        await client.post("/user/series-rating/add/1", {"rating": rating()})
        await asyncio.gather(
            client.post("/user/series-rating/update/1", {"rating": rating()}),
            client.post("/user/series-rating/update/1", {"rating": rating()}),
            client.post("/user/series-rating/add/1", {"rating": rating()}),
        )
        if rng.random() < 0.5:
            await asyncio.gather(client.delete("/user/series-rating/delete/1"),
                                 client.post("/user/series-rating/update/1", {"rating": rating()}))
        if rng.random() < 0.5:
            await client.post("/user/series-rating/add/1", {"rating": rating()})

    await asyncio.gather(*(churn(c) for c in clients))
    truth = (await RatingStore(db).true_totals()).get(1, (0, 0))
    assert await aggregates(db, 1) == truth
    assert await RatingStore(db).recount() == []
    ratings = [(await c.get("/user/series-rating/1")).body for c in clients]
    present = [r["rating"] for r in ratings if r is not None]
    assert truth == (len(present), round(sum(present) * 2))


@pytest.mark.asyncio
async def test_recount_while_users_change_ratings_never_overwrites_their_increments(
    running: RunningApp, db: AsyncDatabase, catalog: None
) -> None:
    clients = [running.client() for _ in range(12)]
    await asyncio.gather(*(c.sign_up(f"rater{i:02}") for i, c in enumerate(clients)))
    await asyncio.gather(*(c.post("/user/series-rating/add/1", {"rating": 5}) for c in clients))
    # Drift to repair, so that every recount below writes while the ratings change.
    store = RatingStore(db)

    async def churn(client: ApiClient, offset: int) -> None:
        for step in range(6):
            assert (await client.post("/user/series-rating/update/1", {"rating": 1 + (offset + step) % 10})).status == 200

    async def drift_and_recount() -> None:
        for _ in range(4):
            await db.series.update_one({"_id": 1}, {"$inc": {"rating_count": 3, "rating_half_points": 7}})
            await store.recount()

    await asyncio.gather(drift_and_recount(), *(churn(c, i) for i, c in enumerate(clients)))
    assert await store.recount() == []  # the last repair left it exact, and no change was lost
    ratings = [(await c.get("/user/series-rating/1")).body["rating"] for c in clients]
    assert ratings == [1 + (offset + 5) % 10 for offset in range(12)]  # each client's last update
    assert await aggregates(db, 1) == (12, round(sum(ratings) * 2))


@pytest.mark.asyncio
async def test_recount_repairs_and_reports_drift(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    await api.post("/user/series-rating/add/1", {"rating": 9})
    await db.series.update_one({"_id": 1}, {"$set": {"rating_count": 5, "rating_half_points": 3}})
    await db.series.update_one({"_id": 2}, {"$set": {"rating_count": 1, "rating_half_points": 10}})
    drift = await RatingStore(db).recount()
    assert {(d.series_id, d.stored_count, d.true_count, d.true_half_points) for d in drift} == {(1, 5, 1, 18), (2, 1, 0, 0)}
    assert await aggregates(db, 1) == (1, 18) and await aggregates(db, 2) == (0, 0)
    assert await RatingStore(db).recount() == []


@pytest.mark.asyncio
async def test_recount_check_lists_drift_exits_1_and_changes_nothing(
    api: ApiClient, alice: dict, db: AsyncDatabase, mongo_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(mongodb_uri=mongo_uri, mongodb_db=db.name)
    await api.post("/user/series-rating/add/1", {"rating": 9})
    assert await recount_ratings(settings, check=True) == 0
    assert "every series agrees" in capsys.readouterr().out
    await db.series.update_one({"_id": 1}, {"$set": {"rating_count": 5, "rating_half_points": 3}})
    assert await recount_ratings(settings, check=True) == 1
    out = capsys.readouterr().out
    assert "series 1: count 5 -> 1, sum 1.5 -> 9" in out and "nothing was changed" in out, out
    assert await aggregates(db, 1) == (5, 3)
    assert await recount_ratings(settings) == 0
    assert "1 series had drifted and were fixed" in capsys.readouterr().out
    assert await aggregates(db, 1) == (1, 18)


def test_the_recount_command_accepts_check() -> None:
    assert _parser().parse_args(["recount-ratings", "--check"]).check is True
    assert _parser().parse_args(["recount-ratings"]).check is False


@pytest.mark.asyncio
async def test_round_trips_get_1_and_writes_5_or_6_in_one_transaction(api: ApiClient, alice: dict,
                                                                   commands: CommandCounter) -> None:
    costs = {}
    logs = {}
    for name, method, path, body in [
        ("add", "POST", "/user/series-rating/add/1", {"rating": 5}),
        ("get", "GET", "/user/series-rating/1", None),
        ("update", "POST", "/user/series-rating/update/1", {"rating": 6}),
        ("delete", "DELETE", "/user/series-rating/delete/1", None),
    ]:
        commands.reset()
        assert (await api.request(method, path, json_body=body)).status == 200
        costs[name] = commands.total
        logs[name] = list(commands.log)
    assert costs == {"add": 6, "get": 1, "update": 5, "delete": 5}
    # The session read, then the read of the user's counters, the user's write, its change
    # (storage.changes) and the series' $inc, committed together.
    assert logs["add"][1:] == ["find", "update", "insert", "update", "commitTransaction"], logs["add"]
    for name in ("update", "delete"):
        # A plain update: the counter the session read is still the user's (no pre-image needed).
        assert logs[name][1:] == ["update", "insert", "update", "commitTransaction"], logs[name]


@pytest.mark.slow
def test_the_recount_command_reports_what_it_fixed(tmp_path: Path) -> None:
    env = service_env(tmp_path / "data")
    # A DATA_DIR that holds no database is refused (a command run without the service's settings).
    refused = run_command(["recount-ratings"], env)
    assert refused.returncode == 1 and "holds no database" in refused.stderr, refused.stderr
    assert not (tmp_path / "data").exists()
    made = run_command(["import-catalog", str(ROOT / "catalog" / "demo-catalog.json")], env)
    assert made.returncode == 0, made.stderr
    result = run_command(["recount-ratings"], env)
    assert result.returncode == 0, result.stderr
    assert "every series agrees with the stored ratings" in result.stdout
