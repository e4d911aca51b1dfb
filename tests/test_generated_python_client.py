"""A Python client generated from the served /openapi.json by openapi-python-client (the usual
generator), with the repository's generator settings (clients/python/openapi-python-client.yml:
an image and a MyAnimeList file are bytes). The generator must print no warning: every operation,
body and answer is generated. Two tours through the generated functions, with no hand-written
request: a reader's whole use of the service (issue 33), and a personal token within its scopes
(issue 30, point 4)."""

from __future__ import annotations

import asyncio
import importlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.api_client import ApiClient
from tests.catalog_data import series, volume
from tests.conftest import RunningApp
from tests.images import b64, image_bytes
from tests.service_process import ROOT

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1)]), series(2, "Berserk")]
PACKAGE = "tsundoku_generated_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
GENERATOR_SETTINGS = ROOT / "clients" / "python" / "openapi-python-client.yml"


@pytest.fixture
def generated_package(tmp_path: Path) -> Iterator[Path]:
    """Where the package goes; taken out of sys.path and sys.modules after the test."""
    sys.path.insert(0, str(tmp_path))
    yield tmp_path / PACKAGE
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
        del sys.modules[name]


async def generate(running: RunningApp, package: Path) -> None:
    document = await running.client().get("/openapi.json")
    assert document.status == 200
    spec = package.parent / "openapi.json"
    spec.write_bytes(document.raw)
    # The generator formats its output with ruff, found on PATH (the venv's).
    environment = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = await asyncio.create_subprocess_exec(
        str(GENERATOR), "generate", "--path", str(spec), "--meta", "none", "--output-path", str(package),
        "--config", str(GENERATOR_SETTINGS),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=environment)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    # Any warning means a part of the document was not generated (an operation, a body, an answer).
    assert "warning" not in output.decode().lower(), output.decode()


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def made_token(api: ApiClient, scopes: list[str]) -> str:
    reply = await api.post("/auth/tokens", {"name": f"tracker ({', '.join(scopes)})", "scopes": scopes,
                                            "expires_in_days": 30})
    assert reply.status == 201, reply.body
    return str(reply.body["token"])


async def test_a_generated_python_client_works_with_a_personal_token_within_its_scope(
    running: RunningApp, catalog: None, generated_package: Path
) -> None:
    api = running.client()
    assert (await api.register("alice")).status == 201 and (await api.login("alice")).status == 200
    read_token, write_token = await made_token(api, ["read"]), await made_token(api, ["write"])
    await generate(running, generated_package)

    client_module = module("client")
    add_to_collection = module("api.collection.post_user_collection_add_id")
    collection = module("api.collection.get_user_collection")
    rate = module("api.ratings.post_user_series_rating_add_id")
    my_rating = module("api.ratings.get_user_series_rating_id")
    history = module("api.reading.get_user_reading_history")
    me = module("api.profiles.get_user_me")
    tokens = module("api.auth.get_auth_tokens")
    make_token = module("api.auth.post_auth_tokens")
    change_password = module("api.auth.post_auth_change_password")
    delete_account = module("api.account.delete_user_account")
    models = module("models")

    def as_client(token: str) -> Any:
        return client_module.AuthenticatedClient(base_url=running.base_url, token=token)

    async with as_client(read_token) as reader, as_client(write_token) as writer:
        # read: every GET of the user's own data, and nothing else.
        profile = await me.asyncio_detailed(client=reader)
        assert profile.status_code == 200 and profile.parsed.username == "alice"
        assert (await history.asyncio_detailed(client=reader, client_query=1)).status_code == 200
        added = await add_to_collection.asyncio_detailed("11", client=reader, body=models.CollectionAddBody())
        assert added.status_code == 403
        assert (await rate.asyncio_detailed("1", client=reader, body=models.RatingBody(rating=8))).status_code == 403

        # write: also the writes to the user's lists.
        added = await add_to_collection.asyncio_detailed("11", client=writer, body=models.CollectionAddBody())
        assert added.status_code in (200, 201), added.content
        page = await collection.asyncio_detailed(client=reader, client_query=1)
        assert page.status_code == 200 and page.parsed.max_ == 1
        rated = await rate.asyncio_detailed("1", client=writer, body=models.RatingBody(rating=8))
        assert rated.status_code in (200, 201), rated.content
        rating = await my_rating.asyncio_detailed("1", client=reader)
        assert rating.status_code == 200 and rating.parsed.rating == 8

        # Neither: tokens, the password, the account.
        for client in (reader, writer):
            assert (await tokens.asyncio_detailed(client=client)).status_code == 403
            request = models.PersonalTokenRequest(name="more", scopes=[models.PersonalTokenRequestScopesItem("write")],
                                                  expires_in_days=1)
            assert (await make_token.asyncio_detailed(client=client, body=request)).status_code == 403
            change = models.PasswordChange(current_password="correct horse", new_password="battery staple")
            assert (await change_password.asyncio_detailed(client=client, body=change)).status_code == 403
            confirmation = models.PasswordConfirmation(password="correct horse")
            assert (await delete_account.asyncio_detailed(client=client, body=confirmation)).status_code == 403

    # Revoked from the account's own session: the generated client gets 401 at once.
    listed = (await api.get("/auth/tokens")).body["tokens"]
    for token in listed:
        assert (await api.delete(f"/auth/tokens/{token['id']}")).status == 200
    async with as_client(read_token) as reader:
        assert (await me.asyncio_detailed(client=reader)).status_code == 401


async def test_a_generated_python_client_makes_the_whole_tour_with_no_hand_written_request(
    running: RunningApp, catalog: None, generated_package: Path
) -> None:
    await generate(running, generated_package)
    client_module, models, types = module("client"), module("models"), module("types")
    register, login = module("api.auth.post_auth_register"), module("api.auth.post_auth_login")
    add_status = module("api.reading.post_user_reading_status_add_id")
    update_status = module("api.reading.post_user_reading_status_update_id")
    history = module("api.reading.get_user_reading_history")
    reading_stats = module("api.reading.get_user_reading_stats")
    rate, my_rating = module("api.ratings.post_user_series_rating_add_id"), module("api.ratings.get_user_series_rating_id")
    add_item, collection = module("api.collection.post_user_collection_add_id"), module("api.collection.get_user_collection")
    collection_stats = module("api.collection.get_user_collection_stats_general")
    save_settings = module("api.settings.post_users_id_save_settings")
    upload, avatar = module("api.profile_images.post_user_update_image_id"), module("api.profile_images.get_user_avatar_id_res")
    me, export = module("api.profiles.get_user_me"), module("api.account.get_user_export")
    export_mal, import_mal = module("api.account.get_user_export_mal"), module("api.account.post_user_import_mal")

    async with client_module.Client(base_url=running.base_url) as anonymous:
        credentials = models.Credentials(username="reader", password="correct horse")
        assert (await register.asyncio_detailed(client=anonymous, body=credentials)).status_code == 201
        signed_in = await login.asyncio_detailed(client=anonymous, body=credentials)
        assert signed_in.status_code == 200, signed_in.content

    async with client_module.AuthenticatedClient(base_url=running.base_url,
                                                 token=signed_in.parsed.access_token) as reader:
        profile = (await me.asyncio_detailed(client=reader)).parsed
        assert profile.username == "reader"

        # Statuses and the history, in the document's own names and values.
        status = models.ReadingStatusBody(
            visibility=models.ReadingStatusBodyVisibilityType0("public"),
            progress_type=models.ReadingStatusBodyProgressTypeType0("volumes"), progress=1,
            status=models.ReadingStatusBodyStatusType0("started"),
            priority=models.ReadingStatusBodyPriorityType0("high"), client=1, start="2024-05")
        assert (await add_status.asyncio_detailed("1", client=reader, body=status)).status_code == 200
        status.progress, status.status = 3, models.ReadingStatusBodyStatusType0("completed")
        assert (await update_status.asyncio_detailed("1", client=reader, body=status)).status_code == 200
        page = (await history.asyncio_detailed(client=reader, client_query=1)).parsed
        entry = page.series[0].reading_history
        assert (page.max_, entry.progress, entry.status.value, entry.start) == (1, 3, "completed", "2024-05")
        assert entry.last_update.tzinfo is not None  # a date-time, parsed as one

        # A rating, the collection, the settings.
        assert (await rate.asyncio_detailed("1", client=reader, body=models.RatingBody(rating=8.5))).status_code == 200
        assert (await my_rating.asyncio_detailed("1", client=reader)).parsed.rating == 8.5
        bought = models.CollectionAddBody(price=9.99, date=__import__("datetime").date(2024, 5, 17))
        assert (await add_item.asyncio_detailed("11", client=reader, body=bought)).status_code == 200
        listed = (await collection.asyncio_detailed(client=reader, client_query=1)).parsed
        assert (listed.max_, listed.volumes[0].collection.price) == (1, 9.99)
        assert str(listed.volumes[0].collection.buy_date) == "2024-05-17"
        dark = models.SettingsBody(theme=models.SettingsBodyThemeType0("dark"))
        assert (await save_settings.asyncio_detailed(profile.id, client=reader, body=dark)).status_code == 200

        # An avatar up and back.
        image = models.ImageUpload(image=b64(image_bytes("PNG", (64, 64))))
        assert (await upload.asyncio_detailed(profile.id, client=reader, body=image)).status_code == 200
        shown = await avatar.asyncio_detailed(profile.id, models.GetUserAvatarIdResRes("scaled"), client=reader)
        assert shown.status_code == 200 and shown.parsed.payload.read(12)[8:] == b"WEBP"

        # The figures.
        figures = (await reading_stats.asyncio_detailed(client=reader, client_query=1)).parsed
        assert figures is not None
        spent = (await collection_stats.asyncio_detailed(client=reader, client_query=1)).parsed
        assert spent.total_spent == 9.99

        # The account file, and the MyAnimeList file taken back in as a dry run.
        exported = (await export.asyncio_detailed(client=reader)).parsed
        assert (exported.profile.username, exported.settings.theme.value) == ("reader", "dark")
        assert [s.series_id for s in exported.reading_statuses] == [1]
        mal_file = (await export_mal.asyncio_detailed(client=reader)).parsed
        assert isinstance(mal_file, types.File)
        # The generated code sends a File's payload (a file object) as it is, which only httpx's
        # blocking client reads: the generated blocking function, in a thread.
        with client_module.AuthenticatedClient(base_url=running.base_url,
                                               token=signed_in.parsed.access_token) as blocking:
            dry_run = await asyncio.to_thread(
                import_mal.sync_detailed, client=blocking, body=types.File(payload=io.BytesIO(mal_file.payload.read())),
                mode=models.PostUserImportMalMode("dry-run"))
        assert dry_run.status_code == 200, dry_run.content
        assert (dry_run.parsed.applied, dry_run.parsed.counts.unchanged) == (False, 1)
