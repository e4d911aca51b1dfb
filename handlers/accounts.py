"""Accounts and sessions: register, login, me, refresh the access token, logout, change the password."""

from __future__ import annotations

from typing import cast

from tornado.httputil import HTTPServerRequest

from auth.clock import utc_now
from auth.passwords import PASSWORD_RULE, USERNAME_RULE, is_valid_password, is_valid_username
from auth.tokens import SessionCookie, SessionTimes, new_session_id, session_user_agent
from handlers.schemas.auth import AccessTokenAnswer, Credentials, LogoutRequest, PasswordChange, SignedIn
from handlers.schemas.common import FieldError
from storage.rate_limits import Attempt, login_key
from storage.users import UsernameTaken
from web.base import ApiHandler
from web.errors import INVALID_CREDENTIALS, MISSING_PARAMETERS, TOO_MANY_REQUESTS, UNAUTHORIZED, ApiError
from web.idempotency import idempotent
from web.openapi import Operation, Route
from web.session import AuthenticatedUser

# Longer passwords are not looked up, only verified against the decoy (argon2 takes any length,
# but a megabyte of password costs time): nobody's password is that long (the limit is 128).
MAX_CHECKED_PASSWORD = 1024
USER_CREATED = "User created successfully"
USERNAME_TAKEN = "Username already taken"
INVALID_USERNAME = "Invalid username"
INVALID_PASSWORD = "Invalid password"
PASSWORD_CHANGED = "Password changed"
LOGGED_OUT = "Logged out"


def refuse_over_limit(attempt: Attempt) -> None:
    """A counted attempt past its limit is a 429 that says when the window ends."""
    if not attempt.allowed:
        raise ApiError(429, TOO_MANY_REQUESTS, retry_after=attempt.retry_after)


def _address(request: HTTPServerRequest) -> str:
    """The client's address, which the rate limits count by. Tornado sets it on every request
    it serves; its type allows None only for a request built by hand."""
    return cast(str, request.remote_ip)


class PasswordCheck(ApiHandler):
    """A handler that verifies a password: login, and the account routes that ask for it again.
    Every check counts against the login-failure limits (of the address, and of the address and
    username), so none of them is a way around them."""

    async def count_password_attempt(self, username: str) -> str:
        """Counted before the password is verified, each in one atomic step with its check: of
        any number of concurrent attempts, at most the limit are verified. The address's own
        limit stops one address that tries a new name each time (each name would be within its
        own limit, and each attempt costs a hash). Returns the attempt's key."""
        address = _address(self.request)
        refuse_over_limit(await self.services.address_login_attempts.attempt(address))
        key = login_key(address, username)
        refuse_over_limit(await self.services.login_attempts.attempt(key))
        return key

    async def verify_password(self, attempt: str, stored_hash: str | None, password: str) -> bool:
        # Always verified (against a decoy hash when there is no account), so that timing does
        # not tell which names exist.
        if not await self.services.passwords.verify(stored_hash, password[:MAX_CHECKED_PASSWORD],
                                                    caller=_address(self.request)) \
                or stored_hash is None:
            return False
        # A success clears the failures of its name before it, but of the address's count it
        # gives back only its own: clearing the address would let anyone with one valid account
        # reset the limit between batches of guesses.
        await self.services.login_attempts.reset(attempt)
        await self.services.address_login_attempts.give_back(_address(self.request))
        return True

    async def confirm_own_password(self, password: str) -> AuthenticatedUser:
        """The signed-in user, asked for their password again (a change of password, a deletion):
        401 when it is wrong, counted like a failed login."""
        user = self.require_user()
        attempt = await self.count_password_attempt(user.record.username)
        if not await self.verify_password(attempt, await self.services.users.find_password_hash(user.id), password):
            raise ApiError(401, INVALID_CREDENTIALS)
        return user


# The sign-in's cookie, as the document describes it (web.base.ApiHandler.set_refresh_cookie).
SESSION_COOKIE = ("`refreshToken=<user id>.<secret>`: `HttpOnly`, `Path=/`, `SameSite` as COOKIE_SAMESITE says "
                  "(`Lax` by default; `None` is sent as `Lax` on a cookie that is not `Secure`), and `Secure` "
                  "exactly when the request came over https (COOKIE_SECURE=auto, the default; `true` or `false` "
                  "fix it), expiring with the session: 30 days after it was last used, 90 days after sign-in at "
                  "most. Any request the cookie authenticates may set it again with a later expiry (once an hour "
                  "at most), and a 401 to a cookie whose session is gone clears it.")
# The answer that ends this session's cookie.
COOKIE_CLEARED = "`refreshToken=` with an expiry in the past: the browser forgets the session's cookie."


class RegisterHandler(ApiHandler):
    requires_auth = False
    api = {
        "post": Operation(
            summary="Create an account",
            request=Credentials,
            auth=False,
            tags=("auth",),
            responses={
                201: USER_CREATED,
                400: MISSING_PARAMETERS,
                409: USERNAME_TAKEN,
                422: INVALID_USERNAME,
                429: TOO_MANY_REQUESTS,
            },
        )
    }

    @idempotent
    async def post(self) -> None:
        credentials = await self.parse_body(Credentials)
        if not is_valid_username(credentials.username):
            raise ApiError(422, INVALID_USERNAME, [FieldError(field="username", message=USERNAME_RULE)])
        if not is_valid_password(credentials.password):
            raise ApiError(422, INVALID_PASSWORD, [FieldError(field="password", message=PASSWORD_RULE)])
        # Counted (and checked, in the same atomic step) before the attempt, so that probing
        # for taken names costs the same budget.
        refuse_over_limit(await self.services.registrations.attempt(_address(self.request)))
        password_hash = await self.services.passwords.hash(credentials.password, caller=_address(self.request))
        try:
            await self.services.users.create(credentials.username, password_hash, utc_now())
        except UsernameTaken:
            # Named as the 422s name a refused username, so that a form shows it beside the field;
            # the reason is the message itself (a form that shows both says it once).
            raise ApiError(409, USERNAME_TAKEN, [FieldError(field="username", message=USERNAME_TAKEN)]) from None
        self.write_message(201, USER_CREATED)


class LoginHandler(PasswordCheck):
    requires_auth = False
    api = {
        "post": Operation(
            summary="Sign in; sets the refreshToken cookie and answers an access token (15 minutes)",
            request=Credentials,
            response=SignedIn,
            sets_cookie=SESSION_COOKIE,
            auth=False,
            tags=("auth",),
            responses={400: MISSING_PARAMETERS, 401: INVALID_CREDENTIALS, 429: TOO_MANY_REQUESTS},
        )
    }

    async def post(self) -> None:
        credentials = await self.parse_body(Credentials)
        # A name that cannot be a username matches no account, and anyone can tell it from its
        # shape: refuse it before anything is counted or stored (the failure counter keys on it).
        if not is_valid_username(credentials.username):
            raise ApiError(401, INVALID_CREDENTIALS)
        attempt = await self.count_password_attempt(credentials.username)
        found = None
        if len(credentials.password) <= MAX_CHECKED_PASSWORD:
            found = await self.services.users.find_credentials(credentials.username)
        if not await self.verify_password(attempt, found.password_hash if found else None, credentials.password) \
                or found is None:
            raise ApiError(401, INVALID_CREDENTIALS)
        user = found.user
        cookie = SessionCookie.new(user.id)
        now = utc_now()
        session_id = new_session_id()
        await self.services.users.add_session(
            user.id, cookie.secret_hash, now, session_id=session_id,
            user_agent=session_user_agent(self.request.headers.get("User-Agent")), address=self.request.remote_ip)
        self.set_refresh_cookie(cookie, SessionTimes(created=now, last_seen=now))
        self.write_model(SignedIn.of(self.services.access_tokens.issue(user.id, session_id, now), user))


class ChangePasswordHandler(PasswordCheck):
    api = {
        "post": Operation(
            summary="Change the password; every other session of the user ends, this one stays",
            description="Every access token ends too, this session's included (a stolen one must not "
                        "outlive the change): this session's cookie answers a new one (`POST /auth/refresh`), "
                        "a client without the cookie logs in again. The personal tokens other sessions made "
                        "are revoked (a stolen session could have made one); this session's stay.",
            request=PasswordChange,
            tags=("auth",),
            responses={200: PASSWORD_CHANGED, 400: MISSING_PARAMETERS, 401: INVALID_CREDENTIALS,
                       422: INVALID_PASSWORD, 429: TOO_MANY_REQUESTS},
        )
    }

    @idempotent
    async def post(self) -> None:
        change = await self.parse_body(PasswordChange)
        if not is_valid_password(change.new_password):
            raise ApiError(422, INVALID_PASSWORD, [FieldError(field="new_password", message=PASSWORD_RULE)])
        user = await self.confirm_own_password(change.current_password)
        password_hash = await self.services.passwords.hash(change.new_password, caller=_address(self.request))
        await self.services.users.change_password(user.id, password_hash, keep_token_hash=user.session_hash)
        self.write_message(200, PASSWORD_CHANGED)


class AccessTokenIssuer(ApiHandler):
    """A handler that answers an access token for the request's session."""

    async def new_access_token(self, user: AuthenticatedUser) -> str:
        session_id = user.session_id
        if session_id is None:
            # A session stored before sessions had ids: listing the sessions names it, once.
            current = [s for s in await self.services.users.sessions(user.id, user.session_hash) if s.current]
            if not current:
                raise ApiError(401, UNAUTHORIZED)  # ended meanwhile
            session_id = current[0].id
        return self.services.access_tokens.issue(user.id, session_id, utc_now())


class MeHandler(AccessTokenIssuer):
    api = {"get": Operation(summary="The signed-in user, and an access token (15 minutes) for the session",
                            description="Asked with an access token, the access token answered is that "
                                        "one: a token never extends itself; the cookie's session does "
                                        "(`POST /auth/refresh`).",
                            response=SignedIn, tags=("auth",))}

    async def get(self) -> None:
        user = self.require_user()
        token = user.access_token or await self.new_access_token(user)
        self.write_model(SignedIn.of(token, user.record))


class RefreshHandler(AccessTokenIssuer):
    api = {"post": Operation(summary="A new access token (15 minutes) for the session of the refreshToken cookie",
                             description="Only the cookie refreshes: asked with an access token, 401.",
                             response=AccessTokenAnswer, tags=("auth",), responses={401: UNAUTHORIZED})}

    async def post(self) -> None:
        user = self.require_user()
        if user.access_token is not None:
            # Else a token could renew itself for as long as its session lives, and a stolen one
            # would outlive its 15 minutes.
            raise ApiError(401, UNAUTHORIZED)
        self.write_model(AccessTokenAnswer.of(await self.new_access_token(user)))


class LogoutHandler(ApiHandler):
    ends_session = True
    api = {
        "post": Operation(
            summary="Sign out this session, or every session with {\"all\": true}",
            request=LogoutRequest,
            request_required=False,
            tags=("auth",),
            responses={200: LOGGED_OUT, 401: UNAUTHORIZED},
            sets_cookie=COOKIE_CLEARED,
        )
    }

    @idempotent
    async def post(self) -> None:
        user = self.require_user()
        request = await self.parse_body(LogoutRequest)
        if request.all:
            await self.services.users.revoke_all_sessions(user.id)
        else:
            await self.services.users.revoke_session(user.id, user.session_hash)
        self.clear_refresh_cookie()
        self.write_message(200, LOGGED_OUT)


routes = [
    Route("/auth/register", RegisterHandler),
    Route("/auth/login", LoginHandler),
    Route("/auth/me", MeHandler),
    Route("/auth/refresh", RefreshHandler),
    Route("/auth/logout", LogoutHandler),
    Route("/auth/change-password", ChangePasswordHandler),
]
