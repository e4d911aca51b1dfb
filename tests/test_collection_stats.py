"""The collection's figures kept in the user's document (storage.collection_stats, issue 32): after
every kind of write, and after a write that failed, they equal a full computation over the items;
a user who keeps none yet reads them computed, and `recount-collection-stats` stores them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from storage import collection_stats
from storage.collection import computed_stats_expression
from tests.api_client import ApiClient
from tests.catalog_data import series, volume
from tests.conftest import FailPoints, RunningApp
from tests.service_process import run_command, service_env

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "Yotsuba to!", volumes=[volume(11, 1), volume(12, 2), volume(13, 3), volume(14, 4)]),
    series(2, "Other Client", client=2, volumes=[volume(21, 1), volume(22, 2)]),
    series(3, "Many Volumes", volumes=[volume(300 + n, n) for n in range(1, 25)]),
]


async def full_computation(db: AsyncDatabase, user_id: str, client: int) -> dict[str, Any]:
    """The figures as the route answered them before they were kept: computed over every item."""
    found = await db.users.find_one({"_id": user_id}, {"figures": computed_stats_expression(client)})
    figures = found["figures"]
    return {"total_items": figures["total_items"], "total_spent": figures["total_cents"] / 100,
            "first_buy": figures["first_buy"], "last_buy": figures["last_buy"]}


async def assert_figures_exact(api: ApiClient, db: AsyncDatabase, user_id: str, step: str) -> None:
    stored = await db.users.find_one({"_id": user_id}, {"collection": 1, collection_stats.FIELD: 1})
    assert stored[collection_stats.FIELD] == collection_stats.figures_of(stored.get("collection") or []), step
    for client in (1, 2):
        answered = (await api.get(f"/user/collection/stats/general?client={client}")).body
        assert answered == await full_computation(db, user_id, client), (step, client)


async def add(api: ApiClient, volume_id: int, body: dict[str, Any] | None = None) -> str:
    reply = await api.post(f"/user/collection/add/{volume_id}", body)
    assert reply.status == 200, reply.body
    return str(reply.body["item_id"])


async def test_the_kept_figures_equal_a_full_computation_after_every_kind_of_write(
    api: ApiClient, alice: dict, db: AsyncDatabase, fail_points: FailPoints
) -> None:
    user = alice["id"]
    await assert_figures_exact(api, db, user, "registered")
    first = await add(api, 11, {"price": 7.99, "date": "2024-05-01"})
    middle = await add(api, 12, {"price": 5, "date": "2024-06-15"})
    last = await add(api, 13, {"price": 0.01, "date": "2024-09-30"})
    undated = await add(api, 14, {"price": 3.5})
    other = await add(api, 21, {"price": 12, "date": "2023-01-01"})
    await assert_figures_exact(api, db, user, "added")
    steps = [
        ("price changed", "POST", f"/user/collection/update/{middle}", {"price": 6.25, "date": "2024-06-15"}),
        ("date inside the bounds", "POST", f"/user/collection/update/{middle}", {"price": 6.25, "date": "2024-07-01"}),
        ("first moved later", "POST", f"/user/collection/update/{first}", {"price": 7.99, "date": "2024-08-01"}),
        ("last's date removed", "POST", f"/user/collection/update/{last}", {"price": 0.01, "date": None}),
        ("a new first", "POST", f"/user/collection/update/{undated}", {"price": 3.5, "date": "2020-02-02"}),
        ("the last deleted", "DELETE", f"/user/collection/delete/{first}", None),
        ("the other client's only one deleted", "DELETE", f"/user/collection/delete/{other}", None),
        ("toggled in", "GET", "/volumes/toggle-collection/id/22?client=2", None),
        ("toggled out", "GET", "/volumes/toggle-collection/id/22?client=2", None),
    ]
    for step, method, path, body in steps:
        # The toggle is a GET: it acts only for a page of the service's own origin.
        reply = await api.request(method, path, json_body=body, headers={"Sec-Fetch-Site": "same-origin"})
        assert reply.status == 200, (step, reply.body)
        await assert_figures_exact(api, db, user, step)
    # A write that fails (its change cannot be stored) moves no figure.
    kept = (await db.users.find_one({"_id": user}))[collection_stats.FIELD]
    await fail_points.fail(["insert"], {"times": 1}, errorCode=50, errorLabels=[])
    try:
        reply = await api.post(f"/user/collection/update/{middle}", {"price": 99, "date": "1999-01-01"})
    finally:
        await fail_points.off()
    assert reply.status >= 500
    assert (await db.users.find_one({"_id": user}))[collection_stats.FIELD] == kept
    await assert_figures_exact(api, db, user, "failed write")
    # Deleting every dated item of a client leaves no dates.
    for item in (middle, undated):
        assert (await api.delete(f"/user/collection/delete/{item}")).status == 200
    await assert_figures_exact(api, db, user, "dates gone")
    assert (await api.get("/user/collection/stats/general?client=1")).body["first_buy"] is None
    # An account file's import sets them from its whole list.
    exported = (await api.get("/user/export")).body
    assert (await add(api, 11, {"price": 1, "date": "2025-01-01"}))
    reply = await api.request("POST", "/user/import?merge=replace", body=json.dumps(exported).encode(),
                              headers={"Content-Type": "application/json"})
    assert reply.status == 200, reply.body
    await assert_figures_exact(api, db, user, "account file imported")


async def test_writes_at_once_leave_the_figures_exact(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    """Adds, date changes and deletes of one user's items, 36 at once: each write's transaction
    read the figures it moves, so a write that raced another runs again on what it left."""
    user = alice["id"]
    items = [await add(api, 300 + n, {"price": n, "date": f"2024-01-{n:02}"}) for n in range(1, 13)]
    writes = [api.post(f"/user/collection/add/{300 + n}", {"price": n, "date": f"2023-12-{n:02}"})
              for n in range(13, 25)]
    writes += [api.post(f"/user/collection/update/{item}", {"price": 1, "date": f"2025-0{n % 9 + 1}-01"})
               for n, item in enumerate(items[:6])]
    writes += [api.delete(f"/user/collection/delete/{item}") for item in items[6:]]
    writes += [api.delete(f"/user/collection/delete/{item}") for item in items[:6]]
    replies = await asyncio.gather(*writes)
    assert all(reply.status in (200, 404) for reply in replies), [r.status for r in replies]
    await assert_figures_exact(api, db, user, "at once")


async def test_a_user_who_keeps_no_figures_reads_them_computed_until_the_recount_stores_them(
    api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    user = alice["id"]
    await add(api, 11, {"price": 4, "date": "2024-01-01"})
    # A user registered before the figures were kept.
    await db.users.update_one({"_id": user}, {"$unset": {collection_stats.FIELD: ""}})
    await add(api, 12, {"price": 2, "date": "2025-01-01"})
    # Nothing is counted on top of nothing: the figures stay absent, the route computes them.
    assert collection_stats.FIELD not in await db.users.find_one({"_id": user})
    assert (await api.get("/user/collection/stats/general?client=1")).body == {
        "total_items": 2, "total_spent": 6, "first_buy": "2024-01-01", "last_buy": "2025-01-01"}
    assert await collection_stats.recount(db, repair=False) == [user]
    assert collection_stats.FIELD not in await db.users.find_one({"_id": user})
    assert await collection_stats.recount(db) == [user]
    await assert_figures_exact(api, db, user, "recounted")
    assert await collection_stats.recount(db) == []
    # A hand edit (or a write of an older version) is found and repaired.
    await db.users.update_one({"_id": user}, {"$inc": {f"{collection_stats.FIELD}.1.cents": 1}})
    assert await collection_stats.recount(db) == [user]
    await assert_figures_exact(api, db, user, "repaired")


@pytest.mark.slow
async def test_the_recount_command_checks_and_stores(running: RunningApp, db: AsyncDatabase, mongo_uri: str,
                                                     tmp_path: Path, catalog: None) -> None:
    api = running.client()
    user = await api.sign_up("carol")
    await add(api, 11, {"price": 4, "date": "2024-01-01"})
    await db.users.update_one({"_id": user["id"]}, {"$unset": {collection_stats.FIELD: ""}})
    env = service_env(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name)
    checked = run_command(["recount-collection-stats", "--check"], env)
    assert (checked.returncode, checked.stdout.strip()) == (1, (
        "recount-collection-stats: 1 users' figures differ or are not kept yet (nothing was changed; "
        "run recount-collection-stats without --check to store them)")), checked.stderr
    stored = run_command(["recount-collection-stats"], env)
    assert (stored.returncode, stored.stdout.strip()) == (0, "recount-collection-stats: 1 users' figures were stored")
    again = run_command(["recount-collection-stats", "--check"], env)
    assert (again.returncode, again.stdout.strip()) == (
        0, "recount-collection-stats: every user's collection figures agree with their items")
