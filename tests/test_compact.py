"""`server.py compact` on a real data directory: the service's, populated through its API and
grown by rewrites, compacted with the service stopped, then every document and index compared and
the service started on it again; killed halfway, it leaves the database as it was; refused
while the service runs and on MongoDB."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from storage.database import connect, database
from storage.embedded import EmbeddedDatabase
from tests.api_client import ApiClient
from tests.bodies import STATUS
from tests.images import b64, image_bytes
from tests.service_process import ROOT, run_command, running_service, service_env
from tests.waiting import until

pytestmark = pytest.mark.asyncio

SIZES = re.compile(r"went from ([0-9.]+) MiB to ([0-9.]+) MiB")


async def everything(data_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """Every document of every collection of the service's database, and every index name, read
    from the data directory's own files (the service stopped)."""
    server = EmbeddedDatabase(data_dir / "db", log_file=data_dir / "secantusd.log")
    await server.start_async()
    try:
        client = connect(server.uri)
        try:
            db = database(client, Settings().mongodb_db)
            names = sorted(await db.list_collection_names())
            documents = {name: await db[name].find({}).sort("_id", 1).to_list(None) for name in names}
            indexes = {name: sorted([index["name"] async for index in await db[name].list_indexes()])
                       for name in names}
            return documents, indexes
        finally:
            await client.close()
    finally:
        await server.stop_async()


async def populate(api: ApiClient, other: ApiClient, rewrites: int) -> None:
    """Two readers with lists, a rating, a volume owned and an avatar (on the demo catalog); then
    `rewrites` changes of one status, each of which rewrites the user's document, and a third
    reader made and deleted (the files grow with them)."""
    alice = await api.sign_up("alice")
    await other.sign_up("bob")
    assert (await api.post(f"/user/update-image/{alice['id']}", {"image": b64(image_bytes("PNG"))})).status == 200
    listed = (await api.get("/series?client=1&limit=30")).body["series"]
    for series in listed:
        assert (await api.post(f"/user/reading-status/add/{series['id']}", STATUS)).status == 200
    first = listed[0]["id"]
    assert (await other.post(f"/user/reading-status/add/{first}", STATUS)).status == 200
    assert (await api.post(f"/user/series-rating/add/{first}", {"rating": 8})).status == 200
    volume = (await api.get(f"/series/volumes/{first}")).body["volumes"][0]["id"]
    assert (await api.post(f"/user/collection/add/{volume}", {"price": 9.99, "date": "2024-01-01"})).status == 200
    for progress in range(rewrites):
        update = {**STATUS, "progress": progress}
        assert (await api.post(f"/user/reading-status/update/{first}", update)).status == 200
    # A third reader with long notes that do not compress, whose account is then deleted: what
    # the files keep of it (its oplog entries, the pages it took) is space the live data no
    # longer needs. (Measured: SecantusDB reuses a rewritten document's pages, and its oplog
    # keeps an update's changes, so rewrites alone grow the files little.)
    gone = ApiClient(api.base_url)
    await gone.sign_up("gone")
    for series in (await gone.get("/series?client=1&limit=60")).body["series"]:
        noted = {**STATUS, "notes": base64.b64encode(os.urandom(7_000)).decode()}
        assert (await gone.post(f"/user/reading-status/add/{series['id']}", noted)).status == 200
    assert (await gone.delete("/user/account", json_body={"password": "correct horse"})).status == 200


async def test_compact_killed_halfway_changes_nothing_then_gives_space_back_keeping_everything(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with running_service(data_dir) as service:
        await populate(service.client(), service.client(), rewrites=50)
    before = await everything(data_dir)
    assert len(before[0]["users"]) == 2 and before[0]["avatars.files"]
    env = service_env(data_dir)
    work = data_dir / "compact-work"

    # Killed once the new database exists, while the backup is restored into it.
    process = subprocess.Popen([sys.executable, "server.py", "compact"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await until(lambda: (work / "db").is_dir() or process.poll() is not None, timeout_s=120,
                    what="the new database started")
        assert process.poll() is None, "compact ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert work.exists()  # what the killed run left: copies only
    # Its new database died with it (the launcher's parent-death signal): the directory is free.
    await until(lambda: not _holds_open_files(work), timeout_s=30, what="the killed run's database gone")
    assert await everything(data_dir) == before

    result = await asyncio.to_thread(run_command, ["compact"], env, 300)
    assert result.returncode == 0, result.stderr
    sizes = SIZES.search(result.stdout)
    assert sizes is not None, result.stdout
    assert float(sizes.group(2)) < float(sizes.group(1)), result.stdout
    assert "users: 2 documents" in result.stdout
    assert not work.exists()  # the killed run's leftovers too
    assert sorted(p.name for p in data_dir.iterdir() if p.name.startswith("db")) == ["db", "db-credentials.json"]
    assert await everything(data_dir) == before  # every document, every avatar byte, every index

    async with running_service(data_dir) as again:
        api = again.client()
        signed_in = await api.login("alice")
        assert signed_in.status == 200
        avatar = await api.get(f"/user/avatar/{signed_in.body['user']['id']}/scaled", send_cookies=False)
        assert avatar.status == 200
        refused = await asyncio.to_thread(run_command, ["compact"], again.env)
        assert refused.returncode == 1 and "stop it first" in refused.stderr, refused.stderr
        assert (await api.get("/auth/me")).status == 200
    assert "imported the demo catalog" not in again.output()


async def test_compact_is_refused_on_mongodb(tmp_path: Path, mongo_uri: str) -> None:
    external = await asyncio.to_thread(run_command, ["compact"], service_env(tmp_path / "other", MONGODB_URI=mongo_uri))
    assert external.returncode == 2 and "for the embedded database" in external.stderr


def _holds_open_files(directory: Path) -> bool:
    """Whether any process has a file under `directory` open (a database still running there)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(directory)):
                    return True
        except OSError:
            continue
    return False
