"""Session lifetimes and the cost of authentication in database round trips."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.conftest import CommandCounter, RunningApp

pytestmark = pytest.mark.asyncio


async def age_session(db: AsyncDatabase, username: str, *, created: timedelta, last_seen: timedelta) -> None:
    now = datetime.now(timezone.utc)
    await db.users.update_one(
        {"slug": username},
        {"$set": {"sessions.0.created": now - created, "sessions.0.last_seen": now - last_seen}},
    )


async def test_a_session_idle_for_over_30_days_is_refused_and_removed(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("alice")
    await age_session(db, "alice", created=timedelta(days=40), last_seen=timedelta(days=30, minutes=1))
    reply = await api.get("/auth/me")
    assert (reply.status, reply.body["data"]) == (401, "Unauthorized")
    assert (await db.users.find_one({"slug": "alice"}))["sessions"] == []


async def test_a_session_older_than_90_days_is_refused_even_if_active(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("alice")
    await age_session(db, "alice", created=timedelta(days=90, minutes=1), last_seen=timedelta(minutes=5))
    assert (await api.get("/auth/me")).status == 401


async def test_a_session_idle_for_29_days_still_works(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("alice")
    await age_session(db, "alice", created=timedelta(days=60), last_seen=timedelta(days=29))
    assert (await api.get("/auth/me")).status == 200


async def test_use_after_an_hour_records_last_seen_and_renews_the_cookie(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("alice")
    await age_session(db, "alice", created=timedelta(days=2), last_seen=timedelta(hours=2))
    reply = await api.get("/auth/me")
    assert reply.status == 200
    assert any(c.startswith("refreshToken=") for c in reply.set_cookies)
    session = (await db.users.find_one({"slug": "alice"}))["sessions"][0]
    assert datetime.now(timezone.utc) - session["last_seen"] < timedelta(minutes=1)


async def test_renewed_cookie_never_outlives_the_absolute_lifetime(api: ApiClient, db: AsyncDatabase) -> None:
    await api.sign_up("alice")
    await age_session(db, "alice", created=timedelta(days=80), last_seen=timedelta(hours=2))
    reply = await api.get("/auth/me")
    header = next(c for c in reply.set_cookies if c.startswith("refreshToken="))
    expires = datetime.strptime(header.split("expires=")[1].split(";")[0], "%a, %d %b %Y %H:%M:%S GMT")
    remaining = expires.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)
    assert timedelta(days=9) < remaining <= timedelta(days=10)


async def test_me_costs_exactly_one_round_trip(api: ApiClient, commands: CommandCounter) -> None:
    await api.sign_up("alice")
    commands.reset()
    assert (await api.get("/auth/me")).status == 200
    assert commands.total == 1, commands.log


async def test_reads_within_the_hour_do_not_write(api: ApiClient, commands: CommandCounter) -> None:
    await api.sign_up("alice")
    commands.reset()
    for _ in range(5):
        assert (await api.get("/auth/me")).status == 200
    assert commands.commands == {"find": 5}, commands.log


async def test_save_settings_costs_the_session_read_and_one_transaction(api: ApiClient,
                                                                         commands: CommandCounter) -> None:
    """The write and its change (storage.changes), committed together."""
    user = await api.sign_up("alice")
    commands.reset()
    assert (await api.post(f"/users/{user['id']}/save-settings", {"theme": "dark"})).status == 200
    assert commands.log[1:] == ["findAndModify", "insert", "commitTransaction"], commands.log


async def test_a_wrong_secret_answers_401_and_never_brings_a_whole_list(api: ApiClient, running: RunningApp,
                                                                     commands: CommandCounter) -> None:
    """The session query finds a small read by `_id` alone (the projection brings the session or
    none), and keeps the session's condition in its filter when it would bring a whole list: a
    forged cookie for a known user id gets its 401 without the database sending that list."""
    user = await api.sign_up("alice")
    assert (await api.post("/user/reading-history", {"limit": 5})).status == 200  # the real session works
    forged = running.client()
    for path, condition in (("/user/reading-history", True), ("/user/collection?client=1", True),
                            ("/auth/me", False), ("/user/reading-status/id/1", False)):
        forged.cookies["refreshToken"] = f"{user['id']}.{'A' * 43}"  # each 401 clears it
        commands.reset()
        assert (await forged.get(path)).status == 401, path
        sent = commands.sent[0]
        query = sent["filter"] if "filter" in sent else sent["pipeline"][0]["$match"]
        assert ("sessions.token_hash" in query) is condition, (path, query)
        assert query["_id"] == user["id"]
