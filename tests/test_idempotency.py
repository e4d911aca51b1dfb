"""Idempotency-Key: a retried write answers what the first answered and writes nothing again,
whatever happened to the first answer (a 503 after the write, a lost connection)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from auth.clock import utc_now
from handlers.application import all_routes
from storage.idempotency import IdempotencyStore, SavedAnswer
from tests.api_client import ApiClient, keyed
from tests.api_tour import CATALOG, api_tour
from tests.bodies import STATUS
from tests.catalog_data import load_catalog
from tests.conftest import FailPoints, RunningApp
from tests.images import data_url, image_bytes
from tests.mal_files import mal_file, manga
from web import idempotency
from web.idempotency import INVALID_KEY, KEY_REUSED, fingerprint, is_idempotent, key_of

ADDED = {"data": "Reading status added successfully", "code": 200}
WRITE_CONCERN_ERROR = {"writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}}


async def statuses_of(db: AsyncDatabase) -> list[int]:
    user = await db.users.find_one({"username": "alice"}, {"statuses": 1})
    return [status["series_id"] for status in user.get("statuses") or []]


def test_a_key_is_printable_ascii_without_spaces_up_to_255_characters() -> None:
    assert key_of(None) is None
    assert key_of("0b5d6a1e-3f7c-4c55-9a3e-0d6c2a9b8f10") == "0b5d6a1e-3f7c-4c55-9a3e-0d6c2a9b8f10"
    assert key_of("k" * 255) == "k" * 255
    for bad in ("", "k" * 256, "with space", "caf\u00e9", "tab\there"):
        with pytest.raises(Exception, match=INVALID_KEY):
            key_of(bad)


def test_the_fingerprint_tells_method_path_query_and_body_apart_and_not_how_the_body_was_cut() -> None:
    secret = b"s" * 32
    base = fingerprint(secret, "POST", "/user/reading-status/add/1", [b'{"a":', b"1}"])
    assert base == fingerprint(secret, "POST", "/user/reading-status/add/1", [b'{"a":1}'])
    for other in (fingerprint(secret, "DELETE", "/user/reading-status/add/1", [b'{"a":1}']),
                  fingerprint(secret, "POST", "/user/reading-status/add/2", [b'{"a":1}']),
                  fingerprint(secret, "POST", "/user/reading-status/add/1?x=1", [b'{"a":1}']),
                  fingerprint(secret, "POST", "/user/reading-status/add/1", [b'{"a":2}']),
                  fingerprint(b"t" * 32, "POST", "/user/reading-status/add/1", [b'{"a":1}'])):
        assert other != base


@pytest.mark.asyncio
async def test_a_retry_after_a_503_whose_write_took_effect_answers_the_first_success(
    api: ApiClient, db: AsyncDatabase, alice: dict, fail_points: FailPoints
) -> None:
    # The commit is applied and its acknowledgement lost: the client sees 503 and retries.
    await fail_points.fail(["commitTransaction"], {"times": 1}, **WRITE_CONCERN_ERROR)
    first = await api.post("/user/reading-status/add/1", STATUS, headers=keyed("k-1"))
    await fail_points.off()
    assert first.status == 503
    assert await statuses_of(db) == [1]
    retry = await api.post("/user/reading-status/add/1", STATUS, headers=keyed("k-1"))
    assert (retry.status, retry.body, retry.headers.get("Idempotent-Replayed")) == (200, ADDED, "true")
    assert await statuses_of(db) == [1]
    # Without a key the documented answer stands: a second add is a conflict.
    again = await api.post("/user/reading-status/add/1", STATUS)
    assert again.status == 409


@pytest.mark.asyncio
async def test_a_retry_of_a_write_that_did_not_happen_writes_it(
    api: ApiClient, db: AsyncDatabase, alice: dict, fail_points: FailPoints
) -> None:
    # The commit is refused (shutting down), and so is the driver's one retry of it.
    await fail_points.fail(["commitTransaction"], {"times": 2}, errorCode=91, errorLabels=[])
    first = await api.post("/user/reading-status/add/1", STATUS, headers=keyed("k-2"))
    await fail_points.off()
    assert first.status == 503 and await statuses_of(db) == []
    retry = await api.post("/user/reading-status/add/1", STATUS, headers=keyed("k-2"))
    assert (retry.status, retry.body, retry.headers.get("Idempotent-Replayed")) == (200, ADDED, None)
    assert await statuses_of(db) == [1]


@pytest.mark.asyncio
async def test_a_transaction_that_fails_once_is_run_again_and_the_client_never_sees_it(
    api: ApiClient, db: AsyncDatabase, alice: dict, fail_points: FailPoints
) -> None:
    await fail_points.fail(["commitTransaction"], {"times": 2}, closeConnection=True)
    first = await api.post("/user/reading-status/add/1", STATUS, headers=keyed("k-2b"))
    await fail_points.off()
    assert (first.status, first.body) == (200, ADDED)
    assert await statuses_of(db) == [1]


@pytest.mark.asyncio
async def test_the_same_key_with_another_request_is_422_and_changes_nothing(
    api: ApiClient, db: AsyncDatabase, alice: dict
) -> None:
    assert (await api.post("/user/reading-status/add/1", STATUS, headers=keyed("k-3"))).body == ADDED
    for path, body in (("/user/reading-status/add/2", STATUS), ("/user/reading-status/add/1", {**STATUS, "progress": 9})):
        reply = await api.post(path, body, headers=keyed("k-3"))
        assert (reply.status, reply.body) == (422, {"data": KEY_REUSED, "code": 422})
    assert await statuses_of(db) == [1]
    stored = await db.users.find_one({"username": "alice"}, {"statuses": 1})
    assert stored["statuses"][0]["progress"] == STATUS["progress"]


@pytest.mark.asyncio
async def test_an_invalid_key_is_400_and_keys_belong_to_their_user(
    api: ApiClient, running: RunningApp, db: AsyncDatabase, alice: dict
) -> None:
    reply = await api.post("/user/reading-status/add/1", STATUS, headers=keyed("x" * 256))
    assert (reply.status, reply.body["data"]) == (400, INVALID_KEY)
    assert [error["field"] for error in reply.body["errors"]] == ["Idempotency-Key"]  # the header it names
    anonymous = await running.client().post("/user/reading-status/add/1", STATUS, headers=keyed("x" * 256))
    assert anonymous.status == 401  # authentication first, as without the header
    assert await statuses_of(db) == []
    assert (await api.post("/user/reading-status/add/1", STATUS, headers=keyed("shared"))).body == ADDED
    bob = running.client()
    await bob.sign_up("bob")
    mine = await bob.post("/user/reading-status/add/1", STATUS, headers=keyed("shared"))
    assert (mine.status, mine.headers.get("Idempotent-Replayed")) == (200, None)  # bob's own add, not alice's answer
    bob_doc = await db.users.find_one({"username": "bob"}, {"statuses": 1})
    assert [s["series_id"] for s in bob_doc["statuses"]] == [1]


@pytest.mark.asyncio
async def test_an_error_answer_is_replayed_and_a_later_change_does_not_alter_it(
    api: ApiClient, db: AsyncDatabase, alice: dict
) -> None:
    missing = await api.delete("/user/reading-status/delete/1", headers=keyed("k-4"))
    assert missing.status == 404
    await api.post("/user/reading-status/add/1", STATUS)
    replayed = await api.delete("/user/reading-status/delete/1", headers=keyed("k-4"))
    assert (replayed.status, replayed.body, replayed.headers.get("Idempotent-Replayed")) == \
        (404, missing.body, "true")
    assert await statuses_of(db) == [1]  # the replay deleted nothing


@pytest.mark.asyncio
async def test_concurrent_attempts_with_one_key_write_once_and_all_answer_the_same(
    api: ApiClient, db: AsyncDatabase, alice: dict
) -> None:
    replies = await asyncio.gather(*(api.post("/user/series-rating/add/1", {"rating": 8}, headers=keyed("k-5"))
                                     for _ in range(6)))
    assert {(r.status, r.body["data"]) for r in replies} == {(200, "Rating added successfully")}
    series_doc = await db.series.find_one({"_id": 1})
    assert (series_doc["rating_count"], series_doc["rating_half_points"]) == (1, 16)
    assert await db.idempotency.count_documents({}) == 1


@pytest.mark.asyncio
async def test_a_rating_retried_after_a_lost_acknowledgement_is_counted_once(
    api: ApiClient, db: AsyncDatabase, alice: dict, fail_points: FailPoints
) -> None:
    await fail_points.fail(["commitTransaction"], {"times": 1}, **WRITE_CONCERN_ERROR)
    assert (await api.post("/user/series-rating/add/1", {"rating": 8}, headers=keyed("k-6"))).status == 503
    await fail_points.off()
    assert (await api.post("/user/series-rating/add/1", {"rating": 8}, headers=keyed("k-6"))).status == 200
    series_doc = await db.series.find_one({"_id": 1})
    assert (series_doc["rating_count"], series_doc["rating_half_points"]) == (1, 16)


@pytest.mark.asyncio
async def test_a_retried_logout_answers_its_first_answer_though_the_session_is_gone(
    api: ApiClient, running: RunningApp, alice: dict
) -> None:
    cookie = api.cookie_header()
    first = await api.post("/auth/logout", {}, headers=keyed("k-7"))
    assert first.status == 200
    retry = await running.client().post("/auth/logout", {}, headers={**keyed("k-7"), "Cookie": cookie})
    assert (retry.status, retry.body, retry.headers.get("Idempotent-Replayed")) == (200, first.body, "true")
    # Another key, or no key, for the ended session: 401 as ever.
    other = await running.client().post("/auth/logout", {}, headers={**keyed("k-8"), "Cookie": cookie})
    assert other.status == 401
    # A forged secret for alice's id learns nothing of her keys, not even that one is used.
    forged = f"refreshToken={alice['id']}.{'A' * 43}"
    for body in ({}, {"all": True}):
        guess = await running.client().post("/auth/logout", body, headers={**keyed("k-7"), "Cookie": forged})
        assert guess.status == 401
    assert (await running.client().get("/auth/me", headers={"Cookie": cookie})).status == 401


@pytest.mark.asyncio
async def test_a_retried_registration_answers_201_not_409(running: RunningApp, db: AsyncDatabase) -> None:
    body = {"username": "carol", "password": "correct horse"}
    first = await running.client().post("/auth/register", body, headers=keyed("k-9"))
    retry = await running.client().post("/auth/register", body, headers=keyed("k-9"))
    assert (first.status, retry.status, retry.headers.get("Idempotent-Replayed")) == (201, 201, "true")
    assert await db.users.count_documents({}) == 1
    taken = await running.client().post("/auth/register", body)
    assert taken.status == 409


@pytest.mark.asyncio
async def test_a_retried_avatar_upload_and_account_deletion_answer_their_first_answers(
    api: ApiClient, running: RunningApp, db: AsyncDatabase, alice: dict
) -> None:
    image = {"image": data_url(image_bytes("PNG", (64, 64)), "image/png")}
    path = f"/user/update-image/{alice['id']}"
    first = await api.post(path, image, headers=keyed("k-10"))
    retry = await api.post(path, image, headers=keyed("k-10"))
    assert (first.status, retry.status, retry.headers.get("Idempotent-Replayed")) == (200, 200, "true")
    assert await db["avatars.files"].count_documents({}) == 2  # one upload: its two resolutions
    cookie = api.cookie_header()
    gone = await api.delete("/user/account", json_body={"password": "correct horse"}, headers=keyed("k-11"))
    assert gone.status == 200
    again = await running.client().delete("/user/account", json_body={"password": "correct horse"},
                                          headers={**keyed("k-11"), "Cookie": cookie})
    assert (again.status, again.body) == (200, gone.body)
    assert await db.users.count_documents({}) == 0


@pytest.mark.asyncio
async def test_a_retried_mal_import_imports_once(api: ApiClient, db: AsyncDatabase, alice: dict) -> None:
    xml = mal_file([manga(manga_mangadb_id=1, manga_title="Yotsuba to!")])
    headers = {**keyed("k-12"), "Content-Type": "application/xml"}
    first = await api.request("POST", "/user/import/mal?mode=apply", body=xml, headers=headers)
    retry = await api.request("POST", "/user/import/mal?mode=apply", body=xml, headers=headers)
    assert (first.status, retry.status, retry.body) == (200, 200, first.body)
    assert await db.imports.count_documents({}) == 1
    assert await statuses_of(db) == [1]


@pytest.mark.asyncio
async def test_a_write_whose_answer_is_too_large_to_keep_is_refused_whole(
    api: ApiClient, db: AsyncDatabase, alice: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "MAX_SAVED_ANSWER_BYTES", 100)  # a MAL report passes 100 bytes
    xml = mal_file([manga(manga_mangadb_id=1, manga_title="Yotsuba to!")])
    headers = {**keyed("k-13"), "Content-Type": "application/xml"}
    reply = await api.request("POST", "/user/import/mal?mode=apply", body=xml, headers=headers)
    assert (reply.status, reply.body["data"]) == (413, idempotency.ANSWER_TOO_LARGE)
    assert await statuses_of(db) == [] and await db.imports.count_documents({}) == 0
    assert (await api.request("POST", "/user/import/mal?mode=apply", body=xml, headers=headers)).status == 413
    assert (await api.request("POST", "/user/import/mal?mode=apply", body=xml,
                              headers={"Content-Type": "application/xml"})).status == 200


@pytest.mark.asyncio
async def test_an_answer_is_kept_24_hours(db: AsyncDatabase) -> None:
    store = IdempotencyStore(db)
    made = utc_now()
    await store.save("u1", "k", SavedAnswer("print", 200, "{}", None, made))
    assert (await store.find("u1", "k", made + timedelta(hours=23))) is not None
    assert (await store.find("u1", "k", made + timedelta(hours=24, seconds=1))) is None
    assert (await store.find("u2", "k", made)) is None
    # A key whose answer expired can be used again.
    later = made + timedelta(hours=25)
    await store.save("u1", "k", SavedAnswer("other", 201, "{}", None, later))
    assert (await store.find("u1", "k", later)).status == 201


def writes_of_the_route_table() -> list[tuple[str, str, bool]]:
    """(method, route, idempotent) of every POST and DELETE."""
    return [(method, route.path, is_idempotent(getattr(route.handler, method.lower())))
            for route in all_routes() for method in route.handler.implemented_methods() if method in ("POST", "DELETE")]


def test_every_write_takes_a_key_but_login_and_the_list_queries() -> None:
    """A list query sent as POST writes nothing, and a login's answer holds a new session's cookie,
    which is not kept: each attempt signs in anew. A refresh writes nothing, and its answer is an
    access token, which is not kept either: each attempt gets a new one. A personal token is made
    anew by each attempt for the same reason: a saved answer would keep its secret."""
    plain = {(method, path) for method, path, idempotent in writes_of_the_route_table() if not idempotent}
    assert plain == {("POST", "/auth/login"), ("POST", "/auth/refresh"), ("POST", "/auth/tokens"),
                     ("POST", "/user/reading-history"),
                     ("POST", "/user/collection")}


@pytest.mark.asyncio
async def test_every_write_of_the_tour_sent_again_with_its_key_replays_its_answer(
    running: RunningApp, db: AsyncDatabase
) -> None:
    await load_catalog(db, CATALOG)
    idempotent = {(method, path) for method, path, idempotent in writes_of_the_route_table() if idempotent}
    keyed: list[tuple[str, str]] = []

    def retried(method: str, route: str) -> bool:
        if (method, route) in idempotent:
            keyed.append((method, route))
            return True
        return False

    await api_tour(running, db, retried=retried)
    assert set(keyed) == idempotent
    assert await db.idempotency.count_documents({}) == len(keyed)
