"""A user's personal access tokens: make one for an app, see them, revoke one."""

from __future__ import annotations

from auth.clock import utc_now
from auth.personal_tokens import MAX_PERSONAL_TOKENS_PER_USER, SCOPES, PersonalToken, expiry, new_token_id
from handlers.schemas.auth import PersonalTokenCreated, PersonalTokenList, PersonalTokenRequest, PersonalTokenView
from web.base import ApiHandler
from web.errors import MISSING_PARAMETERS, UNAUTHORIZED, ApiError
from web.idempotency import idempotent
from web.openapi import Operation, PathParameter, Route, answer_field

TOKEN_NOT_FOUND = "Token not found"
TOKEN_REVOKED = "Token revoked"
TOO_MANY_TOKENS = f"Too many personal tokens (at most {MAX_PERSONAL_TOKENS_PER_USER}): revoke one first"
# Ids are 16 hex digits; anything else names no token and is not worth a query.
_TOKEN_ID = PathParameter({"type": "string", "pattern": "^[0-9a-f]{16}$"}, (404, TOKEN_NOT_FOUND))
_TAGS = ("auth",)
# Managing tokens takes the cookie or an access token: no Operation here declares a scope, so a
# personal token is refused (a leaked one must not make more, nor hide by revoking others).


class PersonalTokensHandler(ApiHandler):
    api = {
        # Own data though no personal token reads it: an ETag as the reader's other GETs.
        "get": Operation(summary="The user's personal tokens, newest first (never their secrets)",
                         response=PersonalTokenList, tags=_TAGS, etag=True),
        "post": Operation(summary="Make a personal token; the answer is the only time its secret is shown",
                          description="`scopes`: `read` (every GET of the user's own data) and `write` "
                                      "(also the writes to their lists: reading statuses, ratings, the "
                                      "collection, MyAnimeList imports; implies `read`). No personal token "
                                      "changes the password or settings, deletes the account, manages "
                                      "sessions or tokens, or acts as an admin. Send it as "
                                      "`Authorization: Bearer tsu_pat_…`.",
                          request=PersonalTokenRequest, response=PersonalTokenCreated, response_status=201,
                          tags=_TAGS, responses={400: MISSING_PARAMETERS, 409: TOO_MANY_TOKENS},
                          links={"revoke": ("delete /auth/tokens/{id}", answer_field("id"))}),
    }

    async def get(self) -> None:
        user = self.require_user()
        tokens = await self.services.users.personal_tokens(user.id)
        self.write_model(PersonalTokenList(tokens=[PersonalTokenView.of(token) for token in tokens]))

    async def post(self) -> None:
        # Not @idempotent: its answer is a credential, which is never stored (as POST /auth/refresh).
        user = self.require_user()
        request = await self.parse_body(PersonalTokenRequest)
        token = PersonalToken.new(user.id)
        now = utc_now()
        scopes: list[str] = [scope for scope in SCOPES if scope in request.scopes]
        token_id = new_token_id()
        expires = expiry(now, request.expires_in_days)
        if not await self.services.users.add_personal_token(user.id, token.secret_hash, now, token_id=token_id,
                                                            name=request.name, scopes=scopes, expires=expires,
                                                            made_by=user.session_hash):
            raise ApiError(409, TOO_MANY_TOKENS)
        self.write_model(PersonalTokenCreated(id=token_id, name=request.name, scopes=scopes, created=now,
                                              expires=expires, token=token.value), 201)


class PersonalTokenHandler(ApiHandler):
    api = {"delete": Operation(summary="Revoke one of the user's personal tokens; it stops working at once",
                               tags=_TAGS,
                               responses={200: TOKEN_REVOKED, 400: MISSING_PARAMETERS, 401: UNAUTHORIZED,
                                          404: TOKEN_NOT_FOUND})}

    @idempotent
    async def delete(self, id: str) -> None:
        user = self.require_user()
        # Another user's token id is not found either: the write names only this user's.
        if not await self.services.users.revoke_personal_token(user.id, self.path_parameter("id")):
            raise ApiError(404, TOKEN_NOT_FOUND)
        self.write_message(200, TOKEN_REVOKED)


routes = [
    Route("/auth/tokens", PersonalTokensHandler),
    Route("/auth/tokens/{id}", PersonalTokenHandler, {"id": _TOKEN_ID}),
]
