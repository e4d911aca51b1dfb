"""Saving a user's settings."""

from __future__ import annotations

from auth.clock import utc_now
from auth.permissions import EDIT_USERS
from handlers.schemas.common import FieldError
from handlers.schemas.settings import NSFW_18, SettingsBody, unwrap_settings_body
from handlers.user_scope import USER_ID
from storage.users import SettingsOutcome
from web.base import ApiHandler
from web.errors import FORBIDDEN, MISSING_PARAMETERS, USER_NOT_FOUND, ApiError
from web.idempotency import idempotent
from web.openapi import Answers, Operation, Route

SETTINGS_SAVED = "Settings saved successfully"
# The refusal of `nsfw-mode` `settings.nsfw.show-nsfw-18` to a user who is not age-verified: it
# says why, where the bare "Forbidden" (another user's settings) would leave the reader guessing.
NEEDS_AGE_VERIFICATION = "Showing 18+ content needs an age-verified account"


def age_verification_refusal() -> ApiError:
    return ApiError(403, NEEDS_AGE_VERIFICATION, [FieldError(field="nsfw-mode", message=NEEDS_AGE_VERIFICATION)])


class SaveSettingsHandler(ApiHandler):
    api = {
        "post": Operation(
            summary="Merge the given keys into the user's settings",
            request=SettingsBody,
            tags=("settings",),
            responses={
                200: SETTINGS_SAVED,
                400: MISSING_PARAMETERS,
                403: Answers(f"{FORBIDDEN} (another user's settings, without `edit-users`), or "
                             f"{NEEDS_AGE_VERIFICATION} (`nsfw-mode` `settings.nsfw.show-nsfw-18` for a user who "
                             "is not age-verified; `errors` names `nsfw-mode`)", NEEDS_AGE_VERIFICATION),
                404: USER_NOT_FOUND,
            },
        )
    }

    @idempotent
    async def post(self, id: str) -> None:
        user = self.require_user()
        # Anyone else's settings are forbidden without `edit-users`, whatever the path names (text
        # that is no user id included); with it, such text names no user (the route's USER_ID).
        if id and id != user.id and not user.can(EDIT_USERS):
            raise ApiError(403, FORBIDDEN)
        target_id = self.path_parameter("id")
        is_self = target_id == user.id
        changes = await self.parse_body(SettingsBody, unwrap_settings_body)
        values = changes.model_dump(by_alias=True, exclude_unset=True)
        if not values:
            raise ApiError(400, MISSING_PARAMETERS, [FieldError(field="body", message="At least one setting is required")])
        needs_age_verification = values.get("nsfw-mode") == NSFW_18
        if is_self and needs_age_verification and not user.record.age_verified:
            raise age_verification_refusal()
        outcome = await self.services.users.save_settings(
            target_id, values, utc_now(), needs_age_verification=needs_age_verification
        )
        if outcome is SettingsOutcome.NOT_AGE_VERIFIED:
            raise age_verification_refusal()
        if outcome is SettingsOutcome.USER_NOT_FOUND:
            raise ApiError(404, USER_NOT_FOUND)
        self.write_message(200, SETTINGS_SAVED)


routes = [Route("/users/{id}/save-settings", SaveSettingsHandler, {"id": USER_ID})]
