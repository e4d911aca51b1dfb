"""Profile images: formats, validation, processing, GridFS storage and replacement, serving."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from gridfs import AsyncGridFSBucket
from pymongo.asynchronous.database import AsyncDatabase

from storage.avatars import AvatarStore
from storage.users import UserStore
from tests.api_client import ApiClient
from tests.conftest import CommandCounter, FailPoints, RunningApp, StartApp
from tests.images import b64, data_url, image_bytes, opened, photo_with_exif, two_frame_gif
from tests.roles import make_admin, set_roles

pytestmark = pytest.mark.asyncio

UPDATED = {"data": "Profile image updated successfully", "code": 200}
NO_IMAGE = {"data": "Profile image not found", "code": 404}


async def upload(api: ApiClient, user_id: str, image: str, admin: bool = False) -> Any:
    prefix = "/admin-users" if admin else "/user"
    return await api.post(f"{prefix}/update-image/{user_id}", {"image": image})


async def served(api: ApiClient, user_id: str, res: str = "scaled", **headers: str) -> Any:
    return await api.get(f"/user/avatar/{user_id}/{res}", headers=headers, send_cookies=False)


@pytest.mark.parametrize("fmt, mode", [("JPEG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGB"), ("GIF", "P")])
async def test_each_accepted_format_is_stored_in_two_sizes(api: ApiClient, alice: dict, fmt: str, mode: str) -> None:
    reply = await upload(api, alice["id"], b64(image_bytes(fmt, (1600, 1200), mode=mode)))
    assert (reply.status, reply.body) == (200, UPDATED)
    scaled = await served(api, alice["id"], "scaled")
    assert scaled.status == 200 and scaled.headers["Content-Type"] == "image/webp"
    assert opened(scaled.raw).size == (256, 256)
    high = await served(api, alice["id"], "high")
    assert opened(high.raw).size == (1024, 768)


async def test_the_user_object_links_the_avatar_with_a_version(api: ApiClient, alice: dict) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG")))
    first = (await api.get("/auth/me")).body["user"]["profile_image"]
    assert first == f"/user/avatar/{alice['id']}/scaled?v=1"  # versions count up, in the database
    await upload(api, alice["id"], b64(image_bytes("PNG", color="blue")))
    second = (await api.get("/auth/me")).body["user"]["profile_image"]
    assert second == f"/user/avatar/{alice['id']}/scaled?v=2"


async def test_a_data_url_is_accepted_and_the_declared_type_is_ignored(api: ApiClient, alice: dict) -> None:
    reply = await upload(api, alice["id"], data_url(image_bytes("PNG"), "image/gif"))
    assert reply.status == 200
    assert (await served(api, alice["id"])).status == 200


async def test_only_the_first_gif_frame_is_kept(api: ApiClient, alice: dict) -> None:
    await upload(api, alice["id"], b64(two_frame_gif()))
    image = opened((await served(api, alice["id"], "high")).raw).convert("RGB")
    red, green, blue = image.getpixel((10, 10))
    assert red > 200 and blue < 60


async def test_exif_orientation_is_applied_and_all_metadata_dropped(api: ApiClient, alice: dict) -> None:
    await upload(api, alice["id"], b64(photo_with_exif(orientation=6)))
    raw = (await served(api, alice["id"], "high")).raw
    image = opened(raw)
    assert image.size == (200, 400)  # 400x200 turned upright
    # Orientation 6 turns the black left half to the top.
    assert image.convert("L").getpixel((100, 50)) < 60 and image.convert("L").getpixel((100, 350)) > 200
    assert dict(image.getexif()) == {}
    assert not {"exif", "icc_profile", "xmp"} & set(image.info)
    for secret in (b"SECRET-MAKER-NOTE", b"SecretCameraMaker", b"Exif"):
        assert secret not in raw
    assert b"SECRET-MAKER-NOTE" not in (await served(api, alice["id"], "scaled")).raw


async def test_small_images_are_never_upscaled_in_high(api: ApiClient, alice: dict) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG", (100, 50))))
    assert opened((await served(api, alice["id"], "high")).raw).size == (100, 50)
    assert opened((await served(api, alice["id"], "scaled")).raw).size == (256, 256)


async def test_a_wide_image_is_fit_within_1024(api: ApiClient, alice: dict) -> None:
    await upload(api, alice["id"], b64(image_bytes("JPEG", (3000, 1500))))
    assert opened((await served(api, alice["id"], "high")).raw).size == (1024, 512)


@pytest.mark.parametrize(
    "image, message",
    [
        (b64(image_bytes("PNG", (12000, 12000), mode="1")), "Image has too many pixels (at most 40 megapixels)"),
        (b64(image_bytes("JPEG", (800, 600))[:2000]), "Image data is truncated or corrupt"),
        (b64(b"just some text, not an image at all"), "Image must be JPEG, PNG, WebP or GIF"),
        (b64(image_bytes("BMP", (50, 50))), "Image must be JPEG, PNG, WebP or GIF"),
        (b64(b'<svg xmlns="http://www.w3.org/2000/svg"></svg>'), "Image must be JPEG, PNG, WebP or GIF"),
        ("this is not base64!", "Image is not valid base64"),
        ("data:image/png;base64,", "Image is empty"),
        ("", "Image is empty"),
    ],
)
async def test_bad_uploads_answer_400_saying_what_is_wrong(api: ApiClient, alice: dict, db: AsyncDatabase,
                                                           image: str, message: str) -> None:
    reply = await upload(api, alice["id"], image)
    assert (reply.status, reply.body["data"]) == (400, message)
    assert await AvatarStore(db, UserStore(db)).count_files() == 0
    assert (await api.get("/auth/me")).body["user"]["profile_image"] is None


async def test_a_decoded_image_over_the_limit_answers_400(start_app: StartApp) -> None:
    client = (await start_app(max_image_bytes=20_000)).client()
    user = await client.sign_up("alice")
    noise = image_bytes("PNG", (200, 200))  # small, fine
    assert (await upload(client, user["id"], b64(noise))).status == 200
    big = os.urandom(30_000)
    reply = await upload(client, user["id"], b64(big))
    assert (reply.status, reply.body["data"]) == (400, "Image is larger than 19.5312 KB")


async def test_an_oversized_body_answers_413_before_it_is_read(start_app: StartApp) -> None:
    client = (await start_app(max_image_bytes=20_000)).client()
    user = await client.sign_up("alice")
    reply = await client.post(f"/user/update-image/{user['id']}", {"image": "A" * 200_000})
    assert (reply.status, reply.body) == (413, {"data": "Request body too large", "code": 413})


async def test_other_routes_take_only_small_bodies(api: ApiClient, alice: dict) -> None:
    reply = await api.post(f"/users/{alice['id']}/save-settings", {"theme": "dark", "pad": "x" * 300_000})
    assert (reply.status, reply.body) == (413, {"data": "Request body too large", "code": 413})


async def test_the_upload_route_takes_a_full_size_image(start_app: StartApp) -> None:
    client = (await start_app()).client()  # the default 8 MiB limit
    user = await client.sign_up("alice")
    payload = b64(image_bytes("PNG", (16, 16)) + os.urandom(7 * 1024 * 1024))  # PNG with trailing data
    assert len(payload) > 9_000_000
    assert (await upload(client, user["id"], payload)).status == 200


async def test_missing_or_malformed_image_field_answers_400(api: ApiClient, alice: dict) -> None:
    reply = await api.post(f"/user/update-image/{alice['id']}", {})
    assert (reply.status, reply.body["data"]) == (400, "Required parameters missing")
    reply = await api.post(f"/user/update-image/{alice['id']}", {"image": 12})
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")


async def test_another_users_id_answers_403_on_the_self_routes(running: RunningApp, api: ApiClient, alice: dict,
                                                               db: AsyncDatabase) -> None:
    bob = await running.client().sign_up("bob")
    await make_admin(db, alice["id"])  # even an admin uses the admin routes for others
    reply = await upload(api, bob["id"], b64(image_bytes("PNG")))
    assert (reply.status, reply.body) == (403, {"data": "Forbidden", "code": 403})
    assert (await api.delete(f"/user/delete-image/{bob['id']}")).status == 403


async def test_text_that_is_no_user_id_answers_as_an_unknown_user(running: RunningApp, api: ApiClient, alice: dict,
                                                                  db: AsyncDatabase, commands: CommandCounter) -> None:
    # Refused by the routes' declaration (handlers.user_scope), with the answer an unknown id gets.
    for odd in ("not-an-id", "A" * 24):
        commands.reset()
        assert (await served(api, odd)).body == {"data": "Profile image not found", "code": 404}
        assert commands.targets() == []  # nothing is looked up for it
        assert (await upload(api, odd, b64(image_bytes("PNG")))).body == {"data": "Forbidden", "code": 403}
        assert (await api.delete(f"/user/delete-image/{odd}")).body == {"data": "Forbidden", "code": 403}
    await make_admin(db, alice["id"])
    for odd in ("not-an-id", "A" * 24):
        assert (await upload(api, odd, b64(image_bytes("PNG")), admin=True)).body == \
            {"data": "User not found", "code": 404}
        assert (await api.delete(f"/admin-users/delete-image/{odd}")).body == {"data": "User not found", "code": 404}


async def test_an_admin_changes_and_deletes_another_users_image(running: RunningApp, api: ApiClient, alice: dict,
                                                                db: AsyncDatabase) -> None:
    bob_client = running.client()
    bob = await bob_client.sign_up("bob")
    assert (await upload(api, bob["id"], b64(image_bytes("PNG")), admin=True)).status == 403
    await make_admin(db, alice["id"])
    assert (await upload(api, bob["id"], b64(image_bytes("PNG")), admin=True)).body == UPDATED
    assert (await bob_client.get("/auth/me")).body["user"]["profile_image"] is not None
    reply = await api.delete(f"/admin-users/delete-image/{bob['id']}")
    assert (reply.status, reply.body) == (200, {"data": "Profile image deleted successfully", "code": 200})
    assert (await bob_client.get("/auth/me")).body["user"]["profile_image"] is None
    reply = await upload(api, "000000000000000000000000", b64(image_bytes("PNG")), admin=True)
    assert (reply.status, reply.body) == (404, {"data": "User not found", "code": 404})
    reply = await api.delete("/admin-users/delete-image/000000000000000000000000")
    assert (reply.status, reply.body) == (404, {"data": "User not found", "code": 404})


async def test_delete_removes_the_image_and_its_files(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG")))
    reply = await api.delete(f"/user/delete-image/{alice['id']}")
    assert (reply.status, reply.body) == (200, {"data": "Profile image deleted successfully", "code": 200})
    assert (await served(api, alice["id"])).body == NO_IMAGE
    assert await AvatarStore(db, UserStore(db)).count_files() == 0
    again = await api.delete(f"/user/delete-image/{alice['id']}")
    assert (again.status, again.body) == (404, NO_IMAGE)


async def test_with_file_service_off_uploads_and_deletes_answer_503_and_serving_works(
    start_app: StartApp, api: ApiClient, alice: dict
) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG")))
    readonly = (await start_app(file_service=False)).client()
    readonly.cookies = dict(api.cookies)
    off = {"data": "This service is not handling file uploads.", "code": 503}
    assert (await upload(readonly, alice["id"], b64(image_bytes("PNG")))).body == off
    assert (await readonly.delete(f"/user/delete-image/{alice['id']}")).body == off
    assert (await readonly.post(f"/admin-users/update-image/{alice['id']}", {"image": "x"})).status == 503
    assert (await served(readonly, alice["id"])).status == 200


async def test_serving_uses_etags_and_answers_304(api: ApiClient, alice: dict) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG")))
    url = (await api.get("/auth/me")).body["user"]["profile_image"]
    first = await api.get(url, send_cookies=False)
    assert first.status == 200 and first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    etag = first.headers["ETag"]
    plain = await served(api, alice["id"])
    assert plain.headers["Cache-Control"] == "public, no-cache" and plain.headers["ETag"] == etag
    again = await served(api, alice["id"], **{"If-None-Match": etag})
    assert again.status == 304 and again.raw == b""
    assert (await served(api, alice["id"], "high", **{"If-None-Match": etag})).status == 200  # other size
    await upload(api, alice["id"], b64(image_bytes("PNG", color="green")))
    changed = await served(api, alice["id"], **{"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag


async def test_serving_without_an_image_answers_404(api: ApiClient, alice: dict) -> None:
    assert (await served(api, alice["id"])).body == NO_IMAGE
    assert (await served(api, "nobody-at-all")).body == NO_IMAGE
    reply = await served(api, alice["id"], "huge")
    assert (reply.status, reply.body["data"]) == (400, "Invalid parameters")


async def test_uploads_and_deletes_need_a_session_but_serving_does_not(api: ApiClient, alice: dict) -> None:
    anonymous = ApiClient(api.base_url)
    assert (await upload(anonymous, alice["id"], b64(image_bytes("PNG")))).status == 401
    assert (await anonymous.delete(f"/user/delete-image/{alice['id']}")).status == 401
    await upload(api, alice["id"], b64(image_bytes("PNG")))
    assert (await served(anonymous, alice["id"])).status == 200


async def test_five_replacements_leave_exactly_two_files(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    for color in ("red", "green", "blue", "white", "black"):
        assert (await upload(api, alice["id"], b64(image_bytes("PNG", color=color)))).status == 200
    store = AvatarStore(db, UserStore(db))
    assert await store.count_files() == 2
    reference = await store.current(alice["id"])
    assert set(await db["avatars.files"].distinct("metadata.version")) == {reference.version}
    image = opened((await served(api, alice["id"], "high")).raw).convert("RGB")
    assert image.getpixel((5, 5)) == (0, 0, 0)


async def test_concurrent_uploads_leave_one_complete_image(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    replies = await asyncio.gather(*(upload(api, alice["id"], b64(image_bytes("PNG", color=c)))
                                     for c in ("red", "green", "blue", "white")))
    assert all(r.status == 200 for r in replies)
    store = AvatarStore(db, UserStore(db))
    assert await store.count_files() == 2
    assert (await served(api, alice["id"], "high")).status == 200
    assert (await served(api, alice["id"], "scaled")).status == 200


# ---- a step of the replacement fails ----

async def _prepare_old_image(api: ApiClient, user_id: str) -> tuple[str, bytes]:
    await upload(api, user_id, b64(image_bytes("PNG", color="red")))
    me = (await api.get("/auth/me")).body["user"]["profile_image"]
    return me, (await served(api, user_id, "high")).raw


async def test_a_failed_upload_of_the_second_file_keeps_the_old_image_and_leaves_no_orphan(
    api: ApiClient, alice: dict, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_url, old_bytes = await _prepare_old_image(api, alice["id"])
    original = AsyncGridFSBucket.upload_from_stream_with_id
    calls = 0

    async def second_upload_fails(self: AsyncGridFSBucket, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncGridFSBucket, "upload_from_stream_with_id", second_upload_fails)
    reply = await upload(api, alice["id"], b64(image_bytes("PNG", color="blue")))
    assert (reply.status, reply.body["data"]) == (500, "Internal server error")
    assert (await api.get("/auth/me")).body["user"]["profile_image"] == old_url
    assert (await served(api, alice["id"], "high")).raw == old_bytes
    assert await AvatarStore(db, UserStore(db)).count_files() == 2


async def chunks_without_a_file(db: AsyncDatabase) -> list[Any]:
    files = set(await db["avatars.files"].distinct("_id"))
    return [f for f in await db["avatars.chunks"].distinct("files_id") if f not in files]


@pytest.mark.parametrize("fault, which", [
    ({"writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}}, 0),
    ({"writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}}, 1),
    ({"errorCode": 50}, 0),
], ids=["write concern, first file", "write concern, second file", "timeout, first file"])
async def test_an_upload_whose_file_document_fails_deletes_its_chunks_before_it_answers(
    api: ApiClient, alice: dict, db: AsyncDatabase, commands: CommandCounter, fail_points: FailPoints,
    fault: dict[str, Any], which: int
) -> None:
    # GridFS writes a file's chunks, then its document: the failing file had no id to delete by,
    # and its chunks stayed with nothing referring to them.
    await _prepare_old_image(api, alice["id"])
    commands.reset()
    old_url, old_bytes = await _prepare_old_image(api, alice["id"])  # a replacement, as the failing one
    inserts = [target for name, target in commands.targets() if name == "insert"]
    at = [i for i, target in enumerate(inserts) if target == "avatars.files"][which]
    assert inserts[at - 1] == "avatars.chunks"
    await fail_points.fail(["insert"], {"skip": at, "times": 1}, **fault)
    try:
        reply = await upload(api, alice["id"], b64(image_bytes("PNG", color="blue")))
    finally:
        await fail_points.off()
    assert (reply.status, reply.body["data"]) == (503, "Service unavailable")
    assert await chunks_without_a_file(db) == []
    assert (await api.get("/auth/me")).body["user"]["profile_image"] == old_url
    assert (await served(api, alice["id"], "high")).raw == old_bytes
    assert await AvatarStore(db, UserStore(db)).count_files() == 2


async def test_a_failed_switch_keeps_the_old_image_and_deletes_the_new_files(
    api: ApiClient, alice: dict, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_url, old_bytes = await _prepare_old_image(api, alice["id"])

    async def switch_fails(self: AvatarStore, *args: Any) -> bool:
        raise RuntimeError("lost the primary")

    monkeypatch.setattr(AvatarStore, "switch", switch_fails)
    assert (await upload(api, alice["id"], b64(image_bytes("PNG", color="blue")))).status == 500
    assert (await api.get("/auth/me")).body["user"]["profile_image"] == old_url
    assert (await served(api, alice["id"], "high")).raw == old_bytes
    assert await AvatarStore(db, UserStore(db)).count_files() == 2


async def test_a_failed_switch_whose_check_fails_too_keeps_the_new_files_and_says_so(
    api: ApiClient, alice: dict, db: AsyncDatabase, fail_points: FailPoints, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    # The database cannot say whether the failed switch was applied: the new files may be the
    # user's image, so they stay (the next sweep deletes them if not), and the log says why.
    old_url, _ = await _prepare_old_image(api, alice["id"])

    async def switch_fails_and_so_does_the_next_read(self: AvatarStore, *args: Any) -> bool:
        await fail_points.fail(["find"], {"times": 1}, errorCode=50)
        raise RuntimeError("lost the primary")

    monkeypatch.setattr(AvatarStore, "switch", switch_fails_and_so_does_the_next_read)
    with caplog.at_level("WARNING", logger="tsundoku.avatars"):
        assert (await upload(api, alice["id"], b64(image_bytes("PNG", color="blue")))).status == 500
    assert (await api.get("/auth/me")).body["user"]["profile_image"] == old_url
    assert await AvatarStore(db, UserStore(db)).count_files() == 4
    assert any(record.name == "tsundoku.avatars" and "after a failed switch" in record.getMessage()
               for record in caplog.records)


async def test_a_failed_cleanup_keeps_the_new_image_and_the_next_upload_sweeps(
    api: ApiClient, alice: dict, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_url, _ = await _prepare_old_image(api, alice["id"])
    original = AvatarStore.sweep

    async def sweep_fails(self: AvatarStore, *args: Any) -> int:
        raise RuntimeError("network blip")

    monkeypatch.setattr(AvatarStore, "sweep", sweep_fails)
    assert (await upload(api, alice["id"], b64(image_bytes("PNG", color="blue")))).status == 200
    new_url = (await api.get("/auth/me")).body["user"]["profile_image"]
    assert new_url != old_url
    image = opened((await served(api, alice["id"], "high")).raw).convert("RGB")
    assert image.getpixel((5, 5))[2] > 200  # blue: the new image is complete and served
    assert await AvatarStore(db, UserStore(db)).count_files() == 4  # the old pair is left over for now
    monkeypatch.setattr(AvatarStore, "sweep", original)
    assert (await upload(api, alice["id"], b64(image_bytes("PNG", color="green")))).status == 200
    assert await AvatarStore(db, UserStore(db)).count_files() == 2


async def test_racing_uploads_and_deletes_never_leave_a_broken_or_orphaned_image(
    api: ApiClient, alice: dict, db: AsyncDatabase
) -> None:
    store = AvatarStore(db, UserStore(db))
    for round_ in range(6):
        await upload(api, alice["id"], b64(image_bytes("PNG", color="red")))
        await asyncio.gather(
            upload(api, alice["id"], b64(image_bytes("PNG", color="blue"))),
            api.delete(f"/user/delete-image/{alice['id']}"),
            upload(api, alice["id"], b64(image_bytes("PNG", color="green"))),
        )
        # The database ordered the three changes (each took a number of the user's counter): the
        # one that took the last number decides the exact state, whichever request it was.
        counters = await db.users.find_one({"_id": alice["id"]}, {"avatar_sequence": 1, "avatar_floor": 1})
        last, floor = counters["avatar_sequence"], counters.get("avatar_floor")
        reference = await store.current(alice["id"])
        if floor == last:  # the delete came last: no image, no file
            assert reference is None and await store.count_files() == 0, round_
            assert (await served(api, alice["id"], "high")).status == 404, round_
        else:  # an upload came last: its image, its two files and nothing else
            assert reference is not None and reference.version == last, (round_, reference, counters)
            files = await db["avatars.files"].find({}, {"metadata": 1}).to_list()
            assert sorted((f["metadata"]["version"], f["metadata"]["resolution"]) for f in files) == \
                [(last, "high"), (last, "scaled")], round_
            red, green, blue = opened((await served(api, alice["id"], "high")).raw).convert("RGB").getpixel((10, 10))
            assert red < 40 and (blue > 200 or green > 100), (round_, red, green, blue)  # blue or green, not red


async def test_a_delete_between_an_uploads_files_and_its_switch_leaves_no_broken_image(
    api: ApiClient, alice: dict, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG", color="red")))
    original = AvatarStore.switch
    files_stored, go_on = asyncio.Event(), asyncio.Event()

    async def paused_switch(self: AvatarStore, *args: Any) -> bool:
        files_stored.set()
        await go_on.wait()
        return await original(self, *args)

    monkeypatch.setattr(AvatarStore, "switch", paused_switch)
    pending = asyncio.create_task(upload(api, alice["id"], b64(image_bytes("PNG", color="blue"))))
    await files_stored.wait()
    assert (await api.delete(f"/user/delete-image/{alice['id']}")).status == 200
    go_on.set()
    assert (await pending).status == 200
    # The upload took its version before the delete raised the floor past it: it cannot switch
    # in afterwards, and its files are gone with the old image's.
    store = AvatarStore(db, UserStore(db))
    assert await store.current(alice["id"]) is None
    assert await store.count_files() == 0
    assert (await served(api, alice["id"], "high")).status == 404


async def test_an_older_upload_that_switches_late_does_not_replace_a_newer_one(
    api: ApiClient, alice: dict, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AvatarStore.switch
    files_stored, go_on = asyncio.Event(), asyncio.Event()
    paused_once = False

    async def first_switch_paused(self: AvatarStore, *args: Any) -> bool:
        nonlocal paused_once
        if not paused_once:
            paused_once = True
            files_stored.set()
            await go_on.wait()
        return await original(self, *args)

    monkeypatch.setattr(AvatarStore, "switch", first_switch_paused)
    older = asyncio.create_task(upload(api, alice["id"], b64(image_bytes("PNG", color="red"))))
    await files_stored.wait()
    assert (await upload(api, alice["id"], b64(image_bytes("PNG", color="blue")))).status == 200
    go_on.set()
    assert (await older).status == 200
    image = opened((await served(api, alice["id"], "high")).raw).convert("RGB")
    assert image.getpixel((5, 5))[2] > 200  # the newer (blue) image stays
    assert await AvatarStore(db, UserStore(db)).count_files() == 2


async def test_the_pixel_limit_is_a_setting_applied_from_the_header(start_app: StartApp) -> None:
    client = (await start_app(max_image_pixels=1_000_000)).client()
    user = await client.sign_up("alice")
    reply = await upload(client, user["id"], b64(image_bytes("PNG", (1001, 1000))))
    assert (reply.status, reply.body["data"]) == (400, "Image has too many pixels (at most 1 megapixels)")
    assert (await upload(client, user["id"], b64(image_bytes("PNG", (1000, 1000))))).status == 200


async def test_serving_costs_two_round_trips_and_a_304_one(api: ApiClient, alice: dict,
                                                           commands: CommandCounter) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG", (2000, 1500))))
    sizes = {}
    for resolution in ("scaled", "high"):
        commands.reset()
        reply = await served(api, alice["id"], resolution)
        assert reply.status == 200 and commands.log == ["find", "find"], commands.log  # the reference, the chunks
        assert int(reply.headers["Content-Length"]) == len(reply.raw)
        sizes[resolution] = len(reply.raw)
        commands.reset()
        again = await served(api, alice["id"], resolution, **{"If-None-Match": reply.headers["ETag"]})
        assert again.status == 304 and commands.log == ["find"]
    assert opened((await served(api, alice["id"], "high")).raw).size == (1024, 768)
    assert sizes["high"] > sizes["scaled"]


async def test_an_image_stored_without_its_lengths_is_still_served(api: ApiClient, alice: dict,
                                                                   db: AsyncDatabase) -> None:
    # Stored before the reference kept the lengths: served through GridFS's file document.
    await upload(api, alice["id"], b64(image_bytes("PNG", (300, 200))))
    await db.users.update_one({"_id": alice["id"]}, {"$unset": {"profile_image.lengths": ""}})
    reply = await served(api, alice["id"], "high")
    assert reply.status == 200 and opened(reply.raw).size == (300, 200)


async def test_a_banned_users_image_is_not_served_and_they_cannot_upload_another(
        running: RunningApp, api: ApiClient, alice: dict, db: AsyncDatabase, commands: CommandCounter) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG")))
    url = (await api.get("/auth/me")).body["user"]["profile_image"]
    await set_roles(db, alice["id"], "banned")
    before = (await db.users.find_one({"_id": alice["id"]}))["profile_image"], await AvatarStore(db, UserStore(db)).count_files()
    reply = await upload(api, alice["id"], b64(image_bytes("PNG", color="green")))
    assert (reply.status, reply.body) == (403, {"data": "Forbidden", "code": 403})
    assert ((await db.users.find_one({"_id": alice["id"]}))["profile_image"],
            await AvatarStore(db, UserStore(db)).count_files()) == before  # nothing changed
    for path in (url, f"/user/avatar/{alice['id']}/high"):
        commands.reset()
        reply = await api.get(path, send_cookies=False)
        assert (reply.status, reply.body) == (404, NO_IMAGE), path
        assert commands.log == ["find"]  # the roles come with the reference
    head = await api.request("HEAD", url, send_cookies=False)
    assert head.status == 404
    # An admin may still change it; it stays hidden until the ban is lifted.
    admin = running.client()
    await make_admin(db, (await admin.sign_up("root"))["id"])
    assert (await upload(admin, alice["id"], b64(image_bytes("PNG", color="blue")), admin=True)).body == UPDATED
    assert (await served(api, alice["id"])).body == NO_IMAGE
    await set_roles(db, alice["id"], "member")
    assert (await served(api, alice["id"])).status == 200


async def test_a_banned_users_upload_is_refused_before_its_body_is_read(
        running: RunningApp, api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    await set_roles(db, alice["id"], "banned")
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    # A body of a megabyte is announced and never sent: the answer cannot wait for it.
    writer.write(f"POST /user/update-image/{alice['id']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Cookie: {api.cookie_header()}\r\nContent-Type: application/json\r\n"
                 "Content-Length: 1000000\r\n\r\n{\"image\": \"".encode())
    answer = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 403 ") and answer.endswith(b'{"data":"Forbidden","code":403}'), answer


async def test_a_banned_user_may_still_delete_their_own_image(api: ApiClient, alice: dict, db: AsyncDatabase) -> None:
    await upload(api, alice["id"], b64(image_bytes("PNG")))
    await set_roles(db, alice["id"], "banned")
    reply = await api.delete(f"/user/delete-image/{alice['id']}")
    assert (reply.status, reply.body) == (200, {"data": "Profile image deleted successfully", "code": 200})
    assert await AvatarStore(db, UserStore(db)).count_files() == 0
