"""POST /user/import/mal, POST /user/import/{id}/undo, GET /user/export/mal: MyAnimeList files
of every shape MAL and other exporters write, matching, merge rules, dry runs that change
nothing, undo that restores exactly, the round trip, and hostile files."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import os
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import bson
import pymongo
import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from formats import mal_xml
from formats.mal_xml import escaped_pieces, read_mal_file
from formats.problems import FileProblem
from handlers.mal_import import LIST_BUSY
from storage.catalog import CatalogFile, CatalogFileError, CatalogStore, series_document
from storage.catalog_keys import publish_catalog_change
from storage.status_import import SeriesMatcher
from storage.title_keys import MAX_KEY_CHARACTERS, MAX_TITLE_CHARACTERS, title_key
from tests.api_client import ApiClient, Reply
from tests.bodies import STATUS
from tests.catalog_data import load_catalog, series
from tests.conftest import FailPoints, RunningApp, StartApp
from tests.mal_files import entry_lines, mal_file, manga
from web.errors import file_refusal

pytestmark = pytest.mark.asyncio

CATALOG = [
    series(1, "Yotsuba to!", en="Yotsuba&!", mal_id=104),
    series(2, "Berserk", mal_id=2),
    series(3, "Monster", mal_id=1),
    series(4, "Shingeki no Kyojin", en="Attack on Titan"),
    series(5, "Ookami to Koushinryou", en="Spice & Wolf"),
    series(6, "Nana"),
    series(7, "NANA!", en="Nana (Yazawa)"),
    series(8, "Hagane no Renkinjutsushi", en="Fullmetal Alchemist", client=2),
    series(9, "Vagabond", mal_id=656),
    series(10, "Slam Dunk", mal_id=51),
    series(11, "Dorohedoro"),
]
XML = {"Content-Type": "application/xml"}


async def send(api: ApiClient, file: bytes, query: str = "", content_type: str = "application/xml") -> Reply:
    return await api.request("POST", f"/user/import/mal{query}", body=file, headers={"Content-Type": content_type})


async def stored_statuses(db: AsyncDatabase, user_id: str) -> list[dict[str, Any]]:
    user = await db["users"].find_one({"_id": user_id})
    assert user is not None
    return user.get("statuses") or []


def by_series(statuses: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {status["series_id"]: status for status in statuses}


def fields(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k != "last_update"}


EVERY_FORM = [
    manga(manga_mangadb_id=104, manga_title="Yotsuba&!", my_status="Reading", my_read_chapters=42,
          my_read_volumes=5, my_start_date="2019-05-00", my_score=9, my_priority="High",
          my_comments="Daily joy", my_tags="slice of life, comedy"),
    manga(manga_mangadb_id=2, manga_title="Berserk", my_status="Completed", my_read_volumes=41,
          my_start_date="2010-01-15", my_finish_date="2012-00-00", my_times_read=2, my_priority="Medium"),
    manga(manga_mangadb_id=1, manga_title="Monster", my_status="On-Hold", my_read_volumes=3),
    manga(manga_title="attack on titan", my_status="On Hold", my_start_date="2020-00-17"),
    manga(raw_title="Spice & Wolf", my_status="Dropped", my_read_volumes=2, my_tags="wolves"),
    manga(manga_mangadb_id=656, manga_title="Vagabond", my_status="Plan to Read"),
    manga(manga_mangadb_id=51, title_tag="series_title", manga_title="Slam Dunk", my_status="6"),
    manga(manga_title="Dorohedoro", my_status="2", my_read_volumes=23, my_finish_date="2018-09-12"),
]


async def test_every_status_date_and_field_form_maps_to_a_status(running: RunningApp, api: ApiClient,
                                                                  db: AsyncDatabase, catalog: None) -> None:
    alice = await api.sign_up("alice")
    file = mal_file(EVERY_FORM)
    reply = await send(api, file, "?mode=apply")
    assert reply.status == 200, reply.body
    report = reply.body
    assert report["counts"] == {"entries": 8, "add": 8, "update": 0, "unchanged": 0, "skipped": 0}
    assert [entry["line"] for entry in report["entries"]] == entry_lines(file)
    assert [(e["match"]["by"], e["match"]["series_id"]) for e in report["entries"]] == [
        ("id", 1), ("id", 2), ("id", 3), ("title", 4), ("title", 5), ("id", 9), ("id", 10), ("title", 11)]
    assert report["entries"][4]["title"] == "Spice & Wolf"
    assert len(report["import_id"]) == 24
    got = {series_id: fields(status) for series_id, status in by_series(await stored_statuses(db, alice["id"])).items()}
    base = {"visibility": "private", "reread": None, "score": None, "start": None, "end": None, "notes": None,
            "priority": "low", "client": 1}
    assert got[1] == {**base, "series_id": 1, "progress_type": "chapters", "progress": 42.0, "status": "started",
                      "score": 9.0, "priority": "high", "start": "2019-05",
                      "notes": "Daily joy\nTags: slice of life, comedy"}
    assert got[2] == {**base, "series_id": 2, "progress_type": "volumes", "progress": 41.0, "status": "completed",
                      "reread": 2, "priority": "mid", "start": "2010-01-15", "end": "2012"}
    assert got[3] == {**base, "series_id": 3, "progress_type": "volumes", "progress": 3.0, "status": "paused"}
    assert got[4] == {**base, "series_id": 4, "progress_type": "volumes", "progress": 0.0, "status": "paused",
                      "start": "2020"}
    assert got[5] == {**base, "series_id": 5, "progress_type": "volumes", "progress": 2.0, "status": "dropped",
                      "notes": "Tags: wolves"}
    assert got[9]["status"] == got[10]["status"] == "planned"
    assert got[11]["status"] == "completed" and got[11]["end"] == "2018-09-12"
    # The statuses read back through the reading-list routes like any other.
    page = await api.get("/user/reading-history?limit=100&order=name-asc")
    assert page.status == 200 and page.body["max"] == 8


async def test_numbers_for_statuses_and_gzip_give_the_same_report(running: RunningApp, api: ApiClient,
                                                                  catalog: None) -> None:
    await api.sign_up("alice")
    numbered = [manga(manga_mangadb_id=mal_id, my_status=number)
                for mal_id, number in ((104, "1"), (2, "2"), (1, "3"), (656, "4"), (51, "6"))]
    plain = await send(api, mal_file(numbered))
    zipped = await send(api, gzip.compress(mal_file(numbered)), content_type="application/gzip")
    # A .xml.gz picked in a browser may be sent as XML: recognized by its first bytes.
    mislabelled = await send(api, gzip.compress(mal_file(numbered)), content_type="application/xml")
    assert plain.status == zipped.status == mislabelled.status == 200
    assert plain.body == zipped.body == mislabelled.body
    assert plain.body["counts"]["add"] == 5 and plain.body["import_id"] is None


async def test_matching_reports_unknown_ambiguous_and_duplicate_titles_and_never_guesses(
        running: RunningApp, api: ApiClient, catalog: None) -> None:
    await api.sign_up("alice")
    file = mal_file([
        manga(manga_mangadb_id=999999, manga_title="ＹＯＴＳＵＢＡ ＆ !"),  # unknown id, full-width title
        manga(manga_title="Nana"),  # two series share the key "nana"
        manga(manga_title="A Series Nobody Has"),
        manga(manga_mangadb_id=424242),
        manga(manga_mangadb_id=2, manga_title="Berserk"),
        manga(manga_title="BERSERK"),  # the same series again
        manga(manga_title="Fullmetal Alchemist"),  # client 2: in scope only without ?client=1
    ])
    reply = await send(api, file, "?client=1")
    assert reply.status == 200, reply.body
    entries = reply.body["entries"]
    assert entries[0]["match"] == {"by": "title", "series_id": 1} and entries[0]["action"] == "add"
    assert entries[0]["mal_id"] == 999999
    assert entries[1]["match"] is None and entries[1]["action"] == "skipped"
    assert entries[1]["reason"] == "the title matches more than one series: 6, 7"
    assert entries[2]["reason"] == "no series in the catalog has this title"
    assert entries[3]["reason"] == "no series in the catalog has MAL id 424242 or this title"
    assert entries[4]["action"] == "add"
    assert entries[5]["action"] == "skipped" and entries[5]["match"] == {"by": "title", "series_id": 2}
    assert entries[5]["reason"] == f"series 2 is already matched by the entry at line {entries[4]['line']}"
    assert entries[6]["reason"] == "no series in the catalog has this title"
    assert reply.body["counts"] == {"entries": 7, "add": 2, "update": 0, "unchanged": 0, "skipped": 5}
    unscoped = await send(api, file)
    assert unscoped.body["entries"][6]["match"] == {"by": "title", "series_id": 8}


async def test_bad_values_skip_their_entry_with_the_reason(running: RunningApp, api: ApiClient,
                                                           catalog: None) -> None:
    await api.sign_up("alice")
    reply = await send(api, mal_file([
        manga(manga_mangadb_id=104, my_status="Reading later"),
        manga(manga_mangadb_id=2, my_start_date="2019-02-30"),
        manga(manga_mangadb_id=1, my_start_date="2020-01-01", my_finish_date="2019-12-31"),
        manga(manga_mangadb_id=656, my_score=11),
        manga(manga_mangadb_id=51, my_read_chapters="-3"),
        manga(manga_title="Dorohedoro", my_priority="Urgent"),
        manga(manga_title="Monster", my_comments="x" * 10_001),
    ]))
    assert reply.status == 200
    assert [e["reason"] for e in reply.body["entries"]] == [
        "my_status: 'Reading later' is not a MAL status",
        "my_start_date: '2019-02-30' is not a real date",
        "my_finish_date is before my_start_date",
        "my_score: 11 is not between 0 and 10",
        "my_read_chapters: '-3' is not a whole number",
        "my_priority: 'Urgent' is not Low, Medium or High",
        "my_comments and my_tags are longer than 10000 characters",
    ]
    assert reply.body["counts"]["skipped"] == 7


async def test_a_dry_run_changes_nothing(running: RunningApp, api: ApiClient, db: AsyncDatabase,
                                         catalog: None) -> None:
    alice = await api.sign_up("alice")
    assert (await api.post("/user/reading-status/add/2", STATUS)).status == 200
    before = bson.encode(await db["users"].find_one({"_id": alice["id"]}) or {})
    for query in ("", "?mode=dry-run", "?mode=dry-run&merge=replace", "?merge=keep"):
        reply = await send(api, mal_file(EVERY_FORM), query)
        assert reply.status == 200 and reply.body["applied"] is False and reply.body["import_id"] is None
    assert bson.encode(await db["users"].find_one({"_id": alice["id"]}) or {}) == before
    assert await db["imports"].count_documents({}) == 0


async def _list_with(api: ApiClient, series_id: int, **body: Any) -> None:
    reply = await api.post(f"/user/reading-status/add/{series_id}", {**STATUS, **body})
    assert reply.status == 200, reply.body


async def test_merge_greater_keeps_the_furthest_reading_and_keep_and_replace_do_what_they_say(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None) -> None:
    alice = await api.sign_up("alice")
    await _list_with(api, 1, progress=10, status="started", start="2019-06-01", end=None, notes="mine")
    await _list_with(api, 2, progress=41, status="completed", start="2010", score=9)
    await _list_with(api, 3, progress=5, status="started")
    await _list_with(api, 9, progress=1, status="started", start="2021-03-03", end="2021-04-04", priority="low")
    file = mal_file([
        manga(manga_mangadb_id=104, my_read_volumes=8, my_status="Completed", my_start_date="2019-05-00",
              my_finish_date="2020-02-02", my_comments="theirs"),
        manga(manga_mangadb_id=2, my_read_volumes=20, my_status="Reading", my_start_date="2011-01-01"),
        manga(manga_mangadb_id=1, my_read_volumes=2, my_status="Plan to Read", my_priority="High"),
        manga(manga_mangadb_id=656, my_read_volumes=1, my_status="Reading", my_start_date="2021-03-03",
              my_finish_date="2021-04-04", my_priority="Low"),
        manga(manga_mangadb_id=51, my_status="Reading"),
    ])
    greater = await send(api, file, "?mode=apply")
    assert greater.status == 200, greater.body
    actions = [(e["action"], e["changes"]) for e in greater.body["entries"]]
    assert actions == [("update", ["status", "priority", "start", "end"]), ("update", ["priority"]),
                       ("unchanged", []), ("unchanged", []), ("add", [])]
    got = by_series(await stored_statuses(db, alice["id"]))
    # Higher progress of the same kind, completed from the file, the earlier start, the file's
    # finish, the held notes.
    assert (got[1]["progress"], got[1]["status"], got[1]["start"], got[1]["end"], got[1]["notes"]) == \
        (10.0, "completed", "2019-05", "2020-02-02", "mine")
    # Completed is never downgraded; progress never falls; 2010 starts before 2011-01-01.
    assert (got[2]["progress"], got[2]["status"], got[2]["start"], got[2]["score"]) == (41.0, "completed", "2010", 9)
    # Started is not moved back to planned.
    assert (got[3]["progress"], got[3]["status"], got[3]["priority"]) == (5.0, "started", "high")

    keep = await send(api, mal_file([manga(manga_mangadb_id=2, my_read_volumes=1, my_status="Dropped")]),
                      "?mode=apply&merge=keep")
    assert keep.body["entries"][0]["action"] == "skipped"
    assert keep.body["entries"][0]["reason"] == "on your list with other values (merge=keep)"
    assert by_series(await stored_statuses(db, alice["id"]))[2]["status"] == "completed"

    replace = await send(api, mal_file([manga(manga_mangadb_id=2, my_read_volumes=1, my_status="Dropped")]),
                         "?mode=apply&merge=replace")
    assert replace.body["entries"][0]["action"] == "update"
    after = by_series(await stored_statuses(db, alice["id"]))[2]
    assert (after["progress"], after["status"], after["start"], after["score"], after["visibility"]) == \
        (1.0, "dropped", None, None, "private")


async def test_undo_restores_the_entries_byte_for_byte_and_leaves_those_changed_since(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None) -> None:
    alice = await api.sign_up("alice")
    await _list_with(api, 1, progress=10, notes="Ä note\nwith lines", score=7.5, start="2019-04")
    await _list_with(api, 2, progress=3)
    await _list_with(api, 3, progress=1)
    before = await stored_statuses(db, alice["id"])
    applied = await send(api, mal_file([
        manga(manga_mangadb_id=104, my_read_volumes=20, my_status="Completed"),
        manga(manga_mangadb_id=2, my_read_volumes=30),
        manga(manga_mangadb_id=656, my_read_volumes=4),
        manga(manga_mangadb_id=51, my_read_volumes=5),
    ]), "?mode=apply")
    assert applied.status == 200 and applied.body["counts"]["add"] == 2 and applied.body["counts"]["update"] == 2
    # The user changes one updated and one added entry after the import.
    assert (await api.post("/user/reading-status/update/2", {**STATUS, "progress": 31})).status == 200
    assert (await api.delete("/user/reading-status/delete/10")).status == 200

    undo = await api.post(f"/user/import/{applied.body['import_id']}/undo", None)
    assert undo.status == 200, undo.body
    assert undo.body == {"import_id": applied.body["import_id"], "restored": 1, "removed": 1,
                         "left": [{"series_id": 2, "reason": "changed since the import"},
                                  {"series_id": 10, "reason": "changed since the import"}]}
    after = by_series(await stored_statuses(db, alice["id"]))
    held = by_series(before)
    assert bson.encode(after[1]) == bson.encode(held[1])  # restored exactly, last_update included
    assert bson.encode(after[3]) == bson.encode(held[3])  # never touched
    assert 9 not in after and 10 not in after
    assert after[2]["progress"] == 31.0
    again = await api.post(f"/user/import/{applied.body['import_id']}/undo", None)
    assert again.status == 404 and again.body == {"data": "Import not found", "code": 404}


async def test_undo_is_only_for_the_owner_and_real_ids(running: RunningApp, api: ApiClient, catalog: None) -> None:
    await api.sign_up("alice")
    applied = await send(api, mal_file([manga(manga_mangadb_id=2)]), "?mode=apply")
    bob = running.client()
    await bob.sign_up("bob")
    assert (await bob.post(f"/user/import/{applied.body['import_id']}/undo", None)).status == 404
    assert (await api.post("/user/import/" + "0" * 24 + "/undo", None)).status == 404
    assert (await api.post("/user/import/" + "x" * 100 + "/undo", None)).status == 404
    anonymous = running.client()
    assert (await anonymous.post(f"/user/import/{applied.body['import_id']}/undo", None)).status == 401
    assert (await anonymous.request("POST", "/user/import/mal", body=mal_file([]), headers=XML)).status == 401
    assert (await anonymous.get("/user/export/mal")).status == 401


async def test_export_and_import_into_a_fresh_account_gives_the_same_list(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None) -> None:
    alice = await api.sign_up("alice")
    await _list_with(api, 1, progressType="chapters", progress=42, status="started", score=9, priority="high",
                     start="2019-05", notes="Daily joy\nTags: comedy", visibility="private")
    await _list_with(api, 2, progress=41, status="completed", reread=2, priority="mid", start="2010-01-15",
                     end="2012", visibility="private")
    await _list_with(api, 4, progress=0, status="paused", priority="low", start="2020", visibility="private")
    await _list_with(api, 5, progress=2, status="dropped", priority="low", notes="Tags: wolves & more",
                     visibility="private")
    await _list_with(api, 9, progress=0, status="planned", priority="low", notes="]]> in a note",
                     visibility="private")
    exported = await api.get("/user/export/mal")
    assert exported.status == 200
    assert exported.headers["Content-Type"].startswith("application/xml")
    assert exported.headers["Content-Disposition"].endswith('.xml"')
    assert b"<manga_mangadb_id>104</manga_mangadb_id>" in exported.raw
    assert b"<manga_title><![CDATA[Yotsuba&!]]></manga_title>" in exported.raw  # the English title
    assert b"<my_start_date>2019-05-00</my_start_date>" in exported.raw
    assert b"<my_finish_date>0000-00-00</my_finish_date>" in exported.raw
    assert b"<user_total_manga>5</user_total_manga>" in exported.raw
    zipped = await api.get("/user/export/mal?gzip=1")
    assert zipped.headers["Content-Type"] == "application/gzip"
    assert gzip.decompress(zipped.raw) == exported.raw

    fresh = running.client()
    bob = await fresh.sign_up("bob")
    imported = await send(fresh, zipped.raw, "?mode=apply", content_type="application/gzip")
    assert imported.body["counts"] == {"entries": 5, "add": 5, "update": 0, "unchanged": 0, "skipped": 0}
    mine = {k: fields(v) for k, v in by_series(await stored_statuses(db, alice["id"])).items()}
    theirs = {k: fields(v) for k, v in by_series(await stored_statuses(db, bob["id"])).items()}
    assert theirs == mine
    # And once more: everything is unchanged.
    again = await send(fresh, exported.raw, "?mode=apply")
    assert again.body["counts"]["unchanged"] == 5


@pytest.mark.parametrize("attack, message", [
    ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
     '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>',
     "Invalid MAL file: entity declarations are not accepted"),
    ('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "Invalid MAL file: entity declarations are not accepted"),
])
async def test_entity_attacks_are_refused(running: RunningApp, api: ApiClient, db: AsyncDatabase,
                                          catalog: None, attack: str, message: str) -> None:
    alice = await api.sign_up("alice")
    reply = await send(api, mal_file([manga(raw_title="&lol3;" if "lol" in attack else "&x;")], doctype=attack),
                       "?mode=apply")
    assert reply.status == 400 and reply.body["data"] == message
    assert await stored_statuses(db, alice["id"]) == []


async def test_files_that_are_not_mal_lists_are_refused_with_the_line(running: RunningApp, api: ApiClient,
                                                                      catalog: None) -> None:
    await api.sign_up("alice")
    broken = mal_file([manga(manga_mangadb_id=2)]).replace(b"</my_status>", b"</my_stat>", 1)
    line = broken.split(b"\n").index(b"\t\t<my_status>Reading</my_stat>") + 1
    reply = await send(api, broken)
    assert reply.status == 400 and reply.body["data"] == f"Invalid MAL file at line {line}: mismatched tag"
    anime = await send(api, mal_file([], export_type=1))
    assert anime.body["data"] == "Invalid MAL file: user_export_type 1 is not a manga list (2)"
    assert (await send(api, b"<rss></rss>")).body["data"] == \
        "Invalid MAL file: the root element is <rss>, not <myanimelist>"
    assert (await send(api, b"\x1f\x8b\x08\x00garbage", content_type="application/gzip")).status == 400
    assert (await send(api, gzip.compress(mal_file([]))[:-12], content_type="application/gzip")).body["data"] == \
        "Invalid MAL file: the gzip file is cut short"
    wrong = await send(api, mal_file([]), content_type="application/json")
    assert wrong.status == 415
    assert wrong.body["data"] == ("Request body must be a MyAnimeList XML file "
                                  "(Content-Type: application/xml, text/xml, application/gzip or application/octet-stream)")
    assert wrong.body == await api.documented_answer("POST", "/user/import/mal", 415)
    assert (await send(api, mal_file([]), "?merge=newest")).status == 400


async def test_size_limits_refuse_bombs_and_floods_early(running: RunningApp, api: ApiClient,
                                                         catalog: None) -> None:
    await api.sign_up("alice")
    # 60 MB of one repeated comment compresses to ~60 KB: the file is read as it is inflated, and
    # refused at its first 64 Ki characters of one element's text.
    bomb = gzip.compress(mal_file([manga(manga_mangadb_id=2, my_comments="a" * (60 * 1024 * 1024))]))
    assert len(bomb) < 200_000
    reply = await send(api, bomb, content_type="application/gzip")
    assert reply.status == 400 and reply.body["data"] == \
        "Invalid MAL file at line 27: <my_comments> has more than 65536 characters of text"
    # 60 MB of XML comments under every other cap (each under 1 MB): refused once 50 MB are inflated.
    comments = b"\n".join([b"<!-- " + b"a" * 512 * 1024 + b" -->"] * 120)
    bomb = gzip.compress(mal_file([manga(manga_mangadb_id=2)]).replace(b"</myanimelist>", comments + b"</myanimelist>"))
    assert len(bomb) < 200_000
    reply = await send(api, bomb, content_type="application/gzip")
    assert reply.status == 413 and reply.body["data"] == "MAL file too large: more than 50 MB uncompressed"
    assert reply.body == await api.documented_answer("POST", "/user/import/mal", 413)
    # More than 10 MB compressed is refused from its Content-Length, before the body.
    big = await send(api, os.urandom(10 * 1024 * 1024 + 1), content_type="application/gzip")
    assert big.status == 413
    flood = mal_file([manga(manga_mangadb_id=2)] * 20_001)
    too_many = await send(api, gzip.compress(flood), content_type="application/gzip")
    assert too_many.status == 413 and too_many.body["data"] == "MAL file too large: more than 20000 entries"


async def test_an_apply_that_fails_changes_nothing(running: RunningApp, api: ApiClient, db: AsyncDatabase,
                                                   fail_points: FailPoints, catalog: None) -> None:
    alice = await api.sign_up("alice")
    await _list_with(api, 2, progress=3)
    before = await stored_statuses(db, alice["id"])
    recorded = await db.changes.count_documents({"user_id": alice["id"]})
    await fail_points.fail(["insert"], {"times": 1}, errorCode=50, errorLabels=[])
    try:
        reply = await send(api, mal_file([manga(manga_mangadb_id=2, my_read_volumes=9),
                                          manga(manga_mangadb_id=1)]), "?mode=apply")
    finally:
        await fail_points.off()
        await db.client.admin.command("killAllSessions", [])
    assert reply.status >= 500
    assert await stored_statuses(db, alice["id"]) == before
    assert await db["imports"].count_documents({}) == 0
    assert await db.changes.count_documents({"user_id": alice["id"]}) == recorded  # nor its changes


async def test_deleting_the_account_deletes_its_import_records(running: RunningApp, api: ApiClient,
                                                               db: AsyncDatabase, catalog: None) -> None:
    await api.sign_up("alice")
    assert (await send(api, mal_file([manga(manga_mangadb_id=2)]), "?mode=apply")).status == 200
    assert await db["imports"].count_documents({}) == 1
    record = await db["imports"].find_one({})
    assert record is not None and (record["expires"] - record["created"]).days == 30
    assert (await api.request("DELETE", "/user/account", json_body={"password": "correct horse"})).status == 200
    assert await db["imports"].count_documents({}) == 0


async def test_catalog_external_ids_are_unique_and_move_between_series(db: AsyncDatabase) -> None:
    store = CatalogStore(db)
    with pytest.raises(ValueError, match=r"series\[1\]\.mal_id: 5 is also series 1's"):
        CatalogFile.model_validate({"series": [series(1, "A", mal_id=5), series(2, "B", mal_id=5)]})
    await load_catalog(db, [series(1, "A", mal_id=5, anilist_id=7), series(2, "B"), series(3, "C")])
    # Refused when a stored series outside the file keeps the id; nothing is written.
    with pytest.raises(CatalogFileError, match="mal_id 5 belongs to series 1"):
        await store.import_file(CatalogFile.model_validate({"series": [series(2, "B", mal_id=5)]}))
    assert (await db["series"].find_one({"_id": 2}) or {}).get("mal_id") is None
    # Moved within one file: taken off the first series, given to the second.
    await load_catalog(db, [series(1, "A", mal_id=6), series(2, "B", mal_id=5)])
    ids = {s["_id"]: (s.get("mal_id"), s.get("anilist_id")) async for s in db["series"].find({})}
    assert ids == {1: (6, None), 2: (5, None), 3: (None, None)}
    assert "anilist_id" not in (await db["series"].find_one({"_id": 1}) or {})  # absent, not null


# Bounded work: whatever a file holds, it is read as a stream, with caps on what is collected.

def _title_line(file: bytes) -> int:
    return file.split(b"\n").index(next(line for line in file.split(b"\n") if b"<manga_title>" in line)) + 1


async def test_a_title_of_20_mb_of_bare_ampersands_is_refused_at_its_line_and_changes_nothing(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, catalog: None) -> None:
    alice = await api.sign_up("alice")
    await _list_with(api, 2, progress=3)
    before = bson.encode(await db["users"].find_one({"_id": alice["id"]}) or {})
    file = mal_file([manga(manga_mangadb_id=2, raw_title="&" * (20 * 1024 * 1024))])
    zipped = gzip.compress(file)
    assert len(zipped) < 30_000
    reply = await send(api, zipped, "?mode=apply", content_type="application/gzip")
    assert reply.status == 400 and reply.body == {
        "data": f"Invalid MAL file at line {_title_line(file)}: <manga_title> has more than 65536 characters of text",
        "code": 400}
    assert bson.encode(await db["users"].find_one({"_id": alice["id"]}) or {}) == before
    assert await db["imports"].count_documents({}) == 0


@pytest.mark.parametrize("megabytes", [2, 20])
async def test_reading_a_flood_of_ampersands_takes_the_same_few_mb_whatever_its_length(megabytes: int) -> None:
    # The pure reader, measured by tracemalloc (expat and zlib allocate through Python's allocator):
    # the file was escaped and parsed whole, 1.9 GB for 20 MB of ampersands; now a piece at a time.
    zipped = gzip.compress(mal_file([manga(raw_title="&" * (megabytes * 1024 * 1024))]))
    tracemalloc.start()
    try:
        with pytest.raises(FileProblem) as refused:
            read_mal_file([zipped], "application/gzip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert file_refusal(refused.value).status == 400
    assert peak < 16 * 1024 * 1024, peak


# Every reference, CDATA start and CDATA end of this text is cut by some split below.
SPLIT_ME = b"A & B &amp; &lt;&gt;&quot;&apos; &#1234; &#x1F600; &am &#x; <![CDATA[C & D]]> ]]]> <![CDATA[]]]]> &"
ESCAPED = (b"A &amp; B &amp; &lt;&gt;&quot;&apos; &#1234; &#x1F600; &amp;am &amp;#x; <![CDATA[C & D]]> ]]]> "
           b"<![CDATA[]]]]> &amp;")


async def test_a_reference_or_cdata_boundary_split_between_pieces_is_escaped_as_in_one_piece() -> None:
    assert b"".join(escaped_pieces([SPLIT_ME])) == ESCAPED
    for cut in range(len(SPLIT_ME) + 1):
        assert b"".join(escaped_pieces([SPLIT_ME[:cut], SPLIT_ME[cut:]])) == ESCAPED, cut
    assert b"".join(escaped_pieces([SPLIT_ME[i:i + 1] for i in range(len(SPLIT_ME))])) == ESCAPED


async def test_a_file_read_in_pieces_of_seven_bytes_gives_the_same_entries_and_lines(
        monkeypatch: pytest.MonkeyPatch) -> None:
    file = mal_file(EVERY_FORM + [manga(raw_title="Tom &amp; Jerry & Co &#x41;", my_comments="a & b ]] c")])
    whole = read_mal_file([file], "application/xml")
    monkeypatch.setattr(mal_xml, "PIECE", 7)
    assert read_mal_file([file], "application/xml") == whole
    assert read_mal_file([gzip.compress(file)], "application/gzip") == whole
    # The body as it arrived, in chunks that cut through the gzip header.
    zipped = gzip.compress(file)
    assert read_mal_file([zipped[:1], zipped[1:5], zipped[5:]], "application/xml") == whole
    assert [entry.line for entry in whole] == entry_lines(file)
    assert whole[-1].text("manga_title") == "Tom & Jerry & Co A"


def _entry_xml(children: str) -> bytes:
    return (f'<?xml version="1.0"?>\n<myanimelist>\n<myinfo><user_export_type>2</user_export_type></myinfo>\n'
            f"<manga>\n{children}\n</manga>\n</myanimelist>\n").encode()


@pytest.mark.parametrize("file, message", [
    (_entry_xml("".join(f"<c{n}/>" for n in range(65))), "Invalid MAL file at line 4: <manga> has more than 64 elements"),
    (_entry_xml("<my_comments>" + "&amp;" * 65_537 + "</my_comments>"),
     "Invalid MAL file at line 5: <my_comments> has more than 65536 characters of text"),
    (_entry_xml("\n<my_tags><![CDATA[" + "x" * 65_537 + "]]></my_tags>"),
     "Invalid MAL file at line 6: <my_tags> has more than 65536 characters of text"),
    (_entry_xml("<a>" * 15), "Invalid MAL file at line 5: elements nested more than 16 deep"),
    (_entry_xml("").replace(b"<manga>", b"".join(b"<a%d/>" % n for n in range(260)) + b"<manga>"),
     "Invalid MAL file at line 4: more than 256 different element and attribute names"),
    (_entry_xml("<!-- " + "x" * (2 * 1024 * 1024) + " -->"),
     "Invalid MAL file at line 5: a tag, comment or declaration longer than 1 MB"),
    (_entry_xml('<my_status note="' + "x" * (2 * 1024 * 1024) + '">1</my_status>'),
     "Invalid MAL file at line 5: a tag, comment or declaration longer than 1 MB"),
    (b'<?xml version="1.0"?>\n' + b"<!-- -->\n" * 200_000 + b"<myanimelist/>",
     "Invalid MAL file: no <myanimelist> element in the first 1 MB"),
])
async def test_what_a_mal_file_may_hold_is_capped_with_a_400_naming_the_line(file: bytes, message: str) -> None:
    with pytest.raises(FileProblem) as refused:
        read_mal_file([gzip.compress(file)], "application/gzip")
    answer = file_refusal(refused.value)  # what the route answers
    assert (answer.status, answer.message) == (400, message)


async def test_a_file_of_more_elements_than_any_list_holds_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mal_xml, "MAX_ELEMENTS", 1000)
    file = _entry_xml("").replace(b"</myanimelist>", b"<a/>" * 1000 + b"</myanimelist>")
    with pytest.raises(FileProblem) as refused:
        read_mal_file([file], "application/xml")
    answer = file_refusal(refused.value)
    assert (answer.status, answer.message) == (413, "MAL file too large: more than 1000 elements")


async def test_a_title_of_17_mb_is_refused_at_its_line_never_500(running: RunningApp, api: ApiClient,
                                                                  db: AsyncDatabase, catalog: None) -> None:
    # It was sent whole to the database to be matched (DocumentTooLarge, 500). No MAL field is
    # that long: the file is refused at the title, as any text over 64 Ki characters is.
    alice = await api.sign_up("alice")
    file = mal_file([manga(manga_mangadb_id=2), manga(manga_title="a" * (17 * 1024 * 1024))])
    reply = await send(api, gzip.compress(file), "?mode=apply", content_type="application/gzip")
    line = file.split(b"\n").index(next(x for x in file.split(b"\n") if x.startswith(b"\t\t<manga_title><![CDATA[aaa"))) + 1
    assert reply.status == 400 and reply.body["data"] == \
        f"Invalid MAL file at line {line}: <manga_title> has more than 65536 characters of text"
    assert await stored_statuses(db, alice["id"]) == []


async def test_a_title_longer_than_any_catalog_title_skips_its_entry(running: RunningApp, api: ApiClient,
                                                                     db: AsyncDatabase) -> None:
    long_name = "Isekai " + "ｘ" * 993  # 1,000 characters, the catalog's limit
    await load_catalog(db, [series(1, long_name), series(2, "Berserk", mal_id=2)])
    await api.sign_up("alice")
    reply = await send(api, mal_file([manga(manga_title=long_name),
                                      manga(manga_mangadb_id=2, manga_title="B" * 60_000),
                                      manga(title_tag="series_title", manga_title="C" * 1001)]))
    assert reply.status == 200, reply.body
    first, second, third = reply.body["entries"]
    assert first["match"] == {"by": "title", "series_id": 1} and first["action"] == "add"
    assert (second["action"], second["reason"]) == ("skipped", "manga_title: longer than 1000 characters")
    assert second["title"] == "B" * 1000 + "…" and second["mal_id"] == 2
    assert (third["action"], third["reason"]) == ("skipped", "series_title: longer than 1000 characters")


async def test_matching_20000_distinct_long_titles_stays_within_the_database_limits(db: AsyncDatabase) -> None:
    # The longest keys a title can give (U+FDFA is 18 characters once normalized), 25 to a query,
    # and keys no catalog title can have (a 17 MB one was DocumentTooLarge) are not sent at all.
    longest = "\ufdfa" * MAX_TITLE_CHARACTERS
    await load_catalog(db, [series(1, longest), series(2, "x" * 999 + "!")])
    keys = [f"{n:05d}" + "x" * 995 for n in range(20_000)] + [title_key(longest), "x" * 999]
    keys += ["a" * (17 * 1024 * 1024), "b" * (MAX_KEY_CHARACTERS + 1)]
    found = await SeriesMatcher(db).candidates([], keys, None)
    assert found.by_title_key == {title_key(longest): [(1, 1)], "x" * 999: [(2, 1)]}


# Under the user's own writes: an import of thousands of entries and its undo while the same user
# keeps writing their list (a browser tab, a sync client). The transaction that spanned the read,
# the merge and the write lost to every write landing in it, and ended in 503 after 10 s.

BIG = 2_000  # entries of the file; on main, 2,000 under these writers always failed
PRELISTED = 12  # series of the file the user lists first, and keeps updating during the import
OTHERS = 36  # series outside the file the writers add, update and delete
WRITERS = 6  # concurrent writing tasks, each on its own series (so each series' writes are ordered)


@dataclass
class Acknowledged:
    """The last acknowledged write of each series: its body, or None for a delete."""

    last: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    during: int = 0  # acknowledged while the import or undo was in flight
    total: int = 0
    codes: dict[int, int] = field(default_factory=dict)


async def _keep_writing(api: ApiClient, series_ids: list[int], prelisted: set[int], seen: Acknowledged,
                        busy: asyncio.Event, done: asyncio.Event, counter: itertools.count) -> None:
    """Writes until `done`: updates of the prelisted series with a growing progress; adds, updates
    and deletes of the others. Only what the service acknowledged (200) is recorded."""
    step = 0
    while not done.is_set():
        series_id = series_ids[step % len(series_ids)]
        step += 1
        body = {**STATUS, "progress": next(counter), "visibility": ("public", "private")[step % 2]}
        held = seen.last.get(series_id)
        if series_id in prelisted or (held is not None and step % 3):
            path, reply_of = f"update/{series_id}", api.post(f"/user/reading-status/update/{series_id}", body)
        elif held is not None:
            path, reply_of, body = f"delete/{series_id}", api.delete(f"/user/reading-status/delete/{series_id}"), None
        else:
            path, reply_of = f"add/{series_id}", api.post(f"/user/reading-status/add/{series_id}", body)
        was_busy = busy.is_set()
        reply = await reply_of
        seen.codes[reply.status] = seen.codes.get(reply.status, 0) + 1
        assert reply.status in (200, 503), (path, reply.status, reply.body)
        if reply.status == 200:
            seen.last[series_id] = body
            seen.total += 1
            seen.during += was_busy and busy.is_set()


@asynccontextmanager
async def _writers(api: ApiClient, seen: Acknowledged, busy: asyncio.Event) -> AsyncIterator[None]:
    """The user's own writes, WRITERS at once, from before `busy` is set until the block ends."""
    done = asyncio.Event()
    counter = itertools.count(1)
    prelisted = set(range(1, PRELISTED + 1))
    mine = [list(prelisted)[k::WRITERS] + list(range(BIG + 1, BIG + OTHERS + 1))[k::WRITERS]
            for k in range(WRITERS)]
    tasks = [asyncio.create_task(_keep_writing(api, ids, prelisted, seen, busy, done, counter)) for ids in mine]
    started = seen.total
    while seen.total < started + WRITERS and not any(task.done() for task in tasks):
        await asyncio.sleep(0.01)  # wait until the writers are under way (a condition, polled)
    try:
        yield
    finally:
        done.set()
        await asyncio.gather(*tasks)


def _assert_acknowledged_writes_kept(seen: Acknowledged, statuses: list[dict[str, Any]]) -> None:
    """Every series' last acknowledged write is what the list holds: a deleted one is absent, a
    written one has its progress and visibility (the file's progress, 1, is below any written, so
    merge=greater keeps the written one whichever came first)."""
    held = by_series(statuses)
    for series_id, body in seen.last.items():
        if body is None:
            assert series_id not in held, series_id
        else:
            assert series_id in held, series_id
            assert (held[series_id]["progress"], held[series_id]["visibility"]) == \
                (float(body["progress"]), body["visibility"]), series_id


@pytest_asyncio.fixture
async def big_catalog(db: AsyncDatabase) -> AsyncIterator[None]:
    """The series as the catalog import stores them, inserted at once (its checks across the
    catalog took 7 s for these), and deleted before the database is dropped (dropping them took
    12 s, deleting them first 0.5 s)."""
    catalog = CatalogFile.model_validate({"series": [
        series(i, f"Series {i}", volumes=[], **({"mal_id": 100_000 + i} if i <= BIG else {}))
        for i in range(1, BIG + OTHERS + 1)]})
    # Given the teardown's 120 s, not the client's 10: on a machine loaded by other work the insert
    # took longer than 10 s once, and the test errored in its setup.
    with pymongo.timeout(120):
        await db["series"].insert_many([{"_id": s.id, **series_document(s), **s.external_ids(), "rating_count": 0,
                                         "rating_half_points": 0} for s in catalog.series])
    await publish_catalog_change(db)
    yield
    with pymongo.timeout(120):
        await db["series"].delete_many({})


def _big_file() -> bytes:
    return gzip.compress(mal_file([manga(manga_mangadb_id=100_000 + i, my_read_volumes=1, my_status="Reading")
                                   for i in range(1, BIG + 1)]))


async def test_an_import_and_its_undo_under_the_users_own_writes_apply_whole_and_lose_no_write(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, big_catalog: None) -> None:
    alice = await api.sign_up("alice")
    for series_id in range(1, PRELISTED + 1):
        await _list_with(api, series_id, progress=0)
    seen, busy = Acknowledged(), asyncio.Event()
    async with _writers(api, seen, busy):
        busy.set()
        started = time.perf_counter()
        applied = await send(api, _big_file(), "?mode=apply", content_type="application/gzip")
        import_seconds = time.perf_counter() - started
        busy.clear()
    assert applied.status == 200, applied.body
    assert seen.during > 0  # the fault was there: writes were acknowledged while the import ran
    statuses = await stored_statuses(db, alice["id"])
    assert set(range(1, BIG + 1)) <= set(by_series(statuses))  # the whole file, once
    assert len(statuses) == len(by_series(statuses))
    _assert_acknowledged_writes_kept(seen, statuses)
    record = await db["imports"].find_one({"_id": applied.body["import_id"]})
    assert record is not None and len(record["entries"]) == BIG - PRELISTED + applied.body["counts"]["update"]

    seen.during = 0
    async with _writers(api, seen, busy):
        busy.set()
        started = time.perf_counter()
        undone = await api.post(f"/user/import/{applied.body['import_id']}/undo", None)
        undo_seconds = time.perf_counter() - started
        busy.clear()
    assert undone.status == 200, undone.body
    assert undone.body["removed"] == BIG - PRELISTED  # every entry the import added, all at once
    statuses = await stored_statuses(db, alice["id"])
    assert not set(range(PRELISTED + 1, BIG + 1)) & set(by_series(statuses))
    _assert_acknowledged_writes_kept(seen, statuses)
    print(f"import {import_seconds:.2f} s, undo {undo_seconds:.2f} s; {seen.total} writes acknowledged, "
          f"{seen.codes}")


async def test_writes_through_another_process_never_lose_to_an_import_which_applies_whole_or_not_at_all(
        start_app: StartApp, db: AsyncDatabase, big_catalog: None) -> None:
    # Two processes on one database: the other's writes do not wait for this one's import (the
    # turns are per process), so the import may find its list changed at every attempt; then it
    # answers 409 having changed nothing. Either way no acknowledged write is lost.
    importing, other = await start_app(), await start_app()
    api = importing.client()
    alice = await api.sign_up("alice")
    for series_id in range(1, PRELISTED + 1):
        await _list_with(api, series_id, progress=0)
    writer = other.client()
    writer.cookies = dict(api.cookies)
    seen, busy = Acknowledged(), asyncio.Event()
    async with _writers(writer, seen, busy):
        busy.set()
        applied = await send(api, _big_file(), "?mode=apply", content_type="application/gzip")
        busy.clear()
    assert applied.status in (200, 409), applied.body
    statuses = await stored_statuses(db, alice["id"])
    file_series = set(range(PRELISTED + 1, BIG + 1))
    if applied.status == 200:
        assert file_series <= set(by_series(statuses))
        assert await db["imports"].count_documents({"user_id": alice["id"]}) == 1
    else:
        assert applied.body == {"data": LIST_BUSY, "code": 409}
        assert not file_series & set(by_series(statuses))
        assert await db["imports"].count_documents({"user_id": alice["id"]}) == 0
    _assert_acknowledged_writes_kept(seen, statuses)
    print(f"{applied.status}; {seen.total} writes acknowledged, {seen.codes}")
