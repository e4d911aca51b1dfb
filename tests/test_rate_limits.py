"""Failed logins and registrations are limited per client address (and username)."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from storage.rate_limits import SharedWindowLimit
from tests.conftest import StartApp

pytestmark = pytest.mark.asyncio


async def test_the_eleventh_failed_login_answers_429(start_app: StartApp) -> None:
    client = (await start_app()).client()
    await client.register("alice")
    for _ in range(10):
        assert (await client.login("alice", "wrong password")).status == 401
    reply = await client.login("alice", "wrong password")
    assert (reply.status, reply.body) == (429, {"data": "Too many requests.", "code": 429})
    # Even the right password waits out the window: the attacker learns nothing.
    assert (await client.login("alice")).status == 429


async def test_failed_logins_of_one_username_do_not_lock_out_another(start_app: StartApp) -> None:
    client = (await start_app(login_failures_per_15_min=3)).client()
    await client.register("alice")
    await client.register("bob")
    for _ in range(3):
        await client.login("alice", "wrong password")
    assert (await client.login("alice")).status == 429
    assert (await client.login("bob")).status == 200


async def test_a_successful_login_clears_earlier_failures(start_app: StartApp) -> None:
    client = (await start_app(login_failures_per_15_min=3)).client()
    await client.register("alice")
    for _ in range(2):
        await client.login("alice", "wrong password")
    assert (await client.login("alice")).status == 200
    for _ in range(2):
        assert (await client.login("alice", "wrong password")).status == 401
    assert (await client.login("alice")).status == 200


async def test_registrations_are_limited_per_address(start_app: StartApp) -> None:
    client = (await start_app(register_limit_per_hour=3)).client()
    for name in ("user1", "user2", "user3"):
        assert (await client.register(name)).status == 201
    reply = await client.register("user4")
    assert (reply.status, reply.body) == (429, {"data": "Too many requests.", "code": 429})


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy(start_app: StartApp) -> None:
    untrusted = (await start_app(register_limit_per_hour=1)).client()
    assert (await untrusted.register("user1", )).status == 201
    spoofed = await untrusted.request("POST", "/auth/register", json_body={"username": "user2", "password": "correct horse"},
                                      headers={"X-Forwarded-For": "203.0.113.9"})
    assert spoofed.status == 429

    proxied = (await start_app(register_limit_per_hour=1, trust_proxy=True)).client()
    for address, name in (("203.0.113.1", "user3"), ("203.0.113.2", "user4")):
        reply = await proxied.request("POST", "/auth/register", json_body={"username": name, "password": "correct horse"},
                                      headers={"X-Forwarded-For": address})
        assert reply.status == 201


async def test_concurrent_first_attempts_are_each_counted_once(start_app: StartApp, db: AsyncDatabase) -> None:
    # The counter does not exist yet: every one of these races to create it. None may be lost
    # (a lost upsert race is counted again), and none may be refused below the limit.
    client = (await start_app(register_limit_per_hour=100)).client()
    replies = await asyncio.gather(*(client.register(f"racer{n:02}") for n in range(40)))
    assert [reply.status for reply in replies] == [201] * 40
    assert (await db.rate_limits.find_one({}, {"count": 1}))["count"] == 40


async def test_a_counter_raced_into_existence_by_many_attempts_counts_each_once(db: AsyncDatabase) -> None:
    # SecantusDB answers some of the losers of an upsert race with no document (MongoDB with a
    # duplicate-key error): each must be counted again, never lost or refused.
    limit = SharedWindowLimit(db, "race", 1000, 60)
    for key in ("a", "b", "c"):
        assert await asyncio.gather(*(limit.attempt(key) for _ in range(50))) == [True] * 50
        assert (await db.rate_limits.find_one({"_id": f"race:{key}"}))["count"] == 50
