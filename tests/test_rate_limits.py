"""Failed logins are limited per client address and username, and per address whatever the
username; registrations per address; password hashing has a bound of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from argon2 import PasswordHasher
from pymongo.asynchronous.database import AsyncDatabase

from auth.passwords import Passwords
from storage.rate_limits import SharedWindowLimit
from tests.api_client import ApiClient, Reply
from tests.conftest import StartApp
from tests.waiting import until

pytestmark = pytest.mark.asyncio

TOO_MANY = {"data": "Too many requests.", "code": 429}
FLOODING = "203.0.113.7"


class CountingHasher(PasswordHasher):
    """argon2 with the tests' small costs, counting the hashes it computes and how many run at
    once; each waits while `gate` is closed, so that a test can hold hashes running."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.computed = 0
        self.running = 0
        self.most_at_once = 0
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._counted():
            return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Any:
        with self._counted():
            return super().verify(hash, password)

    @contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self.computed += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.gate.wait(10)  # a test that never opens it fails on its own assertions, not here
            yield
        finally:
            with self._lock:
                self.running -= 1


async def login_from(client: ApiClient, address: str, username: str, password: str = "wrong password") -> Reply:
    return await client.request("POST", "/auth/login", json_body={"username": username, "password": password},
                                headers={"X-Forwarded-For": address})


async def test_the_eleventh_failed_login_answers_429(start_app: StartApp) -> None:
    client = (await start_app()).client()
    await client.register("alice")
    for _ in range(10):
        assert (await client.login("alice", "wrong password")).status == 401
    reply = await client.login("alice", "wrong password")
    assert (reply.status, reply.body) == (429, {"data": "Too many requests.", "code": 429})
    # When the window (15 minutes from the first failure) ends, in whole seconds.
    assert 15 * 60 - 60 <= int(reply.headers["Retry-After"]) <= 15 * 60
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
    assert 3600 - 60 <= int(reply.headers["Retry-After"]) <= 3600


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
        assert [attempt.allowed for attempt in await asyncio.gather(*(limit.attempt(key) for _ in range(50)))] \
            == [True] * 50
        assert (await db.rate_limits.find_one({"_id": f"race:{key}"}))["count"] == 50


async def test_logins_with_new_names_past_the_address_limit_answer_429_without_a_hash(
        start_app: StartApp, db: AsyncDatabase) -> None:
    hasher = CountingHasher()
    client = (await start_app(passwords=Passwords(hasher), trust_proxy=True,
                              login_failures_per_address_per_15_min=5)).client()
    await client.register("alice")
    hasher.computed = 0
    # Concurrent, each with a name of its own: every name is within its own limit.
    replies = await asyncio.gather(*(login_from(client, FLOODING, f"nobody{n:02}") for n in range(12)))
    assert sorted(reply.status for reply in replies) == [401] * 5 + [429] * 7
    assert all(reply.body == TOO_MANY for reply in replies if reply.status == 429)
    assert hasher.computed == 5
    # The refused attempts went no further than the address's counter.
    assert await db.rate_limits.count_documents({"_id": {"$regex": f"^login:{FLOODING}:"}}) == 5
    assert (await db.rate_limits.find_one({"_id": f"login-address:{FLOODING}"}))["count"] == 12
    # A real user from another address signs in; from the flooding one, not for now.
    assert (await login_from(client, "198.51.100.20", "alice", "correct horse")).status == 200
    assert (await login_from(client, FLOODING, "alice", "correct horse")).body == TOO_MANY


async def test_a_success_gives_back_only_its_own_count_of_the_address(start_app: StartApp) -> None:
    client = (await start_app(login_failures_per_address_per_15_min=3)).client()
    await client.register("alice")
    for name in ("nobody1", "nobody2"):
        assert (await client.login(name, "wrong password")).status == 401
    assert (await client.login("alice")).status == 200
    # Had the success cleared the address, two more failures would pass; had it counted, none.
    assert (await client.login("nobody3", "wrong password")).status == 401
    assert (await client.login("nobody4", "wrong password")).body == TOO_MANY
    assert (await client.login("alice")).status == 429


async def test_hashes_run_at_most_the_bound_at_once_and_past_the_queue_answer_429(
        start_app: StartApp, db: AsyncDatabase) -> None:
    hasher = CountingHasher()
    client = (await start_app(passwords=Passwords(hasher, at_once=2, waiting=3, per_caller=8))).client()
    hasher.gate.clear()
    registrations = [asyncio.ensure_future(client.register(f"user{n}")) for n in range(8)]
    # Two run, three wait: the other three are refused at once, while the five are held.
    await until(lambda: sum(task.done() for task in registrations) == 3 and hasher.running == 2)
    refused = [task.result() for task in registrations if task.done()]
    assert [(reply.status, reply.body, reply.headers["Retry-After"]) for reply in refused] == [(429, TOO_MANY, "1")] * 3
    hasher.gate.set()
    replies = await asyncio.gather(*registrations)
    assert sorted(reply.status for reply in replies) == [201] * 5 + [429] * 3
    assert hasher.most_at_once == 2
    assert await db.users.count_documents({}) == 5  # a refused registration stored nothing


async def test_one_address_holds_few_places_in_the_hashing_queue_so_another_still_signs_in(
        start_app: StartApp) -> None:
    hasher = CountingHasher()
    passwords = Passwords(hasher, at_once=1, waiting=4, per_caller=2)
    client = (await start_app(passwords=passwords, trust_proxy=True)).client()
    await client.register("alice")
    hasher.gate.clear()
    # Five would fill the whole queue: the address gets two places, the other three are refused.
    flood = [asyncio.ensure_future(login_from(client, FLOODING, f"nobody{n}")) for n in range(5)]
    await until(lambda: sum(task.done() for task in flood) == 3)
    assert [task.result().body for task in flood if task.done()] == [TOO_MANY] * 3
    user = asyncio.ensure_future(login_from(client, "198.51.100.20", "alice", "correct horse"))
    await until(lambda: user.done() or passwords.admitted == 3)  # refused, or waiting behind the two
    hasher.gate.set()
    assert (await user).status == 200
    assert sorted(reply.status for reply in await asyncio.gather(*flood)) == [401, 401, 429, 429, 429]


async def test_registration_and_a_change_of_password_wait_in_the_same_bound_as_logins(
        start_app: StartApp, db: AsyncDatabase) -> None:
    hasher = CountingHasher()
    client = (await start_app(passwords=Passwords(hasher, at_once=1, waiting=0))).client()
    await client.sign_up("alice")
    hasher.gate.clear()
    held = asyncio.ensure_future(client.login("alice"))
    await until(lambda: hasher.running == 1)
    assert (await client.register("bob")).body == TOO_MANY
    change = {"current_password": "correct horse", "new_password": "another horse"}
    assert (await client.post("/auth/change-password", change)).body == TOO_MANY
    hasher.gate.set()
    assert (await held).status == 200
    assert await db.users.count_documents({}) == 1
    assert (await client.login("alice", "correct horse")).status == 200  # the password did not change
