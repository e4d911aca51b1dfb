"""A user's own sessions: see where they are signed in, and sign a device out."""

from __future__ import annotations

from handlers.accounts import COOKIE_CLEARED
from handlers.schemas.auth import SessionList, SessionView
from web.base import ApiHandler
from web.errors import MISSING_PARAMETERS, UNAUTHORIZED, ApiError
from web.idempotency import idempotent
from web.openapi import Operation, PathParameter, Route

SESSION_NOT_FOUND = "Session not found"
# Ids are 16 URL-safe characters; anything else names no session and is not worth a query.
_SESSION_ID = PathParameter({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}, (404, SESSION_NOT_FOUND))
SESSION_ENDED = "Session ended"


class SessionsHandler(ApiHandler):
    # Own data though no personal token reads it (scope None): an ETag as the reader's other GETs.
    api = {"get": Operation(summary="The user's sessions, newest first", response=SessionList, tags=("auth",),
                            etag=True, responses={401: UNAUTHORIZED})}

    async def get(self) -> None:
        user = self.require_user()
        sessions = await self.services.users.sessions(user.id, user.session_hash)
        self.write_model(SessionList(sessions=[SessionView.of(session) for session in sessions]))


class SessionHandler(ApiHandler):
    api = {"delete": Operation(summary="End one of the user's sessions (the current one too: that is a logout)",
                               tags=("auth",), sets_cookie=f"When the session is the caller's own: {COOKIE_CLEARED}",
                               responses={200: SESSION_ENDED, 400: MISSING_PARAMETERS, 401: UNAUTHORIZED,
                                          404: SESSION_NOT_FOUND})}

    @idempotent
    async def delete(self, id: str) -> None:
        user = self.require_user()
        session_id = self.path_parameter("id")
        # Another user's session id is not found either: the query names only this user's.
        ended = await self.services.users.end_session(user.id, session_id, user.session_hash)
        if ended is None:
            raise ApiError(404, SESSION_NOT_FOUND)
        if ended:  # the session of this very request: a logout
            self.clear_refresh_cookie()
        self.write_message(200, SESSION_ENDED)

routes = [
    Route("/auth/sessions", SessionsHandler),
    Route("/auth/sessions/{id}", SessionHandler, {"id": _SESSION_ID}),
]
