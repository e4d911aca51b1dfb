"""Hostile input on every route and field: each answer is a 4xx in the JSON shape (or a success,
where the value is a fair one, like `-0`), never a 5xx, and no operator object a client sends
ever reaches the database."""

from __future__ import annotations

import io
import json
import logging
import re
import struct
import zlib
from typing import Any
from urllib.parse import quote, unquote

import pytest
import pytest_asyncio
from bson import json_util
from PIL import Image
from pymongo.asynchronous.database import AsyncDatabase

from handlers.application import all_routes
from handlers.series_scope import CATALOG_ID, SeriesHandler
from tests.api_client import ApiClient, Reply
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series, volume
from tests.conftest import CommandCounter, RunningApp
from tests.images import b64, image_bytes
from tests.roles import make_admin

pytestmark = pytest.mark.asyncio

MARKER = "HOSTILE-MARKER-7f3a"
# Operator objects: refused by type, before anything is sent to the database.
OPERATOR_OBJECTS = [{"$ne": MARKER}, {"$gt": MARKER}, {"$where": MARKER}, {"$regex": MARKER},
                    {"$in": [MARKER]}, {"$expr": {"$eq": [MARKER, MARKER]}}, {"key": {"$ne": MARKER}}]
# Raw JSON texts of values that parse, but that no field should choke on.
ODD_VALUES = ["1e309", "-1e309", "18446744073709551616", "9223372036854775808", "-9223372036854775809",
              "-0", "-0.0", "1e-400", "0.1", "1.7976931348623157e308", '""', '"\\u0000"', '"a\\u0000b"',
              '"\\ud800"', '"' + "x" * 100_000 + '"', "[]", "{}", "true", "null", "[" * 500 + "]" * 500,
              '"\\ud835\\udfd9"', '" 1 "', '"1e3"', '"(a+)+$"', '".*"', '"$where"', '"\\\\"']
# Query-string values, percent-encoded as sent.
ODD_QUERY_VALUES = ["%00", "1%00", "1e309", "18446744073709551616", "-0", "%FF%FE", "x" * 10_000, "(a%2B)%2B%24",
                    "%5B", "%C3%A9", "%D9%A3", "1_0", "%20", ""]
# What a browser sends from the service's own pages: the proof a GET that writes asks for
# (web.same_origin), so that the sweep reaches that route's input and not only its guard.
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
ODD_IDS = ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "%00", "1%00", "-1", "0", "1e3", "99999999999999999999999",
           "%7B%22%24ne%22%3A1%7D", "%D9%A3", "a" * 5000, "%FF", "000000000000000000000000", "6b0a9c%00"]


@pytest_asyncio.fixture
async def alice(running: RunningApp, api: ApiClient, db: AsyncDatabase) -> dict[str, Any]:
    await load_catalog(db, [series(1, "Yotsuba to!", volumes=[volume(11, 1)]), series(2, "Berserk")])
    user = await api.sign_up("alice")
    assert (await api.post("/user/reading-status/add/1", STATUS)).status == 200
    assert (await api.post("/user/series-rating/add/1", {"rating": 7})).status == 200
    user["item_id"] = (await api.post("/user/collection/add/11")).body["item_id"]
    assert (await api.post(f"/user/update-image/{user['id']}", {"image": b64(image_bytes("PNG", (32, 32)))})).status == 200
    return user


def valid_requests(user: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None, dict[str, str] | None]]:
    """(method, path, body, query) that the service accepts, one per operation with input; the
    sweep then spoils one field at a time. Logout is left out: an accepted one ends the session."""
    png = b64(image_bytes("PNG", (32, 32)))
    return [
        ("POST", "/auth/register", {"username": "mallory", "password": "correct horse"}, None),
        ("POST", "/auth/login", {"username": "alice", "password": "correct horse"}, None),
        ("POST", f"/users/{user['id']}/save-settings", {"theme": "dark", "view-mode": "list"}, None),
        ("GET", "/user/reading-history", None, {"limit": "10", "offset": "0", "search": "yo", "user_lang": "en",
                                                  "order": "name-asc", "client": "1"}),
        ("POST", "/user/reading-history", {"limit": 10, "offset": 0, "search": "yo", "user_lang": "en",
                                           "order": "name-asc", "client": 1}, None),
        ("POST", "/user/reading-status/add/2", {**STATUS, "reread": 1, "score": 8, "start": "2024-01",
                                                "end": "2024-02-03", "notes": "n"}, None),
        ("POST", "/user/reading-status/update/1", {**STATUS, "notes": "n"}, None),
        ("POST", "/user/series-rating/add/2", {"rating": 7}, None),
        ("POST", "/user/series-rating/update/1", {"rating": 7.5}, None),
        ("GET", "/user/collection", None, {"limit": "10", "offset": "0", "search": "yo", "user_lang": "en",
                                             "order": "name-asc", "client": "1"}),
        ("POST", "/user/collection", {"limit": 10, "offset": 0, "search": "yo", "user_lang": "en",
                                      "order": "name-asc", "client": 1}, None),
        ("GET", "/user/collection/stats/general", None, {"client": "1"}),
        ("POST", "/user/collection/add/11", {"price": 5, "date": "2024-01-01"}, None),
        ("POST", f"/user/collection/update/{user['item_id']}", {"price": 5, "date": "2024-01-01"}, None),
        ("POST", f"/user/update-image/{user['id']}", {"image": png}, None),
        ("POST", f"/admin-users/update-image/{user['id']}", {"image": png}, None),
        # The body is an XML file (hostile files: test_mal_import); the query is swept here.
        ("POST", "/user/import/mal", None, {"mode": "dry-run", "merge": "greater", "client": "1"}),
        ("GET", "/user/export/mal", None, {"gzip": "1"}),
        ("GET", "/user/reading-stats", None, {"client": "1"}),
        ("GET", "/user/reading-history/stats/general", None, {"client": "1"}),
        ("GET", "/users", None, {"order": "registered-desc", "limit": "10", "offset": "0", "search": "al"}),
        ("GET", "/users/alice/reading-history", None, {"limit": "10", "offset": "0", "search": "yo",
                                                       "user_lang": "en", "order": "name-asc", "client": "1"}),
        ("GET", "/users/alice/collection", None, {"limit": "10", "offset": "0", "search": "yo", "user_lang": "en",
                                                  "order": "name-asc", "client": "1"}),
        ("GET", "/series", None, {"client": "1", "lang": "German", "user_lang": "en", "order": "added-desc",
                                  "search": "yo", "limit": "10", "offset": "0", "filters": "type:Manga;origin:Japanese"}),
        ("GET", "/series/quick-search", None, {"search": "ber", "limit": "5"}),
        ("GET", "/series/slug/series-1", None, {"lang": "German", "user_lang": "en"}),
        ("GET", "/volumes/slug/series-1-11", None, {"lang": "German", "user_lang": "en"}),
        ("GET", "/series/volumes/1", None, {"edition": "German:5", "limit": "10", "offset": "0"}),
        ("GET", "/volumes/toggle-collection/id/11", None, {"client": "1"}),
        ("POST", "/auth/tokens", {"name": "Reading app", "scopes": ["read", "write"], "expires_in_days": 30}, None),
        ("GET", "/user/changes", None, {"since": "1", "limit": "10"}),
        ("GET", "/user/reading-status/id/1/history", None, {"limit": "10", "offset": "0"}),
        # Last, and never accepted as sent: each spoils one field, and no spoiled password is valid.
        ("POST", "/auth/change-password", {"current_password": "correct horse", "new_password": "battery staple"},
         None),
        ("DELETE", "/user/account", {"password": "correct horse"}, None),
        ("POST", "/user/import", {"format": "tsundoku-export", "version": 1, "reading_statuses": [], "ratings": [],
                                  "collection": [], "settings": {}}, {"mode": "dry-run", "merge": "keep"}),
    ]


async def test_the_sweep_covers_every_operation_that_takes_input() -> None:
    swept = {(method, re.sub(r"/[0-9a-f]{24}|/\d+", "/{id}", re.sub(r"/slug/[a-z0-9-]+$", "/slug/{slug}", path))
              .replace("/users/alice", "/users/{slug}"))
             for method, path, _, _ in valid_requests({"id": "0" * 24, "item_id": "0" * 24})}
    documented = {(method.upper(), route.path) for route in all_routes() for method, op in route.handler.api.items()
                  if (op.request is not None or op.query is not None) and route.path != "/auth/logout"}
    assert documented <= swept, documented - swept


def assert_clean_refusal_or_success(reply: Reply, what: Any, *, head: bool = False) -> None:
    assert reply.status < 500, (what, reply.status, reply.raw[:300])
    if reply.status >= 400 and head:
        assert reply.headers["Content-Type"].startswith("application/json"), what
    elif reply.status >= 400:
        assert isinstance(reply.body, dict) and isinstance(reply.body.get("data"), str), (what, reply.raw[:300])
        assert reply.body["code"] == reply.status, what


def assert_never_sent(commands: CommandCounter, what: Any) -> None:
    sent = json_util.dumps(commands.sent)
    assert MARKER not in sent, (what, sent[:2000])


def with_raw_value(body: dict[str, Any], field: str, raw: str) -> str:
    return json.dumps({**body, field: "__HOSTILE__"}).replace('"__HOSTILE__"', raw)


async def test_every_body_field_refuses_operator_objects_and_survives_odd_values(
    api: ApiClient, alice: dict, commands: CommandCounter, caplog: pytest.LogCaptureFixture
) -> None:
    sent = 0
    for method, path, body, _query in valid_requests(alice):
        if body is None:
            continue
        for field in body:
            for operator in OPERATOR_OBJECTS:
                commands.reset()
                reply = await api.request(method, path, json_body={**body, field: operator})
                assert 400 <= reply.status < 500, (path, field, operator, reply.body)
                assert_clean_refusal_or_success(reply, (path, field, operator))
                assert_never_sent(commands, (path, field, operator))
                sent += 1
            for raw in ODD_VALUES:
                reply = await api.request(method, path, body=with_raw_value(body, field, raw),
                                          headers={"Content-Type": "application/json"})
                assert_clean_refusal_or_success(reply, (path, field, raw[:40]))
                sent += 1
        # Operator keys beside the fields, and in place of the whole body.
        for hostile in ({**body, "$where": MARKER}, {"$set": {"roles": ["admin"]}, **body}, [body], MARKER):
            commands.reset()
            reply = await api.request(method, path, json_body=hostile)
            assert 400 <= reply.status < 500, (path, hostile, reply.body)
            assert_never_sent(commands, (path, hostile))
    assert sent > 1000
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]
    assert (await api.get("/auth/me")).body["user"]["roles"] == ["member"]


async def test_every_query_parameter_refuses_operator_syntax_and_survives_odd_values(
    api: ApiClient, alice: dict, commands: CommandCounter, caplog: pytest.LogCaptureFixture
) -> None:
    for method, path, _body, query in valid_requests(alice):
        if query is None:
            continue
        for field in query:
            others = "&".join(f"{k}={quote(v)}" for k, v in query.items() if k != field)
            for raw in ODD_QUERY_VALUES:
                reply = await api.request(method, f"{path}?{others}&{field}={raw}", headers=SAME_ORIGIN)
                assert_clean_refusal_or_success(reply, (path, field, raw[:40]))
            for operator_form in (f"{field}[$ne]={MARKER}", f"{field}%5B%24ne%5D={MARKER}",
                                  f"{field}[$regex]={MARKER}", f"{field}={MARKER}&{field}[$gt]="):
                commands.reset()
                reply = await api.request(method, f"{path}?{others}&{operator_form}", headers=SAME_ORIGIN)
                assert_clean_refusal_or_success(reply, (path, operator_form))
                if field != "search":  # a search for the text itself is fine; as an operator it is not
                    assert_never_sent(commands, (path, operator_form))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]


async def test_search_is_always_literal_text_never_a_pattern(
    api: ApiClient, alice: dict, commands: CommandCounter
) -> None:
    # Catastrophic patterns would take the regex engine exponential time if they were patterns.
    for search in ("(a+)+$", "(.*a){20}", "^(([a-z])+.)+[A-Z]([a-z])+$", ".*", "[", "\\", "a{99999}", "$where"):
        for path in ("/user/reading-history", "/user/collection"):
            commands.reset()
            reply = await api.get(f"{path}?client=1&search={quote(search)}")
            assert reply.status == 200, (search, reply.body)
            listed = reply.body["series"] if "series" in reply.body else reply.body["volumes"]
            assert listed == [], search  # nothing matches: the text is not in any title
            # A search is matched in the service, as text, against the catalog keys it holds: it
            # never reaches the database, as a pattern or otherwise.
            sent = json_util.dumps(commands.sent)
            assert "$regex" not in sent and (len(search) < 4 or json.dumps(search)[1:-1] not in sent), sent


async def test_malformed_bodies_answer_400_in_the_json_shape(api: ApiClient, alice: dict) -> None:
    bodies = [b"\xff\xfe{}", b'{"theme": "\xc3\x28"}', b"[" * 100_000, b"{" * 100_000, b'{"a":1,"a":{"$ne":1}}',
              b"NaN", b'{"rating": NaN}', b'{"rating": Infinity}', b"{'a': 1}", b"\x00",
              b'{"theme": "dark"} trailing']
    for method, path, _body, _query in valid_requests(alice):
        if method != "POST":
            continue
        for raw in bodies:
            reply = await api.request(method, path, body=raw, headers={"Content-Type": "application/json"})
            assert 400 <= reply.status < 500, (path, raw[:30], reply.status)
            assert_clean_refusal_or_success(reply, (path, raw[:30]))


async def test_odd_ids_in_every_path_answer_4xx_in_the_json_shape(api: ApiClient, alice: dict) -> None:
    templates = [(method.upper(), route.path) for route in all_routes() for method in route.handler.api
                 if "{" in route.path]
    for method, template in templates:
        for odd in ODD_IDS:
            path = re.sub(r"\{(id|slug)\}", odd, template).replace("{res}", "scaled")
            reply = await api.request(method, path, json_body={} if method == "POST" else None, headers=SAME_ORIGIN)
            assert_clean_refusal_or_success(reply, (method, path[:80]), head=method == "HEAD")
            assert reply.status >= 400, (method, path[:80], reply.status)
    for res in ("..%2Fhigh", "high%00", "HIGH", "..", "%2e%2e%2f", "scaled.webp", "high/..", "x" * 5000):
        reply = await api.get(f"/user/avatar/{alice['id']}/{res}")
        assert_clean_refusal_or_success(reply, res)
        assert reply.status in (400, 404), (res, reply.status)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGBA", (120, 80), color) for color in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def png_with_text_bomb() -> bytes:
    """A 1x1 PNG with a zTXt chunk that inflates to 64 MB."""
    plain = image_bytes("PNG", (1, 1))
    payload = b"Comment\x00\x00" + zlib.compress(b"A" * (64 * 1024 * 1024), 9)
    chunk = struct.pack(">I", len(payload)) + b"zTXt" + payload + struct.pack(">I", zlib.crc32(b"zTXt" + payload))
    return plain[:33] + chunk + plain[33:]  # after the 8-byte signature and the 25-byte IHDR


def flat_png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` and holds almost no data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


POLYGLOT_TAIL = b"<html><script>alert(document.cookie)</script></html>PK\x03\x04"


@pytest.mark.parametrize("name, data", [
    ("animated PNG", animated("PNG")),
    ("animated WebP", animated("WEBP")),
    ("animated GIF", animated("GIF")),
    ("PNG with HTML and a ZIP header appended", image_bytes("PNG", (64, 64)) + POLYGLOT_TAIL),
    ("GIF with a script appended", image_bytes("GIF", (64, 64)) + POLYGLOT_TAIL),
    ("JPEG with HTML in a comment", image_bytes("JPEG", (64, 64), comment=POLYGLOT_TAIL)),
])
async def test_animated_and_polyglot_images_keep_one_clean_frame_and_nothing_else(
    api: ApiClient, alice: dict, name: str, data: bytes
) -> None:
    reply = await api.post(f"/user/update-image/{alice['id']}", {"image": b64(data)})
    assert reply.status == 200, (name, reply.body)
    for resolution in ("high", "scaled"):
        served = await api.get(f"/user/avatar/{alice['id']}/{resolution}")
        assert served.headers["Content-Type"] == "image/webp" and served.headers["X-Content-Type-Options"] == "nosniff"
        assert b"<html" not in served.raw and b"<script" not in served.raw and b"PK\x03\x04" not in served.raw
        image = Image.open(io.BytesIO(served.raw))
        assert getattr(image, "n_frames", 1) == 1, name  # one frame: the first
        first = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
        assert first[0] > 200 or name.startswith(("PNG", "GIF", "JPEG")), (name, first)  # the red frame


@pytest.mark.parametrize("name, data, message", [
    ("SVG with a script", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "Image must be JPEG, PNG, WebP or GIF"),
    ("HTML", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "Image must be JPEG, PNG, WebP or GIF"),
    ("PNG whose text chunk inflates to 64 MB", png_with_text_bomb(), "Image data is corrupt"),
    ("PNG claiming 100000x100000", flat_png_header(100_000, 100_000), "Image has too many pixels (at most 40 megapixels)"),
])
async def test_hostile_image_files_answer_400(api: ApiClient, alice: dict, name: str, data: bytes, message: str) -> None:
    reply = await api.post(f"/user/update-image/{alice['id']}", {"image": b64(data)})
    assert (reply.status, reply.body["data"]) == (400, message), name


async def test_a_path_parameter_outside_its_declaration_is_refused_before_any_query_of_its_own(
        api: ApiClient, alice: dict, db: AsyncDatabase, commands: CommandCounter) -> None:
    # The routes enforce the declaration OpenAPI publishes: such a value costs the session query
    # at most, and gets the declaration's answer (400 for a malformed id, 404 for a name nothing has).
    # Alice is an admin, so that a route's permission (403 before the path, for anyone else) does
    # not answer first.
    await make_admin(db, alice["id"])
    refusals = 0
    for route in all_routes():
        if issubclass(route.handler, SeriesHandler):
            assert route.path_parameters == {"id": CATALOG_ID}, route.path  # series_id() relies on it
        for name, declared in route.path_parameters.items():
            for odd in ODD_IDS:
                try:
                    value = unquote(odd, errors="strict")
                except UnicodeDecodeError:
                    continue  # not UTF-8: Tornado refuses it before the handler
                if declared.accepts(value):
                    continue
                path = route.path.replace("{" + name + "}", odd).replace("{id}", alice["id"]).replace("{res}", "scaled")
                for method, operation in route.handler.api.items():
                    commands.reset()
                    query = "?client=1" if operation.query is not None else ""  # valid, so the path decides
                    reply = await api.request(method.upper(), path + query, json_body={} if method == "post" else None,
                                              headers=SAME_ORIGIN)
                    assert reply.status == declared.refusal[0], (method, path[:80], reply.status)
                    assert commands.targets() in ([], [("find", "users")]), (method, path[:80], commands.targets())
                    refusals += 1
    assert refusals > 100
