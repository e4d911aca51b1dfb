"""The account as a whole: deleting it (the user, with their password; or an admin)."""

from __future__ import annotations

from auth.permissions import EDIT_USERS
from handlers.accounts import COOKIE_CLEARED, PasswordCheck
from handlers.schemas.auth import PasswordConfirmation
from handlers.user_scope import USER_ID
from web.base import ApiHandler
from web.errors import (
    FORBIDDEN,
    INVALID_CREDENTIALS,
    MISSING_PARAMETERS,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    USER_NOT_FOUND,
    ApiError,
)
from web.idempotency import idempotent_without_transaction
from web.openapi import Operation, Route

ACCOUNT_DELETED = "Account deleted"
_TAGS = ("account",)


class DeleteAccountHandler(PasswordCheck):
    ends_session = True
    api = {
        "delete": Operation(
            summary="Delete the signed-in user's account and everything it holds; clears the cookie",
            request=PasswordConfirmation, tags=_TAGS, sets_cookie=COOKIE_CLEARED,
            responses={200: ACCOUNT_DELETED, 400: MISSING_PARAMETERS, 401: INVALID_CREDENTIALS,
                       429: TOO_MANY_REQUESTS},
        )
    }

    @idempotent_without_transaction
    async def delete(self) -> None:
        user = await self.confirm_own_password((await self.parse_body(PasswordConfirmation)).password)
        await self.services.account_removal.remove(user.id)
        self.clear_refresh_cookie()
        self.write_message(200, ACCOUNT_DELETED)


class AdminDeleteAccountHandler(ApiHandler):
    api = {
        "delete": Operation(
            summary="Delete any user's account, with the same effects", tags=_TAGS, permission=EDIT_USERS,
            sets_cookie=f"When the account is the caller's own: {COOKIE_CLEARED}",
            responses={200: ACCOUNT_DELETED, 400: MISSING_PARAMETERS, 401: UNAUTHORIZED, 403: FORBIDDEN,
                       404: USER_NOT_FOUND},
        )
    }

    @idempotent_without_transaction
    async def delete(self, id: str) -> None:
        target = self.path_parameter("id")
        # A missing user is still swept: files left by a removal that stopped halfway go now.
        if not await self.services.account_removal.remove(target):
            raise ApiError(404, USER_NOT_FOUND)
        if target == self.require_user().id:
            self.clear_refresh_cookie()
        self.write_message(200, ACCOUNT_DELETED)


routes = [
    Route("/user/account", DeleteAccountHandler),
    Route("/admin-users/account/{id}", AdminDeleteAccountHandler, {"id": USER_ID}),
]
