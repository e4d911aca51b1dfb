"""Hostile checks of the list write's read-then-update (issue 31): many writes of one entry at
once, from one process and from two, each acknowledged write leaves exactly one change, numbered
without a gap, and the entry's history chains each step's `before` to the step before it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.catalog_data import series, volume
from tests.service_process import running_service

pytestmark = pytest.mark.asyncio

CATALOG = [series(n, f"Series {n}", mal_id=1000 + n, volumes=[volume(n * 10 + 1, 1), volume(n * 10 + 2, 2)])
           for n in range(1, 4)]


async def everything(api: ApiClient) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    since: str | None = None
    while True:
        reply = await api.get(f"/user/changes?limit=1000{f'&since={since}' if since else ''}")
        assert reply.status == 200, reply.body
        seen += reply.body["changes"]
        since = reply.body["next"]
        if not reply.body["more"]:
            return seen


async def storm(client: ApiClient, tag: str, rounds: int) -> list[tuple[str, int]]:
    """Adds, updates and deletes of series 1's status at once; each write's (what, status)."""
    async def one(i: int) -> tuple[str, int]:
        kind = i % 4
        if kind == 0:
            reply = await client.post("/user/reading-status/add/1", STATUS)
            return "add", reply.status
        if kind == 3:
            reply = await client.delete("/user/reading-status/delete/1")
            return "delete", reply.status
        reply = await client.post("/user/reading-status/update/1", {**STATUS, "progress": 100 + i, "notes": tag})
        return "update", reply.status
    return list(await asyncio.gather(*(one(i) for i in range(rounds))))


def check_chain(seen: list[dict[str, Any]], done: int, steps: list[dict[str, Any]]) -> None:
    assert [int(c["cursor"]) for c in seen] == list(range(1, done + 1))
    assert len(steps) == done
    oldest_first = list(reversed(steps))
    for earlier, later in zip(oldest_first, oldest_first[1:], strict=False):
        assert later["before"] == earlier["after"], (earlier, later)
    assert oldest_first[0]["before"] is None
    for change, step in zip(seen, oldest_first, strict=True):
        assert change["entry"] == step["after"]


async def check_storm(api: ApiClient, results: list[tuple[str, int]]) -> None:
    """Only 200, 404 and 409 came back, and the feed and the status's history hold exactly one
    change per accepted write, in a chain."""
    assert all(status in (200, 404, 409) for _, status in results), results
    done = sum(status == 200 for _, status in results)
    seen = await everything(api)
    history = (await api.get("/user/reading-status/id/1/history?limit=100")).body
    assert history["max"] == done
    check_chain(seen, done, history["history"])


async def test_fifty_writes_of_one_status_at_once_leave_each_change_once(api: ApiClient, alice: dict) -> None:
    await check_storm(api, await storm(api, "one", 48))


async def test_two_processes_writing_one_status_at_once_leave_each_change_once(
    api: ApiClient, alice: dict, tmp_path: Path, mongo_uri: str, db: AsyncDatabase
) -> None:
    async with running_service(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name) as service:
        phone = ApiClient(service.base_url)
        assert (await phone.login("alice")).status == 200
        first, second = await asyncio.gather(storm(api, "here", 24), storm(phone, "there", 24))
    await check_storm(api, first + second)


async def test_writes_in_flight_from_two_processes_while_the_account_is_deleted_leave_no_change(
    api: ApiClient, alice: dict, tmp_path: Path, mongo_uri: str, db: AsyncDatabase
) -> None:
    """A write that read the user before the removal's transaction and updates after it conflicts
    and finds no user: no change numbered past the counter the removal read is left behind."""
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    async with running_service(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name) as service:
        phone = ApiClient(service.base_url)
        assert (await phone.login("alice")).status == 200

        async def write(client: ApiClient, tag: str) -> list[int]:
            answers = []
            for i in range(40):
                reply = await client.post("/user/reading-status/update/1", {**STATUS, "progress": i, "notes": tag})
                answers.append(reply.status)
                if reply.status == 401:
                    break
            return answers

        async def delete() -> int:
            await asyncio.sleep(0.05)
            return (await api.delete("/user/account", json_body={"password": "correct horse"})).status

        here, there, deleted = await asyncio.gather(write(api, "here"), write(phone, "there"), delete())
    assert deleted == 200, deleted
    assert set(here + there) <= {200, 401} and 401 in here and 401 in there, (here, there)
    assert await db.users.count_documents({"_id": alice["id"]}) == 0
    assert await db.changes.count_documents({"user_id": alice["id"]}) == 0
    assert await db.removals.count_documents({}) == 0


async def test_deleting_again_finishes_the_changes_of_a_removal_that_stopped_after_its_transaction(
    running: Any, api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    """The module says deleting again finishes a removal that stopped: it deletes the files left
    under the id, and so must it the changes its note names (an admin's second delete)."""
    admin = running.client()
    admin_user = await admin.sign_up("root")
    await db.users.update_one({"_id": admin_user["id"]}, {"$set": {"roles": ["admin"]}})
    for progress in range(3):
        assert (await api.post("/user/reading-status/update/1" if progress else "/user/reading-status/add/1",
                               {**STATUS, "progress": progress})).status == 200
    # What the removal's transaction leaves when deleting the changes then stops.
    await db.users.delete_one({"_id": alice["id"]})
    await db.usernames.delete_many({"user_id": alice["id"]})
    await db.removals.insert_one({"_id": alice["id"], "last_change": 3})
    again = await admin.delete(f"/admin-users/account/{alice['id']}")
    assert again.status == 404
    assert await db.changes.count_documents({"user_id": alice["id"]}) == 0
    assert await db.removals.count_documents({}) == 0


async def test_conditional_writes_racing_plain_ones_from_two_processes_never_overwrite(
    api: ApiClient, alice: dict, tmp_path: Path, mongo_uri: str, db: AsyncDatabase
) -> None:
    """Twenty writes with the tag of the status as read, beside twenty plain ones: a conditional
    write that took effect changed the status exactly as it was read."""
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    read = await api.get("/user/reading-status/id/1")
    tag = read.headers["ETag"]
    async with running_service(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name) as service:
        phone = ApiClient(service.base_url)
        assert (await phone.login("alice")).status == 200

        async def conditional(client: ApiClient, i: int) -> int:
            return (await client.post("/user/reading-status/update/1", {**STATUS, "progress": 500 + i, "notes": "if"},
                                      headers={"If-Match": tag})).status

        async def plain(client: ApiClient, i: int) -> int:
            return (await client.post("/user/reading-status/update/1", {**STATUS, "progress": i})).status

        answers = await asyncio.gather(*(conditional(api if i % 2 else phone, i) for i in range(20)),
                                       *(plain(phone if i % 2 else api, i) for i in range(20)))
    assert set(answers[:20]) <= {200, 412} and set(answers[20:]) == {200}, answers
    assert answers[:20].count(200) <= 1
    steps = (await api.get("/user/reading-status/id/1/history?limit=100")).body["history"]
    assert len(steps) == 1 + answers.count(200)
    added = steps[-1]["after"]
    for step in steps:
        if step["after"]["notes"] == "if":
            assert step["before"] == added, step
    check_chain(await everything(api), len(steps), steps)


async def test_a_short_history_written_at_once_keeps_exactly_its_newest_steps(
    start_app: Any, alice: dict, db: AsyncDatabase
) -> None:
    running = await start_app(status_history_limit=4)
    api = running.client()
    assert (await api.login("alice")).status == 200
    results = await storm(api, "short", 40)
    done = sum(status == 200 for _, status in results)
    assert done > 8
    seen = await everything(api)
    assert [int(c["cursor"]) for c in seen] == list(range(1, done + 1))
    page = (await api.get("/user/reading-status/id/1/history?limit=100")).body
    assert page["max"] == 4 and len(page["history"]) == 4
    assert [s["after"] for s in reversed(page["history"])] == [c["entry"] for c in seen[-4:]]
    assert await db.changes.count_documents({"user_id": alice["id"], "n": {"$exists": True}}) == 4
    tail = (await api.get("/user/reading-status/id/1/history?offset=3&limit=5")).body
    assert (tail["from"], tail["to"], tail["max"]) == (3, 4, 4) and tail["history"] == page["history"][3:]
    beyond = (await api.get("/user/reading-status/id/1/history?offset=4")).body
    assert beyond["history"] == [] and beyond["max"] == 4


async def test_first_pages_and_cursors_at_the_edge_of_what_is_kept(api: ApiClient, alice: dict,
                                                                   db: AsyncDatabase) -> None:
    """Changes 1-5 passed their retention (1 and 2 also removed by the TTL monitor), 6-8 are kept."""
    for progress in range(8):
        assert (await api.post("/user/reading-status/update/1" if progress else "/user/reading-status/add/1",
                               {**STATUS, "progress": progress})).status == 200
    past = utc_now() - timedelta(seconds=1)
    await db.changes.update_many({"user_id": alice["id"], "seq": {"$lte": 5}}, {"$set": {"expires": past}})
    await db.changes.delete_many({"user_id": alice["id"], "seq": {"$lte": 2}})
    cursors = lambda page: [int(c["cursor"]) for c in page["changes"]]  # noqa: E731
    first = (await api.get("/user/changes?limit=2")).body
    assert (cursors(first), first["next"], first["more"]) == ([6, 7], "7", True)
    assert cursors((await api.get("/user/changes?since=7")).body) == [8]
    assert cursors((await api.get("/user/changes?since=5")).body) == [6, 7, 8]
    for gone in ("0", "2", "4"):
        assert (await api.get(f"/user/changes?since={gone}")).status == 410, gone
    # Then everything passes its retention: the first page is empty and starts at the counter.
    await db.changes.update_many({"user_id": alice["id"]}, {"$set": {"expires": past}})
    assert (await api.get("/user/changes")).body == {"changes": [], "next": "8", "more": False}
    assert (await api.get("/user/changes?since=8")).body == {"changes": [], "next": "8", "more": False}
    assert (await api.get("/user/changes?since=7")).status == 410


async def test_one_volume_added_and_one_rating_added_and_deleted_at_once_from_two_processes(
    api: ApiClient, alice: dict, tmp_path: Path, mongo_uri: str, db: AsyncDatabase
) -> None:
    """Of twenty adds of one volume exactly one takes; ratings added and deleted at once leave the
    series' aggregates as the final rating says, and one change per write that took."""
    async with running_service(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name) as service:
        phone = ApiClient(service.base_url)
        assert (await phone.login("alice")).status == 200

        async def add(client: ApiClient) -> int:
            return (await client.post("/user/collection/add/11", {"price": 1})).status

        async def rate(client: ApiClient, i: int) -> int:
            if i % 2:
                return (await client.delete("/user/series-rating/delete/2")).status
            return (await client.post("/user/series-rating/add/2", {"rating": 1 + i % 9})).status

        adds = await asyncio.gather(*(add(api if i % 2 else phone) for i in range(20)))
        rates = await asyncio.gather(*(rate(api if i % 3 else phone, i) for i in range(30)))
    assert sorted(adds) == [200] + [409] * 19, adds
    assert set(rates) <= {200, 404, 409}, rates
    seen = await everything(api)
    assert [int(c["cursor"]) for c in seen] == list(range(1, 1 + 1 + rates.count(200)))
    final = (await api.get("/user/series-rating/2")).body
    aggregate = await db.series.find_one({"_id": 2}, {"rating_count": 1, "rating_half_points": 1})
    rating_changes = [c for c in seen if c["kind"] == "rating"]
    assert rating_changes[-1]["entry"] == final or (final is None and rating_changes[-1]["entry"] is None), (
        rating_changes[-1], final)
    assert aggregate.get("rating_count", 0) == (0 if final is None else 1), (aggregate, final)


async def test_a_first_page_after_the_retention_was_shortened_can_be_followed_without_a_410(
    api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    """Changes 1-3 were written under a long retention, 4-8 under a shorter one: 1 has passed its
    retention, 2 and 3 have not, 4-6 have (written later, kept less long), 7 and 8 have not. The
    halving lands past 4-6 (so not at 2, the oldest kept: the docs' "starts at the oldest change
    kept" holds only while a later number never expires first), and what a first page hands out
    can be followed: a first page starting at 2 would lead its cursor into 4-6's 410."""
    for progress in range(8):
        assert (await api.post("/user/reading-status/update/1" if progress else "/user/reading-status/add/1",
                               {**STATUS, "progress": progress})).status == 200
    past = utc_now() - timedelta(seconds=1)
    await db.changes.update_many({"user_id": alice["id"], "seq": {"$in": [1, 4, 5, 6]}}, {"$set": {"expires": past}})
    first = (await api.get("/user/changes?limit=2")).body
    assert [int(c["cursor"]) for c in first["changes"]] == [7, 8]
    assert (await api.get(f"/user/changes?since={first['next']}")).status == 200


async def test_conditional_deletes_racing_plain_updates_from_two_processes_delete_only_what_was_read(
    api: ApiClient, alice: dict, tmp_path: Path, mongo_uri: str, db: AsyncDatabase
) -> None:
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    tag = (await api.get("/user/reading-status/id/1")).headers["ETag"]
    async with running_service(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name) as service:
        phone = ApiClient(service.base_url)
        assert (await phone.login("alice")).status == 200
        answers = await asyncio.gather(
            *(c.delete("/user/reading-status/delete/1", headers={"If-Match": tag}) for c in [api, phone] * 5),
            *(c.post("/user/reading-status/update/1", {**STATUS, "progress": 50 + i})
              for i, c in enumerate([phone, api] * 5)))
    deletes, updates = [a.status for a in answers[:10]], [a.status for a in answers[10:]]
    assert set(deletes) <= {200, 404, 412} and deletes.count(200) <= 1 and set(updates) <= {200, 404}, answers
    steps = (await api.get("/user/reading-status/id/1/history?limit=100")).body["history"]
    added = steps[-1]["after"]
    for step in steps:
        if step["after"] is None:
            assert step["before"] == added, step
    check_chain(await everything(api), len(steps), steps)
