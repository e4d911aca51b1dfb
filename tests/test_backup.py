"""`server.py backup DIR` and `restore DIR`: mongodump's layout with a checked manifest, one snapshot
for consistency under writes, every document and avatar byte back, no restore over data unless
`--drop` (issue 14, points 1 and 2); consistent across collections (names, rating aggregates,
avatars) or not taken, and checked again by `restore` (issue "Faults, round two", point 2)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import bson
import pytest
import pytest_asyncio
from pymongo.asynchronous.database import AsyncDatabase

from storage import backup as backup_module
from storage.backup import (
    MANIFEST,
    BackupDamaged,
    BackupInconsistent,
    BackupRaced,
    BackupRefused,
    RestoreRefused,
    backup,
    read_manifest,
    restore,
)
from storage.database import connect, database
from storage.ratings import RatingStore
from tests.api_tour import CATALOG, api_tour
from tests.catalog_data import load_catalog
from tests.conftest import RunningApp
from tests.images import b64, image_bytes
from tests.service_process import run_command, service_env
from tests.waiting import until

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def empty(mongo_uri: str, db: AsyncDatabase) -> AsyncIterator[AsyncDatabase]:
    """A second, empty database on the same server."""
    client = connect(mongo_uri)
    target = database(client, f"{db.name}_restored")
    yield target
    await client.drop_database(target.name)
    await client.close()


async def contents(db: AsyncDatabase) -> dict[str, list[dict[str, Any]]]:
    return {name: await db[name].find({}).sort("_id", 1).to_list(None)
            for name in sorted(await db.list_collection_names())}


async def index_names(db: AsyncDatabase) -> dict[str, list[str]]:
    return {name: sorted([index["name"] async for index in await db[name].list_indexes()])
            for name in sorted(await db.list_collection_names())}


async def add_users(db: AsyncDatabase, *names: str) -> None:
    """Users as registration writes them: each with its `usernames` row."""
    await db.users.insert_many([{"_id": f"u-{name}", "username": name} for name in names])
    await db.usernames.insert_many([{"_id": name.lower(), "user_id": f"u-{name}"} for name in names])


async def populated(running: RunningApp, db: AsyncDatabase) -> None:
    await load_catalog(db, CATALOG)
    await api_tour(running, db)  # every route: users, lists, ratings, avatars, sessions, limits


@pytest.mark.parametrize("compress", [False, True])
async def test_a_restore_gives_back_every_document_index_and_avatar_byte(
    running: RunningApp, db: AsyncDatabase, empty: AsyncDatabase, tmp_path: Path, compress: bool
) -> None:
    await populated(running, db)
    written = await backup(db, tmp_path, compress=compress)
    suffix = ".bson.gz" if compress else ".bson"
    # mongodump's layout: DIR/<db>/<collection>.bson and .metadata.json, and a manifest.
    assert {f.path for f in written} == {f"{db.name}/{name}{ending}" for name in await db.list_collection_names()
                                         for ending in (suffix, ".metadata.json")}
    assert {"users", "usernames", "roles", "series", "volumes", "avatars.files", "avatars.chunks"} <= {
        f.collection for f in written}
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"])
    restored = await restore(empty, tmp_path)
    assert restored.repaired == []
    assert restored.documents["users"] == await db.users.count_documents({}) == 3
    assert await contents(empty) == await contents(db)  # every avatar chunk's bytes among them
    assert await index_names(empty) == await index_names(db)


async def test_only_the_owner_can_read_a_backup(db: AsyncDatabase, tmp_path: Path) -> None:
    # It holds password and session hashes: 700 directories and 600 files, whatever the umask.
    await add_users(db, "alice")
    target = tmp_path / "backup"
    await backup(db, target)
    for path in [target, *target.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


async def test_a_restore_into_a_database_with_data_is_refused_unless_drop(
    running: RunningApp, db: AsyncDatabase, empty: AsyncDatabase, tmp_path: Path
) -> None:
    await populated(running, db)
    await backup(db, tmp_path)
    await empty.users.insert_one({"_id": "someone", "username": "someone"})
    with pytest.raises(RestoreRefused, match="not empty"):
        await restore(empty, tmp_path)
    assert await empty.users.count_documents({}) == 1  # nothing written
    await restore(empty, tmp_path, drop=True)
    assert await contents(empty) == await contents(db)


async def test_a_damaged_backup_is_refused_before_anything_is_written(
    running: RunningApp, db: AsyncDatabase, empty: AsyncDatabase, tmp_path: Path
) -> None:
    await populated(running, db)
    await backup(db, tmp_path)
    with open(tmp_path / db.name / "users.bson", "ab") as f:
        f.write(b"\x00")
    with pytest.raises(BackupDamaged, match="users.bson"):
        await restore(empty, tmp_path)
    assert await empty.list_collection_names() == []


async def test_a_backup_taken_during_uploads_restores_only_whole_avatars(
    running: RunningApp, db: AsyncDatabase, empty: AsyncDatabase, tmp_path: Path
) -> None:
    api = running.client()
    user = await api.sign_up("painter")
    images = [b64(image_bytes("PNG", size=(300, 300), color=(i * 40, 10, 10))) for i in range(6)]
    assert (await api.post(f"/user/update-image/{user['id']}", {"image": images[0]})).status == 200

    uploaded: list[int] = []

    async def keep_uploading() -> None:
        for n, image in enumerate(images[1:]):
            assert (await api.post(f"/user/update-image/{user['id']}", {"image": image})).status == 200
            uploaded.append(n)

    uploads = asyncio.create_task(keep_uploading())
    # The backup starts while uploads are under way: one has replaced the image, four are to come.
    await until(lambda: bool(uploaded) or uploads.done(), what="the first upload")
    await backup(db, tmp_path)
    await uploads
    await restore(empty, tmp_path)
    # From one snapshot: the user's image reference names files whose chunks are all there.
    image = (await empty.users.find_one({"_id": user["id"]}))["profile_image"]
    for resolution in ("high", "scaled"):
        stored = await empty["avatars.files"].find_one({"_id": image[resolution]})
        assert stored is not None, resolution
        chunks = await empty["avatars.chunks"].find({"files_id": image[resolution]}).sort("n", 1).to_list(None)
        assert sum(len(c["data"]) for c in chunks) == stored["length"] > 0


async def test_a_backup_that_stays_inconsistent_is_refused(db: AsyncDatabase, tmp_path: Path) -> None:
    # A reference to an image file that is not stored (as a backup racing an upload would read it
    # without a working snapshot): every attempt finds it, so no backup is claimed.
    await db.users.insert_one({"_id": "u1", "username": "x", "profile_image": {"high": "missing", "scaled": "gone"}})
    with pytest.raises(BackupRaced, match="u1's high image missing"):
        await backup(db, tmp_path)
    assert not (tmp_path / MANIFEST).exists()


async def test_a_backup_taken_while_users_register_and_rate_restores_consistent_data(
    running: RunningApp, db: AsyncDatabase, empty: AsyncDatabase, tmp_path: Path
) -> None:
    await load_catalog(db, CATALOG)

    async def readers(worker: int) -> None:
        for i in range(worker, 16, 4):
            api = running.client()
            await api.sign_up(f"Reader{i}")
            for series_id in (1, 2):
                assert (await api.post(f"/user/series-rating/add/{series_id}", {"rating": 1 + i % 9})).status == 200
            assert (await api.post("/user/series-rating/update/1", {"rating": 10 - i % 9})).status == 200

    load = [asyncio.create_task(readers(worker)) for worker in range(4)]
    while not await db.series.count_documents({"rating_count": {"$gt": 0}}) and not any(t.done() for t in load):
        await asyncio.sleep(0.01)
    await backup(db, tmp_path)
    await asyncio.gather(*load)
    restored = await restore(empty, tmp_path)
    assert restored.repaired == []  # the backup itself was consistent
    assert 0 < restored.documents["users"] == restored.documents["usernames"]
    users = await empty.users.find({}, {"username": 1}).to_list(None)
    names = {row["_id"]: row["user_id"] for row in await empty.usernames.find({}).to_list(None)}
    assert names == {user["username"].lower(): user["_id"] for user in users}
    assert await RatingStore(empty).recount(repair=False) == []


def rewrite(dump: Path, collection: str, change: Any) -> None:
    """Edits a backup's documents of `collection` with `change` (list -> list), and its manifest
    to match: an inconsistent backup that is not damaged."""
    manifest = json.loads((dump / MANIFEST).read_text())
    entry = next(e for e in manifest["files"] if e["collection"] == collection and e["path"].endswith(".bson"))
    path = dump / entry["path"]
    documents = change(list(bson.decode_all(path.read_bytes())))
    path.write_bytes(b"".join(bson.encode(document) for document in documents))
    entry.update(documents=len(documents), bytes=path.stat().st_size,
                 sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    (dump / MANIFEST).write_text(json.dumps(manifest))


async def test_a_backup_whose_names_and_users_disagree_is_refused_by_restore(
    db: AsyncDatabase, empty: AsyncDatabase, tmp_path: Path
) -> None:
    await add_users(db, "Alice", "bob")
    await backup(db, tmp_path)
    rewrite(tmp_path, "usernames", lambda rows: [row for row in rows if row["_id"] != "alice"])
    with pytest.raises(BackupInconsistent,
                       match="nothing was restored: user u-Alice \\('Alice'\\) has no usernames row"):
        await restore(empty, tmp_path)
    assert await empty.list_collection_names() == []
    rewrite(tmp_path, "usernames", lambda rows: [*rows, {"_id": "alice", "user_id": "u-bob"}])
    with pytest.raises(BackupInconsistent, match="user u-Alice's name 'alice' is the usernames row of user u-bob"):
        await restore(empty, tmp_path)
    assert await empty.list_collection_names() == []


async def test_restore_sets_rating_aggregates_that_differ_from_the_ratings_and_says_so(
    db: AsyncDatabase, empty: AsyncDatabase, mongo_uri: str, tmp_path: Path
) -> None:
    await db.series.insert_many([{"_id": 1, "title": "Drifted", "rating_count": 2, "rating_half_points": 30},
                                 {"_id": 2, "title": "Right", "rating_count": 1, "rating_half_points": 8}])
    await db.users.insert_many([
        {"_id": "u-a", "username": "a", "ratings": [{"series_id": 1, "rating": 7}, {"series_id": 2, "rating": 4}]},
        {"_id": "u-b", "username": "b", "ratings": [{"series_id": 1, "rating": 8}]}])
    await db.usernames.insert_many([{"_id": "a", "user_id": "u-a"}, {"_id": "b", "user_id": "u-b"}])
    await backup(db, tmp_path)
    rewrite(tmp_path, "series", lambda series: [{**s, "rating_count": 5} if s["_id"] == 1 else s for s in series])
    result = await asyncio.to_thread(run_command, ["restore", str(tmp_path)],
                                     service_env(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=empty.name))
    assert result.returncode == 0, result.stderr
    assert ("restore: repaired: series 1's rating aggregates (count 5, half points 30) differ from its users' "
            "ratings (count 2, half points 30); set to the ratings'") in result.stdout
    assert "series 2" not in result.stdout
    assert await contents(empty) == await contents(db)  # the true aggregates, as the database had them
    assert await RatingStore(empty).recount(repair=False) == []


async def test_the_commands_back_up_and_restore_through_mongodb_uri(
    running: RunningApp, db: AsyncDatabase, empty: AsyncDatabase, mongo_uri: str, tmp_path: Path
) -> None:
    await populated(running, db)
    dump = tmp_path / "dump"
    source = service_env(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=db.name)
    made = await asyncio.to_thread(run_command, ["backup", str(dump), "--gzip"], source)
    assert made.returncode == 0, made.stderr
    assert f"backup: {db.name}/users.bson.gz: 3 documents" in made.stdout
    target = service_env(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB=empty.name)
    first = await asyncio.to_thread(run_command, ["restore", str(dump)], target)
    assert first.returncode == 0, first.stderr
    assert "restore: users: 3 documents" in first.stdout
    again = await asyncio.to_thread(run_command, ["restore", str(dump)], target)
    assert again.returncode == 1 and "not empty" in again.stderr
    assert await contents(empty) == await contents(db)


async def test_restoring_what_is_no_backup_is_refused_before_a_data_directory_is_made(tmp_path: Path) -> None:
    # The embedded default would create DATA_DIR (and a database in it) on opening.
    (tmp_path / "not-a-backup").mkdir()
    data = tmp_path / "data"
    refused = await asyncio.to_thread(run_command, ["restore", str(tmp_path / "not-a-backup")], service_env(data))
    assert refused.returncode == 1 and f"is not a backup: it holds no {MANIFEST}" in refused.stderr, refused.stderr
    assert not data.exists()


async def test_restoring_a_damaged_backup_is_refused_before_a_data_directory_is_made(
    db: AsyncDatabase, tmp_path: Path
) -> None:
    # Found by a newcomer: one byte changed, the size the same, and the restore made a database
    # before it found out.
    await add_users(db, "alice")
    dump = tmp_path / "dump"
    await backup(db, dump)
    users = next(dump.rglob("users.bson"))
    damaged = bytearray(users.read_bytes())
    damaged[-2] ^= 0xFF
    users.write_bytes(bytes(damaged))
    data = tmp_path / "data"
    refused = await asyncio.to_thread(run_command, ["restore", str(dump)], service_env(data))
    assert refused.returncode == 1 and "users.bson is missing or differs from the manifest" in refused.stderr
    assert not data.exists()


async def test_an_interrupted_backup_leaves_the_previous_one_whole_and_restorable(
    db: AsyncDatabase, empty: AsyncDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.series.insert_one({"_id": 1, "title": "Kept"})
    await add_users(db, "one", "two")
    dump = tmp_path / "dump"
    await backup(db, dump)
    manifest = (dump / MANIFEST).read_text()
    # Both change: written in place, the series file would already differ from the manifest.
    await db.series.insert_one({"_id": 2, "title": "Added"})
    await add_users(db, "three")
    opened = backup_module._open

    def full_disk_at_users(path: Path, mode: str, compressed: bool) -> IO[bytes]:
        if mode == "wb" and path.name.startswith("users."):  # after series, which is written first
            raise OSError("No space left on device")
        return opened(path, mode, compressed)

    monkeypatch.setattr(backup_module, "_open", full_disk_at_users)
    with pytest.raises(OSError, match="No space left"):
        await backup(db, dump, replace=True)
    monkeypatch.undo()
    assert (dump / MANIFEST).read_text() == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["dump"]  # the half-written one is gone
    restored = await restore(empty, dump)
    assert (restored.documents["series"], restored.documents["users"]) == (1, 2)


async def test_a_second_backup_replaces_the_first_whole(
    db: AsyncDatabase, empty: AsyncDatabase, tmp_path: Path
) -> None:
    await add_users(db, "one")
    await db.dropped.insert_one({"_id": 1})
    dump = tmp_path / "dump"
    await backup(db, dump)
    assert (dump / db.name / "dropped.bson").exists()
    await db.dropped.drop()
    await add_users(db, "two")
    # What a backup killed midway leaves beside DIR: the next one removes it.
    dead = await asyncio.to_thread(subprocess.Popen, [sys.executable, "-c", ""])
    await asyncio.to_thread(dead.wait)
    leftover = tmp_path / f"dump.partial-{dead.pid}"
    (leftover / db.name).mkdir(parents=True)
    (leftover / db.name / "users.bson").write_bytes(b"half")
    with pytest.raises(BackupRefused, match="holds a backup"):
        await backup(db, dump)  # never overwritten unless asked
    await backup(db, dump, replace=True)
    assert [p.name for p in tmp_path.iterdir()] == ["dump"]  # neither the old backup nor the leftover
    assert not (dump / db.name / "dropped.bson").exists()
    assert "dropped" not in {f.collection for f in read_manifest(dump)}
    restored = await restore(empty, dump)
    assert restored.documents["users"] == 2 and "dropped" not in restored.documents


async def test_a_directory_that_is_not_a_backup_is_refused_and_left_alone(db: AsyncDatabase, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    with pytest.raises(BackupRefused, match="holds no backup"):
        await backup(db, home)
    # The command refuses it before it starts any database.
    result = await asyncio.to_thread(run_command, ["backup", str(home)], service_env(tmp_path / "data"), 30)
    assert result.returncode == 1
    assert f"backup: {home} is not empty and holds no backup" in result.stderr
    assert not (tmp_path / "data" / "db").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == ["home"]
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt", "photos"]
    assert (home / "notes.txt").read_text() == "mine"
