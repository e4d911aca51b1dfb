"""POST /users/:id/save-settings: merge, validation, and who may change whose settings."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from tests.api_client import ApiClient
from tests.conftest import CommandCounter, RunningApp
from tests.roles import make_admin, set_roles

pytestmark = pytest.mark.asyncio

SAVED = {"data": "Settings saved successfully", "code": 200}
NEEDS_AGE_VERIFICATION = {"data": "Showing 18+ content needs an age-verified account", "code": 403, "errors": [
    {"field": "nsfw-mode", "message": "Showing 18+ content needs an age-verified account"}]}
SPEC_EXAMPLE = {
    "theme-accent-color": "#6394c6",
    "prefered-content-language": "interface",
    "theme": "light",
    "nsfw-mode": "settings.nsfw.show-nsfw",
    "view-mode": "column",
    "show-drag-indicator": False,
}


async def test_saving_the_spec_example_answers_200_and_shows_in_me(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    reply = await api.post(f"/users/{user['id']}/save-settings", SPEC_EXAMPLE)
    assert (reply.status, reply.body) == (200, SAVED)
    # The spec's six, and the collection's visibility (issue 17) at its default.
    assert (await api.get("/auth/me")).body["user"]["settings"] == {**SPEC_EXAMPLE, "collection-visibility": "private"}


async def test_the_wrapped_body_form_is_accepted(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    reply = await api.post(f"/users/{user['id']}/save-settings", {"settings": {"theme": "dark"}})
    assert (reply.status, reply.body) == (200, SAVED)
    assert (await api.get("/auth/me")).body["user"]["settings"]["theme"] == "dark"


async def test_saving_merges_into_what_is_stored(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    path = f"/users/{user['id']}/save-settings"
    await api.post(path, {"theme": "dark"})
    await api.post(path, {"view-mode": "grid"})
    settings = (await api.get("/auth/me")).body["user"]["settings"]
    assert settings["theme"] == "dark" and settings["view-mode"] == "grid"
    assert settings["theme-accent-color"] == "#71c94e"


async def test_enum_values_are_accepted_as_key_objects(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    reply = await api.post(f"/users/{user['id']}/save-settings",
                           {"theme": {"key": "system"}, "view-mode": {"key": "list"}})
    assert reply.status == 200
    settings = (await api.get("/auth/me")).body["user"]["settings"]
    assert (settings["theme"], settings["view-mode"]) == ("system", "list")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"theme": "blue"}, "theme"),
        ({"theme": None}, "theme"),
        ({"theme-accent-color": "#12345"}, "theme-accent-color"),
        ({"theme-accent-color": "red"}, "theme-accent-color"),
        ({"prefered-content-language": "xx"}, "prefered-content-language"),
        ({"nsfw-mode": "show"}, "nsfw-mode"),
        ({"view-mode": {"key": "table"}}, "view-mode"),
        ({"show-drag-indicator": "true"}, "show-drag-indicator"),
        ({"show-drag-indicator": 1}, "show-drag-indicator"),
        ({"unknown-key": 1}, "unknown-key"),
        ({"$set": {"roles": ["admin"]}}, "$set"),
    ],
)
async def test_a_bad_key_or_value_answers_400_naming_the_field(api: ApiClient, body: dict, field: str) -> None:
    user = await api.sign_up("alice")
    reply = await api.post(f"/users/{user['id']}/save-settings", body)
    assert reply.status == 400
    assert reply.body["data"] == "Invalid parameters"
    assert [e["field"] for e in reply.body["errors"]] == [field]
    assert (await api.get("/auth/me")).body["user"]["roles"] == ["member"]


async def test_an_invalid_value_saves_nothing_of_the_body(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    reply = await api.post(f"/users/{user['id']}/save-settings", {"theme": "dark", "view-mode": "bad"})
    assert reply.status == 400
    assert (await api.get("/auth/me")).body["user"]["settings"]["theme"] == "light"


@pytest.mark.parametrize("body", [None, {}, {"settings": {}}])
async def test_an_empty_body_answers_400_missing(api: ApiClient, body: dict | None) -> None:
    user = await api.sign_up("alice")
    reply = await api.post(f"/users/{user['id']}/save-settings", body)
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")
    assert reply.body["errors"] == [{"field": "body", "message": "At least one setting is required"}]


async def test_an_empty_user_id_answers_400_missing(api: ApiClient) -> None:
    await api.sign_up("alice")
    reply = await api.post("/users//save-settings", {"theme": "dark"})
    assert (reply.status, reply.body) == (400, {"data": "Required parameters missing", "code": 400,
                                                "errors": [{"field": "id", "message": "Field required"}]})


async def test_saving_without_a_session_answers_401(api: ApiClient) -> None:
    reply = await api.post("/users/anything/save-settings", {"theme": "dark"})
    assert (reply.status, reply.body) == (401, {"data": "Unauthorized", "code": 401})


async def test_nsfw_18_needs_an_age_verified_user(api: ApiClient, db: AsyncDatabase) -> None:
    user = await api.sign_up("alice")
    path = f"/users/{user['id']}/save-settings"
    reply = await api.post(path, {"nsfw-mode": "settings.nsfw.show-nsfw-18"})
    # Says why (not the bare "Forbidden" of another user's settings), naming the field.
    assert (reply.status, reply.body) == (403, NEEDS_AGE_VERIFICATION)
    await db.users.update_one({"_id": user["id"]}, {"$set": {"age_verified": True}})
    assert (await api.post(path, {"nsfw-mode": "settings.nsfw.show-nsfw-18"})).status == 200
    assert (await api.get("/auth/me")).body["user"]["settings"]["nsfw-mode"] == "settings.nsfw.show-nsfw-18"


async def test_changing_another_users_settings_answers_403(running: RunningApp, api: ApiClient) -> None:
    await api.sign_up("alice")
    bob = running.client()
    bob_user = await bob.sign_up("bob")
    reply = await api.post(f"/users/{bob_user['id']}/save-settings", {"theme": "dark"})
    assert (reply.status, reply.body) == (403, {"data": "Forbidden", "code": 403})
    assert (await bob.get("/auth/me")).body["user"]["settings"]["theme"] == "light"


async def test_an_admin_changes_another_users_settings(running: RunningApp, api: ApiClient, db: AsyncDatabase) -> None:
    await make_admin(db, (await api.sign_up("root"))["id"])
    bob = running.client()
    bob_user = await bob.sign_up("bob")
    reply = await api.post(f"/users/{bob_user['id']}/save-settings", {"theme": "dark"})
    assert (reply.status, reply.body) == (200, SAVED)
    assert (await bob.get("/auth/me")).body["user"]["settings"]["theme"] == "dark"


async def test_an_admin_cannot_give_an_unverified_user_nsfw_18(running: RunningApp, api: ApiClient, db: AsyncDatabase) -> None:
    await make_admin(db, (await api.sign_up("root"))["id"])
    bob_user = await running.client().sign_up("bob")
    reply = await api.post(f"/users/{bob_user['id']}/save-settings", {"nsfw-mode": "settings.nsfw.show-nsfw-18"})
    assert (reply.status, reply.body) == (403, NEEDS_AGE_VERIFICATION)


async def test_an_admin_naming_an_unknown_user_gets_404(api: ApiClient, db: AsyncDatabase) -> None:
    await make_admin(db, (await api.sign_up("root"))["id"])
    reply = await api.post("/users/000000000000000000000000/save-settings", {"theme": "dark"})
    assert (reply.status, reply.body) == (404, {"data": "User not found", "code": 404})


async def test_text_that_is_no_user_id_is_forbidden_to_a_user_and_not_found_for_an_admin(
        running: RunningApp, api: ApiClient, db: AsyncDatabase, commands: CommandCounter) -> None:
    root = await api.sign_up("root")
    for odd in ("not-an-id", "A" * 24, "0" * 25):
        reply = await api.post(f"/users/{odd}/save-settings", {"theme": "dark"})
        assert (reply.status, reply.body) == (403, {"data": "Forbidden", "code": 403}), odd
    await make_admin(db, root["id"])
    for odd in ("not-an-id", "A" * 24, "0" * 25):
        commands.reset()
        reply = await api.post(f"/users/{odd}/save-settings", {"theme": "dark"})
        assert (reply.status, reply.body) == (404, {"data": "User not found", "code": 404}), odd
        assert commands.targets() == [("find", "users")]  # the session's query only: never the settings' write
    document = (await api.get("/openapi.json")).body
    [parameter] = [p for p in document["paths"]["/users/{id}/save-settings"]["post"]["parameters"] if p["in"] == "path"]
    assert parameter["schema"] == {"type": "string", "pattern": "^[0-9a-f]{24}$"}


async def test_a_banned_user_still_saves_own_settings(api: ApiClient, db: AsyncDatabase) -> None:
    user = await api.sign_up("alice")
    await set_roles(db, user["id"], "banned")
    me = (await api.get("/auth/me")).body["user"]
    assert me["roles"] == ["banned"] and me["permissions"] == []
    assert (await api.post(f"/users/{user['id']}/save-settings", {"theme": "dark"})).status == 200


async def test_a_user_deleted_mid_session_gets_404_on_save(api: ApiClient, db: AsyncDatabase, running: RunningApp) -> None:
    await make_admin(db, (await api.sign_up("root"))["id"])
    bob_user = await running.client().sign_up("bob")
    await db.users.delete_one({"_id": bob_user["id"]})
    reply = await api.post(f"/users/{bob_user['id']}/save-settings", {"theme": "dark"})
    assert reply.status == 404


async def test_a_stored_value_that_is_no_longer_valid_reads_as_its_default(api: ApiClient, db: AsyncDatabase) -> None:
    user = await api.sign_up("alice")
    await db.users.update_one({"_id": user["id"]}, {"$set": {"settings": {"theme": "neon", "view-mode": "grid",
                                                                          "retired-key": 1}}})
    settings = (await api.get("/auth/me")).body["user"]["settings"]
    assert (settings["theme"], settings["view-mode"]) == ("light", "grid")
    assert "retired-key" not in settings
