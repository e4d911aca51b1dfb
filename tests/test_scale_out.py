"""Several processes on one database: nothing that only holds in one process.

Queries on `users` name the user's `_id` (one shard on a cluster sharded by it), avatar versions
come from the database, rate limits are shared and atomic, and three service processes on one
database behave as one service."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from handlers.application import all_routes
from storage.avatars import AvatarStore
from tests.api_client import ApiClient
from tests.api_tour import CATALOG, api_tour
from tests.catalog_data import load_catalog
from tests.conftest import CommandCounter, RunningApp, StartApp
from tests.images import b64, image_bytes, opened
from tests.service_process import running_service

pytestmark = pytest.mark.asyncio



# ---- targeted queries ----

def filters_on_users(command: dict[str, Any]) -> list[dict[str, Any]]:
    """The filters of a command sent to `users`; [] for an insert. Fails on a command it does not know."""
    name = next(iter(command))
    if name == "find":
        return [command.get("filter", {})]
    if name == "findAndModify":
        return [command["query"]]
    if name == "update":
        return [statement["q"] for statement in command["updates"]]
    if name == "delete":
        return [statement["q"] for statement in command["deletes"]]
    if name == "aggregate":
        return [command["pipeline"][0].get("$match", {})]
    if name == "insert":
        return []
    raise AssertionError(f"an unexpected command on users: {name}")


def collection_of(command: dict[str, Any]) -> str | None:
    name = next(iter(command))
    value = command[name]
    return value if isinstance(value, str) else None


async def test_every_command_on_users_in_a_full_run_of_the_api_filters_on_the_user_id(
    running: RunningApp, db: AsyncDatabase, commands: CommandCounter
) -> None:
    await load_catalog(db, CATALOG)
    commands.reset()
    exercised = {(method, route) for method, route, _ in await api_tour(running, db)}
    every_route = {(method.upper(), route.path) for route in all_routes() for method in route.handler.api}
    assert every_route <= exercised, every_route - exercised

    on_users = [command for command in commands.sent if collection_of(command) == "users"]
    assert len(on_users) > 50
    untargeted = [(next(iter(c)), f) for c in on_users for f in filters_on_users(c) if "_id" not in f]
    assert untargeted == []
    # The only lookups by name: `usernames`, by its `_id` (the lower-cased name).
    on_usernames = [command for command in commands.sent if collection_of(command) == "usernames"]
    assert {next(iter(c)) for c in on_usernames} <= {"find", "insert", "delete", "aggregate"}
    assert all("_id" in c["filter"] for c in on_usernames if "filter" in c)
    # A public profile: from the name to the user by `_id`, in one aggregation.
    assert all("_id" in c["pipeline"][0]["$match"] and c["pipeline"][1]["$lookup"]["foreignField"] == "_id"
               for c in on_usernames if "pipeline" in c)
    assert all("_id" in d["q"] for c in on_usernames for d in c.get("deletes", []))  # an account's deletion
    assert sum(1 for c in on_usernames if next(iter(c)) == "insert") == 5  # one per registration
    assert Counter(collection_of(c) for c in commands.sent)["users"] == len(on_users)


# ---- versions from the database ----

async def test_across_two_instances_the_later_upload_wins_and_an_upload_begun_before_a_delete_never_switches_in(
    start_app: StartApp, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await start_app(), await start_app()  # two instances of the service, one database
    alice = first.client()
    user = await alice.sign_up("alice")
    on_second = second.client()
    on_second.cookies = dict(alice.cookies)
    original = AvatarStore.switch
    paused, resume = asyncio.Event(), asyncio.Event()

    async def first_switch_waits(self: AvatarStore, user_id: str, reference: dict[str, Any]) -> bool:
        if not paused.is_set():
            paused.set()
            await resume.wait()
        return await original(self, user_id, reference)

    monkeypatch.setattr(AvatarStore, "switch", first_switch_waits)
    red, blue = b64(image_bytes("PNG", (64, 64), color="red")), b64(image_bytes("PNG", (64, 64), color="blue"))
    earlier = asyncio.create_task(alice.post(f"/user/update-image/{user['id']}", {"image": red}))
    await paused.wait()  # the earlier upload holds its version and waits before its switch
    assert (await on_second.post(f"/user/update-image/{user['id']}", {"image": blue})).status == 200
    resume.set()
    assert (await earlier).status == 200  # it lost the race: its files are deleted, quietly
    shown = opened((await alice.get(f"/user/avatar/{user['id']}/scaled")).raw).convert("RGB")
    assert shown.getpixel((128, 128)) == (0, 0, 255)  # the later upload's image
    assert await db["avatars.files"].count_documents({}) == 2

    # An upload begun before a delete (on the other instance) never switches in after it.
    paused.clear()
    resume.clear()
    pending = asyncio.create_task(alice.post(f"/user/update-image/{user['id']}", {"image": red}))
    await paused.wait()
    assert (await on_second.delete(f"/user/delete-image/{user['id']}")).status == 200
    resume.set()
    assert (await pending).status == 200
    assert (await alice.get(f"/user/avatar/{user['id']}/scaled")).status == 404
    assert await db["avatars.files"].count_documents({}) == 0
    versions = await db.users.find_one({"_id": user["id"]}, {"avatar_sequence": 1, "avatar_floor": 1})
    assert (versions["avatar_sequence"], versions["avatar_floor"]) == (4, 4)  # red 1, blue 2, red 3, delete 4


# ---- shared, atomic rate limits ----

async def test_200_concurrent_wrong_passwords_are_verified_at_most_the_limit_times(
    start_app: StartApp, db: AsyncDatabase
) -> None:
    running = await start_app(login_failures_per_15_min=10)
    await running.client().register("alice")
    clients = [running.client() for _ in range(200)]
    replies = await asyncio.gather(*(c.login("alice", "wrong password") for c in clients))
    statuses = Counter(reply.status for reply in replies)
    assert statuses[401] <= 10 and statuses[401] + statuses[429] == 200, statuses
    assert statuses[429] >= 190


async def test_limits_are_shared_by_two_instances_and_survive_a_restart(start_app: StartApp) -> None:
    one, two = await start_app(login_failures_per_15_min=10), await start_app(login_failures_per_15_min=10)
    await one.client().register("alice")
    replies = await asyncio.gather(*(random.choice((one, two)).client().login("alice", "wrong password")
                                     for _ in range(60)))
    statuses = Counter(reply.status for reply in replies)
    assert statuses[401] <= 10 and statuses[429] >= 50, statuses
    restarted = await start_app(login_failures_per_15_min=10)  # a new instance forgets nothing
    assert (await restarted.client().login("alice")).status == 429

    for instance, name in ((one, "user1"), (two, "user2"), (restarted, "user3")):
        assert (await instance.client().register(name)).status == 201
    limited = await start_app(register_limit_per_hour=3)
    reply = await limited.client().register("user4")
    assert (reply.status, reply.body["data"]) == (429, "Too many requests.")


# ---- three processes ----

async def test_three_service_processes_on_one_database_behave_as_one_service(
    tmp_path: Path, mongo_uri: str, db: AsyncDatabase
) -> None:
    await load_catalog(db, CATALOG)
    environment = {"MONGODB_URI": mongo_uri, "MONGODB_DB": db.name, "LOGIN_FAILURES_PER_15_MIN": "10",
                   "REGISTER_LIMIT_PER_HOUR": "1000"}
    async with running_service(tmp_path / "a", **environment) as a, \
            running_service(tmp_path / "b", **environment) as b, \
            running_service(tmp_path / "c", **environment) as c:
        processes = [a, b, c]

        def on(process: Any, cookies: dict[str, str]) -> ApiClient:
            client = process.client()
            client.cookies = dict(cookies)
            return client

        # Sessions made on one process work on the others; logout on one is seen by all.
        signed_in = a.client()
        await signed_in.sign_up("reader")
        assert (await on(b, signed_in.cookies).get("/auth/me")).status == 200
        assert (await on(c, signed_in.cookies).get("/auth/me")).status == 200
        assert (await on(b, signed_in.cookies).post("/auth/logout")).status == 200
        for process in processes:
            assert (await on(process, signed_in.cookies).get("/auth/me")).status == 401

        # Ratings written through different processes, concurrently, keep exact aggregates.
        readers = []
        for n in range(12):
            client = processes[n % 3].client()
            await client.sign_up(f"rater{n}")
            readers.append(client)

        async def rate(n: int, client: ApiClient) -> float:
            rating = float(1 + n % 10)
            assert (await on(processes[(n + 1) % 3], client.cookies).post(
                "/user/series-rating/add/1", {"rating": rating})).status == 200
            final = rating / 2 + 0.5
            assert (await on(processes[(n + 2) % 3], client.cookies).post(
                "/user/series-rating/update/1", {"rating": final})).status == 200
            return final

        finals = await asyncio.gather(*(rate(n, client) for n, client in enumerate(readers)))
        stored = await db.series.find_one({"_id": 1})
        assert (stored["rating_count"], stored["rating_half_points"]) == (12, round(sum(finals) * 2))

        # Limits are shared: wrong passwords spread over the three processes.
        await a.client().register("target")
        replies = await asyncio.gather(*(processes[n % 3].client().login("target", "wrong password")
                                         for n in range(45)))
        statuses = Counter(reply.status for reply in replies)
        assert statuses[401] <= 10 and statuses[429] >= 35, statuses
