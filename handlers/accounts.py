"""Accounts and sessions: register, login, me, logout."""

from __future__ import annotations

from auth.clock import utc_now
from auth.passwords import is_valid_password, is_valid_username
from auth.tokens import SessionCookie, SessionTimes
from handlers.base import ApiHandler
from handlers.errors import MISSING_PARAMETERS, UNAUTHORIZED, ApiError
from handlers.openapi_docs import Operation, Route
from handlers.schemas.auth import Credentials, LogoutRequest, UserEnvelope
from storage.users import UsernameTaken

TOO_MANY_REQUESTS = "Too many requests."
INVALID_CREDENTIALS = "Invalid credentials"


class RegisterHandler(ApiHandler):
    requires_auth = False
    api = {
        "post": Operation(
            summary="Create an account",
            request=Credentials,
            auth=False,
            tags=("auth",),
            responses={
                201: "User created successfully",
                400: MISSING_PARAMETERS,
                409: "Username already taken",
                422: "Invalid username",
                429: TOO_MANY_REQUESTS,
            },
        )
    }

    async def post(self) -> None:
        credentials = self.parse_body(Credentials)
        if not is_valid_username(credentials.username):
            raise ApiError(422, "Invalid username")
        if not is_valid_password(credentials.password):
            raise ApiError(422, "Invalid password")
        # Counted (and checked, in the same atomic step) before the attempt, so that probing
        # for taken names costs the same budget.
        if not await self.services.registrations.attempt(self.request.remote_ip):
            raise ApiError(429, TOO_MANY_REQUESTS)
        password_hash = await self.services.passwords.hash(credentials.password)
        try:
            await self.services.users.create(credentials.username, password_hash, utc_now())
        except UsernameTaken:
            raise ApiError(409, "Username already taken") from None
        self.write_message(201, "User created successfully")


class LoginHandler(ApiHandler):
    requires_auth = False
    api = {
        "post": Operation(
            summary="Sign in; sets the refreshToken cookie",
            request=Credentials,
            response=UserEnvelope,
            auth=False,
            tags=("auth",),
            responses={400: MISSING_PARAMETERS, 401: INVALID_CREDENTIALS, 429: TOO_MANY_REQUESTS},
        )
    }

    async def post(self) -> None:
        credentials = self.parse_body(Credentials)
        # A name that cannot be a username matches no account, and anyone can tell it from its
        # shape: refuse it before anything is counted or stored (the failure counter keys on it).
        if not is_valid_username(credentials.username):
            raise ApiError(401, INVALID_CREDENTIALS)
        attempts = self.services.login_attempts
        key = f"{self.request.remote_ip}:{credentials.username.lower()}"
        # Counted before the password is verified, in one atomic step with the check: of any
        # number of concurrent attempts, at most the limit are verified.
        if not await attempts.attempt(key):
            raise ApiError(429, TOO_MANY_REQUESTS)
        found = None
        if len(credentials.password) <= 1024:
            found = await self.services.users.find_credentials(credentials.username)
        stored_hash = found.password_hash if found else None
        # Always verify (against a decoy hash for unknown users) so timing does not reveal names.
        if not await self.services.passwords.verify(stored_hash, credentials.password[:1024]) or found is None:
            raise ApiError(401, INVALID_CREDENTIALS)
        await attempts.reset(key)  # a success clears the failures before it
        cookie = SessionCookie.new(found.user.id)
        now = utc_now()
        await self.services.users.add_session(found.user.id, cookie.secret_hash, now)
        self.set_refresh_cookie(cookie, SessionTimes(created=now, last_seen=now))
        self.write_model(UserEnvelope.of(found.user))


class MeHandler(ApiHandler):
    api = {"get": Operation(summary="The signed-in user", response=UserEnvelope, tags=("auth",))}

    async def get(self) -> None:
        self.write_model(UserEnvelope.of(self.require_user().record))


class LogoutHandler(ApiHandler):
    api = {
        "post": Operation(
            summary="Sign out this session, or every session with {\"all\": true}",
            request=LogoutRequest,
            request_required=False,
            tags=("auth",),
            responses={200: "Logged out", 401: UNAUTHORIZED},
        )
    }

    async def post(self) -> None:
        user = self.require_user()
        request = self.parse_body(LogoutRequest)
        if request.all:
            await self.services.users.revoke_all_sessions(user.id)
        else:
            await self.services.users.revoke_session(user.id, user.session_hash)
        self.clear_refresh_cookie()
        self.write_message(200, "Logged out")


routes = [
    Route("/auth/register", RegisterHandler),
    Route("/auth/login", LoginHandler),
    Route("/auth/me", MeHandler),
    Route("/auth/logout", LogoutHandler),
]
