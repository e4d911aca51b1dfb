"""DELETE /user/account and DELETE /admin-users/account/:id: everything of the user goes, the series'
rating aggregates stay exact, no GridFS file is left behind, and a removal that stops at any
command is finished by deleting again or by `server.py sweep`."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from storage import avatars
from storage.account_removal import AccountRemoval
from storage.avatars import AvatarStore
from storage.embedded_list import EmbeddedList
from storage.ratings import RatingStore
from storage.users import UserStore
from tests.api_client import ApiClient, Reply
from tests.bodies import STATUS
from tests.catalog_data import series, volume
from tests.conftest import FRONTEND_ORIGIN, CommandCounter, FailPoints, RunningApp, StartApp
from tests.images import b64, image_bytes
from tests.service_process import run_command, service_env

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1)]), series(2, "Berserk"), series(3, "Monster")]
IMAGE = {"image": b64(image_bytes("PNG", (64, 48)))}
PASSWORD = "correct horse"
DELETED = {"data": "Account deleted", "code": 200}
_names = itertools.count()


async def full_user(running: RunningApp, username: str | None = None) -> tuple[ApiClient, dict[str, Any]]:
    """A user with statuses, ratings of series 1 and 2, a collection item and an avatar."""
    api = running.client()
    user = await api.sign_up(username or f"reader{next(_names)}")
    for series_id, rating in ((1, 8), (2, 4.5)):
        assert (await api.post(f"/user/reading-status/add/{series_id}", STATUS)).status == 200
        assert (await api.post(f"/user/series-rating/add/{series_id}", {"rating": rating})).status == 200
    assert (await api.post("/user/collection/add/11", {"price": 7.99})).status == 200
    assert (await api.post(f"/user/update-image/{user['id']}", IMAGE)).status == 200
    return api, user


async def delete_account(api: ApiClient, password: str = PASSWORD, **kwargs: Any) -> Reply:
    return await api.delete("/user/account", json_body={"password": password}, **kwargs)


async def assert_gone(db: AsyncDatabase, user: dict[str, Any]) -> None:
    assert await db.users.count_documents({"_id": user["id"]}) == 0
    assert await db.usernames.count_documents({"user_id": user["id"]}) == 0
    assert await AvatarStore(db, UserStore(db)).count_files(user["id"]) == 0
    assert await db["avatars.chunks"].count_documents({}) == await db["avatars.chunks"].count_documents(
        {"files_id": {"$in": [f["_id"] async for f in db["avatars.files"].find({}, {"_id": 1})]}})
    assert await RatingStore(db).recount() == []  # every aggregate agrees with the ratings left
    assert await db.changes.count_documents({"user_id": user["id"]}) == 0
    assert await db.removals.count_documents({"_id": user["id"]}) == 0


async def test_deleting_the_account_removes_everything_and_keeps_aggregates_exact(
    running: RunningApp, db: AsyncDatabase, catalog: None
) -> None:
    api, alice = await full_user(running, "alice")
    bob_api, _ = await full_user(running, "bob")
    assert (await bob_api.post("/user/series-rating/update/1", {"rating": 6})).status == 200
    files_before = await AvatarStore(db, UserStore(db)).count_files()

    reply = await delete_account(api)
    assert (reply.status, reply.body) == (200, DELETED)
    assert any(c.startswith("refreshToken=") for c in reply.set_cookies)  # cleared
    await assert_gone(db, alice)
    assert await AvatarStore(db, UserStore(db)).count_files() == files_before - 2  # alice's two sizes; bob's stay
    first = await db.series.find_one({"_id": 1})
    assert (first["rating_count"], first["rating_half_points"]) == (1, 12)  # bob's 6 alone
    second = await db.series.find_one({"_id": 2})
    assert (second["rating_count"], second["rating_half_points"]) == (1, 9)
    assert (await api.get("/auth/me")).status == 401
    assert (await running.client().login("alice")).status == 401
    assert (await bob_api.get("/auth/me")).status == 200
    assert (await running.client().get(f"/user/avatar/{alice['id']}/scaled")).status == 404
    # The name is free again, for a new account that starts empty.
    new = running.client()
    newcomer = await new.sign_up("Alice")
    assert newcomer["id"] != alice["id"] and newcomer["profile_image"] is None
    assert (await new.get("/user/reading-history")).body["max"] == 0


async def test_every_session_of_the_deleted_user_ends(running: RunningApp, db: AsyncDatabase, catalog: None) -> None:
    api, _ = await full_user(running, "alice")
    phone = running.client()
    assert (await phone.login("alice")).status == 200
    assert (await delete_account(api)).status == 200
    assert (await phone.get("/auth/me")).status == 401
    assert (await phone.get("/user/reading-history")).status == 401


async def test_a_wrong_password_deletes_nothing(running: RunningApp, db: AsyncDatabase, catalog: None) -> None:
    api, alice = await full_user(running, "alice")
    reply = await delete_account(api, "not my password")
    assert (reply.status, reply.body) == (401, {"data": "Invalid credentials", "code": 401})
    assert await db.users.count_documents({"_id": alice["id"]}) == 1
    assert await AvatarStore(db, UserStore(db)).count_files(alice["id"]) == 2
    assert (await api.get("/auth/me")).status == 200


async def test_wrong_passwords_count_against_the_login_limit(start_app: StartApp, db: AsyncDatabase) -> None:
    running = await start_app(login_failures_per_15_min=2)
    api = running.client()
    await api.sign_up("alice")
    for _ in range(2):
        assert (await delete_account(api, "guess")).status == 401
    # With an Idempotency-Key the answer is held while the write runs (web.idempotency): the
    # 429 keeps its Retry-After all the same.
    refused = await delete_account(api, headers={"Idempotency-Key": "delete-once"})
    assert refused.status == 429 and 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert (await delete_account(api)).status == 429
    assert await db.users.count_documents({}) == 1


@pytest.mark.parametrize("body", [None, {}, {"password": 12345678}, {"password": PASSWORD, "all": True}])
async def test_a_malformed_confirmation_is_400(api: ApiClient, db: AsyncDatabase, body: Any) -> None:
    await api.sign_up("alice")
    assert (await api.delete("/user/account", json_body=body)).status == 400
    assert await db.users.count_documents({}) == 1


async def test_account_deletion_needs_a_session_and_the_own_origin(api: ApiClient, db: AsyncDatabase) -> None:
    assert (await delete_account(api)).status == 401
    await api.sign_up("alice")
    reply = await delete_account(api, headers={"Origin": "https://evil.test"})
    assert (reply.status, reply.body["data"]) == (403, "Forbidden")
    assert await db.users.count_documents({}) == 1
    assert (await delete_account(api, headers={"Origin": FRONTEND_ORIGIN})).status == 200


async def test_an_admin_deletes_any_account_without_a_password(
    running: RunningApp, db: AsyncDatabase, catalog: None
) -> None:
    admin_api, admin = await full_user(running, "admin")
    await db.users.update_one({"_id": admin["id"]}, {"$set": {"roles": ["admin"]}})
    bob_api, bob = await full_user(running, "bob")
    reply = await admin_api.delete(f"/admin-users/account/{bob['id']}")
    assert (reply.status, reply.body) == (200, DELETED)
    assert not any(c.startswith("refreshToken=") for c in reply.set_cookies)  # the admin stays signed in
    await assert_gone(db, bob)
    assert (await bob_api.get("/auth/me")).status == 401
    assert (await admin_api.get("/auth/me")).status == 200
    again = await admin_api.delete(f"/admin-users/account/{bob['id']}")
    assert (again.status, again.body) == (404, {"data": "User not found", "code": 404})
    assert (await admin_api.delete("/admin-users/account/not-an-id")).status == 404
    assert (await admin_api.delete("/admin-users/account/")).status == 400


async def test_only_edit_users_may_delete_others(running: RunningApp, db: AsyncDatabase, catalog: None) -> None:
    alice_api, _ = await full_user(running, "alice")
    _, bob = await full_user(running, "bob")
    reply = await alice_api.delete(f"/admin-users/account/{bob['id']}")
    assert (reply.status, reply.body["data"]) == (403, "Forbidden")
    assert await db.users.count_documents({"_id": bob["id"]}) == 1
    assert (await running.client().delete(f"/admin-users/account/{bob['id']}")).status == 401


async def test_a_rating_changed_during_the_deletion_never_skews_the_aggregates(
    running: RunningApp, db: AsyncDatabase, catalog: None
) -> None:
    api, alice = await full_user(running, "alice")
    other = running.client()
    assert (await other.login("alice")).status == 200
    replies = await asyncio.gather(delete_account(api), *(
        other.post("/user/series-rating/update/1", {"rating": r}) for r in (1, 2, 3, 9, 10)),
        other.post("/user/series-rating/add/3", {"rating": 7}))
    assert replies[0].status == 200
    assert all(r.status in (200, 401, 404) for r in replies[1:]), [r.status for r in replies]
    await assert_gone(db, alice)


@pytest.mark.parametrize("path, body", [("/user/reading-status/add/1", STATUS),
                                        ("/user/series-rating/add/1", {"rating": 7}),
                                        ("/user/collection/add/11", {})])
async def test_an_add_whose_account_is_deleted_after_its_session_was_read_is_401_not_409(
    running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None, monkeypatch: pytest.MonkeyPatch,
    path: str, body: dict[str, Any]
) -> None:
    # The race the test above runs, made certain: the account goes between the session read
    # and the add's conditional write, which then matches nothing. "Already exists" was the answer.
    await api.sign_up("alice")
    push_unique = EmbeddedList.push_unique

    async def deleted_first(self: EmbeddedList, user_id: str, *args: Any, **kwargs: Any) -> bool:
        await db.users.delete_one({"_id": user_id})
        return await push_unique(self, user_id, *args, **kwargs)

    monkeypatch.setattr(EmbeddedList, "push_unique", deleted_first)
    reply = await api.post(path, body)
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})
    assert await db.series.find_one({"_id": 1, "rating_count": {"$ne": 0}}) is None  # nothing moved


async def test_a_removal_stopped_at_any_command_is_finished_by_deleting_again_or_sweeping(
    running: RunningApp, db: AsyncDatabase, catalog: None, commands: CommandCounter, fail_points: FailPoints
) -> None:
    _, witness = await full_user(running)  # another user's ratings and files, which must survive
    api, user = await full_user(running)
    commands.reset()
    assert (await delete_account(api)).status == 200
    sequence = list(commands.log)
    assert "commitTransaction" in sequence and sequence.count("delete") >= 4, sequence
    for index, command in enumerate(sequence):
        api, user = await full_user(running)
        await fail_points.fail([command], {"skip": sequence[:index].count(command), "times": 2}, errorCode=10107)
        try:
            reply = await delete_account(api)
        finally:
            await fail_points.off()
        assert reply.status in (200, 503), (command, index, reply.status, reply.body)
        if await db.users.count_documents({"_id": user["id"]}):
            # Stopped before the transaction committed: the account still works; deleting again finishes.
            assert reply.status == 503, (command, index)
            assert (await api.get("/auth/me")).status == 200
            assert await RatingStore(db).recount() == [], (command, index)
            assert (await delete_account(api)).status == 200
        else:
            await AccountRemoval(db, AvatarStore(db, UserStore(db))).sweep()
        await assert_gone(db, user)
    assert await db.users.count_documents({"_id": witness["id"]}) == 1
    assert await AvatarStore(db, UserStore(db)).count_files(witness["id"]) == 2


async def test_a_write_concern_error_on_the_aggregates_answers_503_and_deleting_again_finishes(
    running: RunningApp, db: AsyncDatabase, catalog: None, commands: CommandCounter, fail_points: FailPoints
) -> None:
    # The aggregates move in one bulk write, whose errors pymongo gathers into a BulkWriteError:
    # a write concern error there answered 500.
    api, user = await full_user(running)
    commands.reset()
    assert (await delete_account(api)).status == 200
    sent = commands.targets()
    at = sent.index(("update", "series"))
    api, user = await full_user(running)
    await fail_points.fail(["update"], {"skip": [name for name, _ in sent[:at]].count("update"), "times": 1},
                           writeConcernError={"code": 64, "errmsg": "waiting for replication timed out"})
    try:
        reply = await delete_account(api)
    finally:
        await fail_points.off()
    assert (reply.status, reply.body) == (503, {"data": "Service unavailable", "code": 503})
    # The transaction was abandoned whole: the account works, its ratings still count.
    assert (await api.get("/auth/me")).status == 200
    assert await RatingStore(db).recount() == []
    assert (await db.series.find_one({"_id": 1}))["rating_count"] == 1
    assert (await delete_account(api)).status == 200
    await assert_gone(db, user)


async def test_an_account_with_many_changes_is_deleted_and_a_stopped_deletion_of_them_is_swept(
    running: RunningApp, db: AsyncDatabase, catalog: None, fail_points: FailPoints, commands: CommandCounter
) -> None:
    """The changes go after the transaction, a range of numbers at a time: the account of a
    reader with 2,500 changes (three ranges) goes whole; when deleting them stops midway, the
    note the transaction left makes the sweep finish it."""
    whole: list[tuple[str, Any]] = []  # the commands of the first deletion
    for attempt in ("whole", "stopped"):
        api, user = await full_user(running, f"many{attempt}")
        # What 2,500 writes would have left (written directly: the routes would take minutes).
        counter = (await db.users.find_one({"_id": user["id"]}))["change_seq"]
        await db.changes.insert_many([{"user_id": user["id"], "seq": counter + n, "kind": "rating", "id": "1",
                                       "op": "delete", "at": utc_now(), "expires": utc_now(), "entry": None}
                                      for n in range(1, 2501)])
        await db.users.update_one({"_id": user["id"]}, {"$inc": {"change_seq": 2500}})
        if attempt == "stopped":
            # The second range's delete fails: the account is gone, its later changes are not.
            second_range = [at for at, sent in enumerate(whole) if sent == ("delete", "changes")][1]
            skip = [name for name, _ in whole[:second_range]].count("delete")
            await fail_points.fail(["delete"], {"skip": skip, "times": 1}, errorCode=10107)
        commands.reset()
        try:
            reply = await delete_account(api)
        finally:
            await fail_points.off()
        if attempt == "whole":
            assert reply.status == 200
            whole = commands.targets()
            assert whole.count(("delete", "changes")) == 3  # the numbers up to 1,000, 2,000, 3,000
            await assert_gone(db, user)
            continue
        assert reply.status == 503
        assert await db.users.count_documents({"_id": user["id"]}) == 0
        assert await db.changes.count_documents({"user_id": user["id"]}) > 0
        assert await db.removals.count_documents({"_id": user["id"]}) == 1
        report = await AccountRemoval(db, AvatarStore(db, UserStore(db))).sweep()
        assert report.changes_of == 1
        await assert_gone(db, user)


async def test_sweep_deletes_only_the_files_of_users_that_are_gone(
    running: RunningApp, db: AsyncDatabase, catalog: None
) -> None:
    _, alice = await full_user(running, "alice")
    _, bob = await full_user(running, "bob")
    # What a removal that stopped right after its transaction leaves: the files, without their user.
    await db.users.delete_one({"_id": bob["id"]})
    report = await AccountRemoval(db, AvatarStore(db, UserStore(db))).sweep()
    assert (report.owners, report.files) == (1, 2)
    assert await AvatarStore(db, UserStore(db)).count_files(bob["id"]) == 0
    assert await AvatarStore(db, UserStore(db)).count_files(alice["id"]) == 2
    again = await AccountRemoval(db, AvatarStore(db, UserStore(db))).sweep()
    assert (again.owners, again.files) == (0, 0)


def file_id_made(ago: timedelta) -> ObjectId:
    """A file id as an upload that began `ago` would have made (the time is all that counts)."""
    return ObjectId.from_datetime(datetime.now(UTC) - ago)


async def orphan_chunks(db: AsyncDatabase, files_id: ObjectId, count: int = 1) -> None:
    """What an upload whose process died before its file document leaves."""
    await db["avatars.chunks"].insert_many([{"files_id": files_id, "n": n, "data": b"x"} for n in range(count)])


async def test_the_sweep_command_finishes_a_removal_and_an_unfinished_upload(
    running: RunningApp, db: AsyncDatabase, mongo_uri: str, tmp_path: Path, catalog: None
) -> None:
    _, bob = await full_user(running, "bob")
    await db.users.delete_one({"_id": bob["id"]})
    await orphan_chunks(db, file_id_made(timedelta(hours=2)), count=2)
    env = service_env(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name)
    first = await asyncio.to_thread(run_command, ["sweep"], env)
    assert (first.returncode, first.stdout.strip()) == (
        0, "sweep: deleted 2 avatar files of 1 deleted users and 2 avatar chunks of unfinished uploads"), first.stderr
    assert await AvatarStore(db, UserStore(db)).count_files() == 0
    assert await db["avatars.chunks"].count_documents({}) == 0
    second = await asyncio.to_thread(run_command, ["sweep"], env)
    assert second.stdout.strip() == "sweep: nothing left behind by deleted accounts or unfinished uploads"


async def test_sweep_deletes_old_chunks_without_a_file_and_nothing_else(
    running: RunningApp, db: AsyncDatabase, catalog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of two chunks, so that an orphan spans pages and files that have their document
    # share pages with orphans.
    monkeypatch.setattr(avatars, "_ORPHAN_PAGE", 2)
    _, alice = await full_user(running, "alice")
    alice_chunks = await db["avatars.chunks"].count_documents({})
    assert alice_chunks >= 2
    old = timedelta(hours=2)
    await orphan_chunks(db, file_id_made(old), count=3)
    # An old file that has its document: a version of an image uploaded two hours ago.
    kept = file_id_made(old + timedelta(minutes=1))
    await db["avatars.files"].insert_one({"_id": kept, "length": 2, "chunkSize": 1, "metadata": {}})
    await orphan_chunks(db, kept, count=2)
    await orphan_chunks(db, file_id_made(old - timedelta(minutes=1)))
    # An upload under way: its file document is not written yet.
    under_way = file_id_made(timedelta(minutes=1))
    await orphan_chunks(db, under_way)
    before = {c["_id"] async for c in db["avatars.chunks"].find({"files_id": {"$in": [kept, under_way]}})}

    report = await AccountRemoval(db, AvatarStore(db, UserStore(db))).sweep()
    assert (report.owners, report.files, report.orphan_chunks) == (0, 0, 4)
    left = {c["_id"] async for c in db["avatars.chunks"].find({"files_id": {"$in": [kept, under_way]}})}
    assert left == before
    assert await db["avatars.chunks"].count_documents({}) == alice_chunks + 3
    assert (await AvatarStore(db, UserStore(db)).current(alice["id"])) is not None
    assert (await AccountRemoval(db, AvatarStore(db, UserStore(db))).sweep()).orphan_chunks == 0
