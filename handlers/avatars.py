"""Profile images: upload and delete (self and admin), and public serving (none of a banned user)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, ClassVar

from pydantic import Field, StrictStr

from auth.permissions import EDIT_USERS
from formats.json_reading import JsonLimits
from handlers.schemas.common import FieldError, RequestModel
from handlers.user_scope import OWN_USER_ID, USER_ID
from imaging import OUTPUT_CONTENT_TYPE, ImageRejected, RenderedAvatar, decode_upload, render_avatar
from settings import Settings
from storage.avatars import RESOLUTIONS, AvatarStore
from web import conditional
from web.base import ApiHandler, validate_body
from web.errors import FORBIDDEN, INVALID_PARAMETERS, MISSING_PARAMETERS, USER_NOT_FOUND, ApiError
from web.idempotency import idempotent_without_transaction
from web.json_input import read_json_body
from web.openapi import Operation, PathParameter, Route

FILE_SERVICE_OFF = "This service is not handling file uploads."
IMAGE_NOT_FOUND = "Profile image not found"
IMAGE_UPDATED = "Profile image updated successfully"
IMAGE_DELETED = "Profile image deleted successfully"
# A URL with the current version never changes content; one without it must revalidate.
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
REVALIDATE_CACHE = "public, no-cache"
_TAGS = ("profile images",)
# Whether no user has the id or the user has no image shown, it is the same 404.
_AVATAR_USER_ID = replace(USER_ID, refusal=(404, IMAGE_NOT_FOUND))
_RESOLUTION = PathParameter({"type": "string", "enum": list(RESOLUTIONS)}, (400, INVALID_PARAMETERS),
                            "must be scaled or high")


def upload_body_limit(settings: Settings) -> int:
    """Base64 of the largest image, line-wrapped as MIME wraps it (76 characters, then CRLF,
    which JSON escapes as four characters), plus room for a data URL prefix and the JSON around it."""
    base64_length = -(-settings.max_image_bytes // 3) * 4
    return base64_length * 80 // 76 + 64 * 1024


class ImageUpload(RequestModel):
    # Not empty, which the document says; what else makes an image, JSON Schema cannot (the route
    # answers 400 naming the fault).
    image: Annotated[StrictStr, Field(json_schema_extra={
        "minLength": 1, "description": "A PNG, JPEG, GIF or WebP image in base64, or as a data URL "
                                       "(`data:image/png;base64,...`)"})]


# `{"image": "<base64>"}`: megabytes of one string, never more than a handful of values.
UPLOAD_JSON_LIMITS = JsonLimits(max_values=16)


def render_upload(body: list[bytes], content_type: str, settings: Settings) -> RenderedAvatar:
    """The upload body (as received) -> the stored versions. Runs in a worker thread."""
    upload = validate_body(ImageUpload, read_json_body(b"".join(body), content_type, UPLOAD_JSON_LIMITS))
    try:
        return render_avatar(decode_upload(upload.image, settings.max_image_bytes), settings.max_image_pixels)
    except ImageRejected as rejected:
        raise ApiError(400, str(rejected), [FieldError(field="image", message=str(rejected))]) from None


class ProfileImageWriteHandler(ApiHandler):
    """Base of the upload and delete routes. On `/user/...` the id must be the caller's own;
    on `/admin-users/...` the caller needs `edit-users`."""

    admin_route: ClassVar[bool] = False

    @property
    def avatars(self) -> AvatarStore:
        return self.services.avatars

    def check_available(self) -> None:
        # Before the body is read: an instance without file handling takes none.
        if not self.services.settings.file_service:
            raise ApiError(503, FILE_SERVICE_OFF)

    async def target_user(self) -> str:
        target = self.path_parameter("id")
        if self.admin_route:  # the operation's `edit-users` permission was checked in `prepare`
            if not await self.services.users.exists(target):
                raise ApiError(404, USER_NOT_FOUND)
        elif target != self.require_user().id:
            raise ApiError(403, FORBIDDEN)
        return target


def _write_operation(summary: str, success: str, admin: bool, upload: bool) -> Operation:
    responses = {200: success, 400: MISSING_PARAMETERS, 403: FORBIDDEN, 404: USER_NOT_FOUND if upload
                 else IMAGE_NOT_FOUND, 503: FILE_SERVICE_OFF}
    # A delete takes If-Match: the ETag of the image's GET (either size).
    return Operation(summary=summary, request=ImageUpload if upload else None, tags=_TAGS, responses=responses,
                     permission=EDIT_USERS if admin else None, if_match=not upload)


class UpdateImageHandler(ProfileImageWriteHandler):
    api = {"post": _write_operation("Upload a profile image (base64 or data URL)",
                                    IMAGE_UPDATED, admin=False, upload=True)}

    def body_limit(self) -> int:
        return upload_body_limit(self.services.settings)

    async def prepare(self) -> None:
        await super().prepare()
        # Before the body arrives, so that a refused upload costs no megabytes. A banned user's
        # image is not shown, and they may not put up a new one; removing their own stays open
        # (it only takes content away). The admin route stays open too: acting on any account
        # is what `edit-users` is for (say, replacing an image before the ban is lifted), and the
        # image stays hidden while the ban lasts.
        if not self.admin_route and self.user is not None and self.user.banned:
            raise ApiError(403, FORBIDDEN)

    @idempotent_without_transaction
    async def post(self, id: str) -> None:
        target = await self.target_user()
        # Megabytes of JSON and base64, then Pillow: all of it off the event loop, in the pool
        # that bounds image work to the cores.
        rendered = await self.off_the_loop(render_upload, self.body_chunks(), self.request.headers.get("Content-Type", ""),
                                           self.services.settings, pool=self.services.image_pool)
        stored = await self.avatars.replace(target, {"high": rendered.high, "scaled": rendered.scaled},
                                            rendered.content_type)
        if stored is None:
            raise ApiError(404, USER_NOT_FOUND)
        self.write_message(200, IMAGE_UPDATED)


class AdminUpdateImageHandler(UpdateImageHandler):
    admin_route = True
    api = {"post": _write_operation("Upload another user's profile image", IMAGE_UPDATED,
                                    admin=True, upload=True)}


class DeleteImageHandler(ProfileImageWriteHandler):
    api = {"delete": _write_operation("Delete the profile image", IMAGE_DELETED,
                                      admin=False, upload=False)}

    @idempotent_without_transaction
    async def delete(self, id: str) -> None:
        target = await self.target_user()
        version = await self.unchanged_image(target)
        removed = await self.avatars.remove(target, version)
        if removed is None:
            raise ApiError(404, USER_NOT_FOUND)
        if not removed:
            if version is not None and await self.avatars.current(target) is not None:
                raise ApiError(412, conditional.PRECONDITION_FAILED)  # replaced since If-Match was checked
            raise ApiError(404, IMAGE_NOT_FOUND)
        self.write_message(200, IMAGE_DELETED)

    async def unchanged_image(self, user_id: str) -> int | None:
        """With If-Match (the `ETag` of the image's GET, either size), the version the delete must
        find still current (the store puts it in the write's filter); None without the header or
        with `*`. 404 without an image, 412 when the header names another version."""
        header = self.if_match()
        if header is None:
            return None
        current = await self.avatars.current(user_id)
        if current is None:
            raise ApiError(404, IMAGE_NOT_FOUND)
        if not any(conditional.if_match_holds(header, image_tag(current.version, resolution))
                   for resolution in RESOLUTIONS):
            raise ApiError(412, conditional.PRECONDITION_FAILED)
        return None if conditional.asks_any(header) else current.version


class AdminDeleteImageHandler(DeleteImageHandler):
    admin_route = True
    api = {"delete": _write_operation("Delete another user's profile image", IMAGE_DELETED,
                                      admin=True, upload=False)}


_CACHE_HEADERS = {"ETag": {"schema": {"type": "string"}},
                  "Cache-Control": {"schema": {"type": "string"}}}
_IMAGE_ANSWERS: dict[int, dict[str, Any]] = {
    200: {"description": "The image",
          "headers": _CACHE_HEADERS,
          "content": {OUTPUT_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary",
                                                       "contentMediaType": OUTPUT_CONTENT_TYPE}}}},
    304: {"description": "Not modified: If-None-Match names the current image", "headers": _CACHE_HEADERS},
}


class AvatarHandler(ApiHandler):
    """Public: the image bytes, streamed from GridFS chunk by chunk."""

    requires_auth = False
    api = {"get": Operation(summary="A user's profile image (`res` is scaled or high)", auth=False, tags=_TAGS,
                            raw_responses=_IMAGE_ANSWERS,
                            responses={400: INVALID_PARAMETERS, 404: IMAGE_NOT_FOUND}),
           "head": Operation(summary="The headers GET would answer, without the image", auth=False, tags=_TAGS,
                             raw_responses=_IMAGE_ANSWERS,
                             responses={400: INVALID_PARAMETERS, 404: IMAGE_NOT_FOUND})}

    async def get(self, id: str, res: str) -> None:
        await self.serve(id, res, with_body=True)

    async def head(self, id: str, res: str) -> None:
        """What GET answers, headers only: a cache or a client can check an image cheaply."""
        await self.serve(id, res, with_body=False)

    async def serve(self, id: str, res: str, *, with_body: bool) -> None:
        user_id = self.path_parameter("id")
        res = self.path_parameter("res", required=False)  # empty is just not a resolution
        store = self.services.avatars
        reference = await store.shown(user_id)
        if not reference:
            raise ApiError(404, IMAGE_NOT_FOUND)
        etag = image_tag(reference.version, res)
        self.set_header("ETag", etag)
        self.set_header("Cache-Control",
                        IMMUTABLE_CACHE if self.get_query_argument("v", None) == str(reference.version)
                        else REVALIDATE_CACHE)
        if self.client_has(etag):
            self.clear_header("Content-Type")
            self.set_status(304)
            self.finish()
            return
        stored = await store.open(reference, res)
        if stored is None:
            raise ApiError(404, IMAGE_NOT_FOUND)
        self.set_header("Content-Type", stored.content_type)
        self.set_header("Content-Length", str(stored.length))
        if with_body:
            async for chunk in stored.chunks:
                self.write(chunk)
                await self.flush()
        self.finish()


routes = [
    Route("/user/update-image/{id}", UpdateImageHandler, {"id": OWN_USER_ID}),
    Route("/user/delete-image/{id}", DeleteImageHandler, {"id": OWN_USER_ID}),
    Route("/admin-users/update-image/{id}", AdminUpdateImageHandler, {"id": USER_ID}),
    Route("/admin-users/delete-image/{id}", AdminDeleteImageHandler, {"id": USER_ID}),
    Route("/user/avatar/{id}/{res}", AvatarHandler, {"id": _AVATAR_USER_ID, "res": _RESOLUTION}),
]


def image_tag(version: int, resolution: str) -> str:
    """The entity tag of one size of one version of a profile image (what If-Match of its delete
    takes)."""
    return f'"{version}-{resolution}"'
