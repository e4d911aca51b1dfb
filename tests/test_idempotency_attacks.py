"""Attacks on Idempotency-Key (a hostile review of issue 27 point 5): each test here failed when it
was written; each states what docs/api.md promises."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient, keyed
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series
from tests.conftest import FailPoints, RunningApp
from tests.images import data_url, image_bytes
from tests.waiting import until

pytestmark = pytest.mark.asyncio


async def test_a_stored_fingerprint_does_not_let_a_database_reader_test_password_guesses(
    running: RunningApp, db: AsyncDatabase
) -> None:
    """Passwords are kept only as argon2id hashes; the fingerprint of a keyed registration (and a
    change of password, an account deletion) is a plain SHA-256 of a body that holds the password,
    kept 24 hours beside the username: anyone who reads the database (a backup) tests billions of
    guesses a second against it."""
    body = {"username": "carol", "password": "hunter22"}
    raw = json.dumps(body)
    reply = await running.client().request("POST", "/auth/register", body=raw,
                                           headers={**keyed("k"), "Content-Type": "application/json"})
    assert reply.status == 201
    stored = await db.idempotency.find_one({})
    guess = hashlib.sha256(b"POST /auth/register\n" + raw.encode()).hexdigest()
    assert stored["fingerprint"] != guess, "the password is one SHA-256 away from the stored fingerprint"


async def test_concurrent_image_deletions_with_one_key_replay_the_answer_of_the_one_that_deleted(
    api: ApiClient, db: AsyncDatabase, alice: dict, fail_points: FailPoints
) -> None:
    """Without a transaction, two attempts with one key both run: the one that found nothing to
    delete (404) can save its answer before the one that deleted (200) saves its own, and every
    answer and every later retry is then 404 while the image is gone."""
    path = f"/user/update-image/{alice['id']}"
    assert (await api.post(path, {"image": data_url(image_bytes("PNG", (64, 64)), "image/png")})).status == 200
    # The first attempt's file deletion (after it cleared the image) is slow.
    await fail_points.fail(["delete"], {"times": 1}, blockConnection=True, blockTimeMS=1500)
    first = asyncio.ensure_future(api.delete(f"/user/delete-image/{alice['id']}", headers=keyed("img")))

    async def image_cleared() -> bool:
        return (await db.users.find_one({"_id": alice["id"]}))["profile_image"] is None

    await until(image_cleared, 10, "the first attempt clearing the image")
    second = await api.delete(f"/user/delete-image/{alice['id']}", headers=keyed("img"))
    answers = [(await first).status, second.status,
               (await api.delete(f"/user/delete-image/{alice['id']}", headers=keyed("img"))).status]
    assert (await db.users.find_one({"_id": alice["id"]}))["profile_image"] is None  # it was deleted
    assert answers == [200, 200, 200], answers


async def test_concurrent_account_deletions_with_one_key_never_keep_a_401_for_a_deleted_account(
    api: ApiClient, running: RunningApp, db: AsyncDatabase, alice: dict, fail_points: FailPoints
) -> None:
    """Attempt B signs in before attempt A deletes the account and looks the password up after:
    B's 401 "Invalid credentials" is saved before A's 200, and A, every retry with the cookie
    (for 24 hours) answer 401 though the account is gone."""
    body = {"password": "correct horse"}
    cookie = api.cookie_header()
    # B is held at its first rate-limit count, after authentication.
    await fail_points.fail(["findAndModify"], {"times": 1}, blockConnection=True, blockTimeMS=1500)
    b = asyncio.ensure_future(running.client().delete("/user/account", json_body=body,
                                                      headers={**keyed("bye"), "Cookie": cookie}))
    await asyncio.sleep(0.4)  # B reaches its count (a fail point gives no signal to wait on)
    # A deletes the account and is then slow to save its answer (its first update is the
    # give-back of its successful password check; the second, its answer).
    await fail_points.fail(["update"], {"skip": 1, "times": 1}, blockConnection=True, blockTimeMS=2500)
    a = asyncio.ensure_future(running.client().delete("/user/account", json_body=body,
                                                      headers={**keyed("bye"), "Cookie": cookie}))
    first, second = await a, await b
    await fail_points.off()
    retry = await running.client().delete("/user/account", json_body=body, headers={**keyed("bye"), "Cookie": cookie})
    assert await db.users.count_documents({}) == 0  # the account is gone
    assert [first.status, second.status, retry.status] == [200, 200, 200], \
        [(r.status, r.body) for r in (first, second, retry)]


async def test_a_failed_abort_does_not_leave_a_transaction_that_blocks_the_users_later_writes(
    api: ApiClient, db: AsyncDatabase, alice: dict, fail_points: FailPoints
) -> None:
    """The add is written in the request's transaction, the save of its answer fails (a shutdown
    error, 91), and so does the abort (the driver ignores a failed abort): the transaction stays
    open on the server, holding alice's document. Measured: every later write of alice waits
    10 s and answers 503 for more than 2 minutes (SecantusDB does not expire it sooner)."""
    await fail_points.fail(["update", "abortTransaction"], {"skip": 1, "times": 3}, errorCode=91, errorLabels=[])
    keyed_add = await api.post("/user/reading-status/add/1", STATUS, headers=keyed("stuck"))
    await fail_points.off()
    try:
        later = await api.post("/user/reading-status/add/2", STATUS)
        # The service kills the session after the failure and runs the transaction again.
        assert keyed_add.status in (200, 503) and later.status == 200, (keyed_add.status, later.status, later.body)
        stored = await db.users.find_one({"_id": alice["id"]}, {"statuses": 1})
        assert sorted(s["series_id"] for s in stored["statuses"]) == ([1, 2] if keyed_add.status == 200 else [2])
    finally:
        # Ends the stuck transaction so that the test's database can be dropped (this worker's
        # own SecantusDB: no other test runs on it now).
        await fail_points._admin.admin.command("killAllSessions", [])


async def test_keys_of_anonymous_requests_do_not_store_a_document_each_without_any_limit(
    start_app: Any, db: AsyncDatabase
) -> None:
    """On /auth/register the answers of refused bodies (400, 422) are saved before the
    registration limit counts anything: anyone, signed in or not, stores one document per request
    for 24 hours, as fast as they can send (the registration limit here is 3 an hour)."""
    running = await start_app(register_limit_per_hour=3)
    client = running.client()
    replies = [await client.post("/auth/register", {"username": "x" * 200, "password": "correct horse"},
                                 headers=keyed(f"anon-{i}")) for i in range(40)]
    assert {reply.status for reply in replies} == {422}
    assert await db.idempotency.count_documents({}) <= 10, await db.idempotency.count_documents({})


async def test_concurrent_keyed_writes_of_one_user_are_not_refused_where_the_same_writes_without_keys_pass(
    api: ApiClient, db: AsyncDatabase, alice: dict
) -> None:
    """Ten ratings of ten series at once: without keys all succeed; with a key each, every write
    is a transaction on alice's document, conflicts are run again at once, and after five
    attempts half of them answer 503 (measured: 5 of 10; 10 of 20 adds)."""
    await load_catalog(db, [series(i, f"S{i}") for i in range(3, 23)])
    plain = await asyncio.gather(*(api.post(f"/user/series-rating/add/{i}", {"rating": 7}) for i in range(3, 13)))
    assert {reply.status for reply in plain} == {200}
    with_keys = await asyncio.gather(*(api.post(f"/user/series-rating/add/{i}", {"rating": 7}, headers=keyed(f"r{i}"))
                                       for i in range(13, 23)))
    assert sorted(reply.status for reply in with_keys) == [200] * 10


async def test_a_request_without_a_session_is_refused_before_its_body_with_a_key_as_without(
    running: RunningApp
) -> None:
    """Before keys, a write without a valid session was 401 before its body was read. With any
    cookie and a key, the 401 waits for the whole body (up to the route's limit: 11 MB on the
    avatar upload), which is then hashed, and a lookup made: anyone can make the service read and
    hash bodies it refused before."""

    async def first_line(headers: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(("POST /auth/change-password HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: 200000\r\nCookie: refreshToken=garbage\r\n{headers}\r\n").encode())
        try:
            return await asyncio.wait_for(reader.readline(), 2)
        except TimeoutError:
            return b"no answer in 2 s: the service waits for the body"
        finally:
            writer.close()

    assert (await first_line("")).startswith(b"HTTP/1.1 401")
    assert (await first_line("Idempotency-Key: k\r\n")).startswith(b"HTTP/1.1 401")
