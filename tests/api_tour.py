"""A tour of the whole API: one successful request on every route, as a signed-in user, another
user and an administrator. Tests that must hold for every route (targeted queries, the answers'
shapes) walk it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient, Reply
from tests.bodies import DOCUMENTED_STATUS as STATUS
from tests.catalog_data import series, volume
from tests.conftest import RunningApp
from tests.images import b64, image_bytes
from tests.roles import make_admin

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1)]), series(2, "Berserk", volumes=[volume(21, 1)])]


async def api_tour(running: RunningApp, db: AsyncDatabase, *,
                   retried: Callable[[str, str], bool] | None = None) -> list[tuple[str, str, Reply]]:
    """Every route of the API, with a successful request each (and a failed login), on a
    database with `CATALOG` loaded. Returns (method, route template, reply) for each request.
    With `retried`, each request for which it says True carries an Idempotency-Key and is sent
    again with it (the second reply is not returned)."""
    alice, bob, admin = running.client(), running.client(), running.client()
    done: list[tuple[str, str, Reply]] = []

    async def call(api: ApiClient, method: str, path: str, route: str, body: Any = None, status: int = 200,
                   raw: bytes | None = None, content_type: str | None = None,
                   sent_headers: dict[str, str] | None = None) -> Any:
        keyed = retried is not None and retried(method, route)
        headers = {"Idempotency-Key": uuid.uuid4().hex} if keyed else {}
        headers.update(sent_headers or {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        cookies = dict(api.cookies)
        reply = await api.request(method, path, json_body=body, body=raw, headers=headers)
        assert reply.status == status, (method, path, reply.status, reply.body)
        if keyed:
            # As the first attempt sent it: with the cookies it had (a logout clears them).
            again = await running.client().request(
                method, path, json_body=body, body=raw,
                headers={**headers, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
            assert (again.status, again.body, again.headers.get("Idempotent-Replayed")) == \
                (reply.status, reply.body, "true"), (method, path, again.status, again.body)
        done.append((method, route, reply))
        return reply

    await call(alice, "POST", "/auth/register", "/auth/register", {"username": "alice", "password": "correct horse"}, 201)
    await call(bob, "POST", "/auth/register", "/auth/register", {"username": "bob", "password": "correct horse"}, 201)
    await call(admin, "POST", "/auth/register", "/auth/register", {"username": "root", "password": "correct horse"}, 201)
    await call(alice, "POST", "/auth/login", "/auth/login", {"username": "alice", "password": "wrong password"}, 401)
    me = (await call(alice, "POST", "/auth/login", "/auth/login", {"username": "alice", "password": "correct horse"})).body
    bob_id = (await call(bob, "POST", "/auth/login", "/auth/login",
                         {"username": "bob", "password": "correct horse"})).body["user"]["id"]
    await call(admin, "POST", "/auth/login", "/auth/login", {"username": "root", "password": "correct horse"})
    admin_id = admin.cookies["refreshToken"].partition(".")[0]
    await make_admin(db, admin_id)
    user_id = me["user"]["id"]
    png = b64(image_bytes("PNG", (32, 32)))
    await call(alice, "GET", "/auth/me", "/auth/me")
    await call(alice, "POST", "/auth/refresh", "/auth/refresh")
    await call(alice, "POST", f"/users/{user_id}/save-settings", "/users/{id}/save-settings", {"theme": "dark"})
    await call(alice, "POST", "/user/reading-status/add/1", "/user/reading-status/add/{id}", STATUS)
    await call(alice, "GET", "/user/reading-status/id/1", "/user/reading-status/id/{id}")
    await call(alice, "POST", "/user/reading-status/update/1", "/user/reading-status/update/{id}",
               {**STATUS, "score": 8, "reread": 1, "start": "2024-05", "end": "2024-06-30"})
    await call(alice, "GET", "/user/reading-history?search=yo&order=name-asc", "/user/reading-history")
    await call(alice, "GET", "/user/reading-history/stats/general?client=1", "/user/reading-history/stats/general")
    await call(alice, "POST", "/user/reading-history", "/user/reading-history", {"order": "update-desc"})
    await call(alice, "POST", "/user/series-rating/add/1", "/user/series-rating/add/{id}", {"rating": 7})
    await call(alice, "GET", "/user/series-rating/id/1", "/user/series-rating/id/{id}")
    await call(alice, "GET", "/user/series-rating/1", "/user/series-rating/{id}")
    await call(alice, "POST", "/user/series-rating/update/1", "/user/series-rating/update/{id}", {"rating": 8})
    item = (await call(alice, "POST", "/user/collection/add/11", "/user/collection/add/{id}",
                       {"price": 9.99, "date": "2024-01-01"})).body["item_id"]
    await call(alice, "POST", f"/user/collection/update/{item}", "/user/collection/update/{id}",
               {"price": 5, "date": "2024-01-01"})
    await call(alice, "GET", "/user/collection?client=1", "/user/collection")
    await call(alice, "POST", "/user/collection", "/user/collection", {"client": 1, "search": "yo"})
    await call(alice, "GET", "/user/collection/stats/general?client=1", "/user/collection/stats/general")
    # A GET that writes: as a page of the service's own origin sends it (web.same_origin); on, then off.
    for _ in range(2):
        await call(alice, "GET", "/volumes/toggle-collection/id/21?client=1", "/volumes/toggle-collection/id/{id}",
                   sent_headers={"Sec-Fetch-Site": "same-origin"})
    await call(alice, "POST", f"/user/update-image/{user_id}", "/user/update-image/{id}", {"image": png})
    await call(alice, "GET", f"/user/avatar/{user_id}/scaled", "/user/avatar/{id}/{res}")
    await call(alice, "HEAD", f"/user/avatar/{user_id}/high", "/user/avatar/{id}/{res}")
    await call(alice, "GET", "/user/me", "/user/me")
    await call(alice, "DELETE", f"/user/delete-image/{user_id}", "/user/delete-image/{id}")
    await call(admin, "POST", f"/admin-users/update-image/{bob_id}", "/admin-users/update-image/{id}", {"image": png})
    await call(admin, "DELETE", f"/admin-users/delete-image/{bob_id}", "/admin-users/delete-image/{id}")
    await call(admin, "POST", f"/users/{bob_id}/save-settings", "/users/{id}/save-settings", {"theme": "dark"})
    exported = (await call(alice, "GET", "/user/export", "/user/export")).body
    await call(alice, "POST", "/user/import", "/user/import", exported)  # a dry run
    mal_file = (await call(alice, "GET", "/user/export/mal", "/user/export/mal")).raw
    imported = await call(alice, "POST", "/user/import/mal?mode=apply", "/user/import/mal", raw=mal_file,
                          content_type="application/xml")
    await call(alice, "POST", f"/user/import/{imported.body['import_id']}/undo", "/user/import/{id}/undo")
    await call(alice, "GET", "/user/reading-status/id/1/history?limit=2", "/user/reading-status/id/{id}/history")
    await call(alice, "GET", "/user/changes?since=3&limit=2", "/user/changes")
    second = running.client()
    assert (await second.login("alice")).status == 200
    sessions = (await call(alice, "GET", "/auth/sessions", "/auth/sessions")).body["sessions"]
    other = next(s["id"] for s in sessions if not s["current"])
    await call(alice, "DELETE", f"/auth/sessions/{other}", "/auth/sessions/{id}")
    made = (await call(alice, "POST", "/auth/tokens", "/auth/tokens",
                       {"name": "Reading app", "scopes": ["read", "write"], "expires_in_days": 30}, 201)).body
    await call(alice, "GET", "/user/reading-history", "/user/reading-history",
               sent_headers={"Authorization": f"Bearer {made['token']}"})
    await call(alice, "GET", "/auth/tokens", "/auth/tokens")
    await call(alice, "DELETE", f"/auth/tokens/{made['id']}", "/auth/tokens/{id}")
    await call(alice, "POST", "/auth/change-password", "/auth/change-password",
               {"current_password": "correct horse", "new_password": "correct horse"})
    carol, dave = running.client(), running.client()
    carol_id = (await carol.sign_up("carol"))["id"]
    await dave.sign_up("dave")
    await call(admin, "DELETE", f"/admin-users/account/{carol_id}", "/admin-users/account/{id}")
    await call(dave, "DELETE", "/user/account", "/user/account", {"password": "correct horse"})
    await call(alice, "DELETE", f"/user/collection/delete/{item}", "/user/collection/delete/{id}")
    await call(alice, "DELETE", "/user/series-rating/delete/1", "/user/series-rating/delete/{id}")
    await call(alice, "DELETE", "/user/reading-status/delete/1", "/user/reading-status/delete/{id}")
    await call(alice, "GET", "/user/reading-stats?client=1", "/user/reading-stats")
    anyone = running.client()
    await call(anyone, "GET", "/users?order=name-asc&limit=2", "/users")
    await call(anyone, "GET", "/users/alice", "/users/{slug}")
    await call(anyone, "GET", "/users/alice/reading-history?order=name-asc", "/users/{slug}/reading-history")
    await call(alice, "POST", f"/users/{user_id}/save-settings", "/users/{id}/save-settings",
               {"collection-visibility": "public"})
    await call(anyone, "GET", "/users/alice/collection?client=1", "/users/{slug}/collection")
    await call(anyone, "GET", "/series?client=1&lang=English&search=yotsuba&filters=type:Manga", "/series")
    await call(anyone, "GET", "/series/quick-search?search=ber&limit=5", "/series/quick-search")
    await call(anyone, "GET", "/series/slug/series-1?lang=English", "/series/slug/{slug}")
    await call(alice, "GET", "/series/volumes/1?limit=10", "/series/volumes/{id}")
    await call(alice, "GET", "/volumes/slug/series-1-11", "/volumes/slug/{slug}")
    await call(alice, "GET", "/health", "/health")
    await call(alice, "GET", "/openapi.json", "/openapi.json")
    await call(bob, "POST", "/auth/logout", "/auth/logout")
    await call(alice, "POST", "/auth/logout", "/auth/logout", {"all": True})
    return done
