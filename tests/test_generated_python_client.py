"""A Python client generated from the served /openapi.json by openapi-python-client (the usual
generator), authenticating with a personal token (issue 30, point 4): what a tracker or reading
app written against the document does. Each scope reaches what it declares and is refused the rest,
through the generated functions, with no hand-written request.

What the generator still skips (the reading-status writes, the account import; issue 33) is not
used here: the collection and ratings are the list writes it does generate."""

from __future__ import annotations

import asyncio
import importlib
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

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1)]), series(2, "Berserk")]
PACKAGE = "tsundoku_generated_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


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
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=environment)
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


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
