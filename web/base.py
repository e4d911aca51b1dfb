"""The base of every API handler: JSON in and out, authentication, the Origin check, CORS,
and the one place where errors are rendered."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import tornado.web
from pydantic import BaseModel

import workers
from auth.access_tokens import bearer_token
from auth.clock import iso_utc, utc_now
from auth.passwords import PasswordsBusy
from auth.permissions import is_banned
from auth.personal_tokens import PersonalToken, PersonalTokenGrant, is_expired, is_personal_token
from auth.tokens import COOKIE_NAME, SessionCookie, SessionTimes
from formats.json_reading import JsonLimits
from handlers.schemas.catalog import catalog_id_or_none
from handlers.schemas.common import FieldError
from storage.database import is_document_too_large, is_unavailable
from storage.outcome import ListsFull, UserGone
from storage.round_trips import count_round_trips
from storage.session_reads import CatalogRead, ListRead, SessionRead
from storage.users import FoundSession
from web import conditional, idempotency, same_origin
from web.errors import (
    BODY_TOO_LARGE,
    CROSS_SITE_REFUSED,
    FIELD_REQUIRED,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_PARAMETERS,
    MISSING_PARAMETERS,
    SERVICE_UNAVAILABLE,
    STANDARD_MESSAGES,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    USER_DOCUMENT_FULL,
    ApiError,
    message_body,
    validate,
)
from web.json_input import DEFAULT_JSON_LIMITS, read_json_body
from web.openapi import Operation, PathParameter
from web.reads import Brought, Computed, E, OwnEntry, Read, WholeList, declared_read
from web.services import Services
from web.session import AuthenticatedUser

log = logging.getLogger("tsundoku.handlers")

# A cookie longer than this is not one of ours; do not spend a hash and a query on it.
MAX_TOKEN_LENGTH = 128
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
# Input up to this many bytes is parsed and validated on the event loop: a bounded cost of well
# under a millisecond. Larger input goes to a worker (`off_the_loop`).
INLINE_INPUT_BYTES = 16 * 1024


# JSON bodies are small; only the avatar upload takes more (see `body_limit`).
DEFAULT_BODY_LIMIT = 256 * 1024
UNREACHABLE_BODY_SIZE = 1 << 62
# A 429 with no window to wait for (the password hashes are all busy): try again in a second.
BUSY_RETRY_AFTER_S = 1
# A large body hands the event loop back this often while it arrives (`data_received`).
YIELD_EVERY_BYTES = 1024 * 1024
# What a page on an allowed origin may send beyond the CORS-safelisted headers (Authorization
# for Bearer clients), and read of an answer beyond the safelisted ones: a script cannot see an
# ETag, a download's file name or how long to wait after a 429 unless it is listed.
ALLOWED_REQUEST_HEADERS = ", ".join(["Content-Type", idempotency.HEADER, "Authorization", conditional.IF_MATCH,
                                     conditional.IF_NONE_MATCH])
EXPOSED_HEADERS = ", ".join([idempotency.REPLAYED_HEADER, "ETag", "Content-Disposition", "Retry-After",
                             "WWW-Authenticate"])
# Every 401's challenge (RFC 7235, 3.1): the scheme a client may authenticate with, a Bearer token
# (RFC 6750, 3; the cookie is no HTTP authentication scheme), and, when the request sent a token
# and the answer refuses it, why (RFC 6750, 3.1: not when the request sent none).
BEARER_CHALLENGE = "Bearer"
REFUSED_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


@tornado.web.stream_request_body
class ApiHandler(tornado.web.RequestHandler):
    """Bodies are streamed so that the limit of each route applies before a byte is buffered:
    `prepare` (authentication included) runs first, then the body arrives in `data_received`."""

    # Public routes set this to False.
    requires_auth: ClassVar[bool] = True
    # Routes that answer without the database (the OpenAPI document, health) set this to False.
    needs_database: ClassVar[bool] = True
    # The OpenAPI description of each implemented method, keyed by lower-case method name.
    api: ClassVar[dict[str, Operation]] = {}
    # Routes whose write ends the session that sends it (logout, deleting one's account): a
    # retry with its Idempotency-Key gets its answer though the session is gone.
    ends_session: ClassVar[bool] = False

    services: Services
    user: AuthenticatedUser | None
    brought: Brought  # what the verb declared with `@reads`, set by authentication

    def initialize(self, services: Services, route: str | None = None,
                   path_parameters: Mapping[str, PathParameter] | None = None) -> None:
        self.services = services
        self.route = route  # the pattern this handler was matched by, for the access log and metrics
        self.path_parameters = path_parameters or {}  # the route's declarations (`path_parameter`)
        self.round_trips: list[int] | None = None
        self.user = None
        self.brought = Brought()
        # This write's Idempotency-Key (web.idempotency), and whether authentication's 401
        # waits for its saved answer (a retried logout whose session the first attempt ended).
        self.idempotency_key: str | None = None
        self.unauthenticated = False
        self.holding: idempotency.HeldAnswer | None = None  # the verb's answer, until it commits
        self._counted = False
        self._body_chunks: list[bytes] = []
        self._body_size = 0
        self._etag: str | None = None  # a large answer's tag, hashed off the loop (`finish_large`)
        self._add_cors_headers()

    # ---- the request's life ----

    def answers_etag(self) -> bool:
        """Whether this request's operation answers an ETag (`Operation.answers_etag`: every GET of
        the reader's own data)."""
        operation = self.api.get(self.verb())
        return operation is not None and operation.answers_etag(self.verb())

    def compute_etag(self) -> str | None:
        """The one place a GET of the reader's own data gets its ETag: a strong hash of the bytes
        it answers, so the tag changes exactly when the answer does, and the tag of an entry's GET
        is the one its update's If-Match compares (`unchanged_entry`). Tornado's `finish` calls this
        for a 200 to a GET or HEAD that set no ETag of its own (avatars and public pages do), then
        answers 304 when If-None-Match names it (`check_etag_header`). Other answers have none."""
        if not self.answers_etag():
            return None
        # The answer depends on who asks: no cache may give one user's tag or answer to another.
        # Cache-Control stays no-store: a client that keeps the answer (an app, a page's script)
        # keeps its tag too, and no browser or proxy keeps a copy of private data.
        self.add_header("Vary", "Cookie")
        self.add_header("Vary", "Authorization")
        return self._etag or conditional.entity_tag(self._write_buffer)

    def check_etag_header(self) -> bool:
        """Tornado's question in `finish`, answered by web.conditional's rules (weak, lists, `*`)."""
        return conditional.none_match_fails(self.request.headers.get(conditional.IF_NONE_MATCH),
                                            self._headers.get("Etag"))

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.clear_header("Server")  # Tornado's default names its version: nothing an attacker needs
        self.add_header("Vary", "Origin")
        # Tornado calls this once before initialize (no services yet) and again on every error.
        if getattr(self, "services", None) is not None:
            self._add_cors_headers()

    def _add_cors_headers(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin and origin in self.services.settings.cors_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.set_header("Access-Control-Expose-Headers", EXPOSED_HEADERS)

    async def prepare(self) -> None:
        self.round_trips = count_round_trips()  # this request's database commands, for the metrics
        self.services.inflight.started()
        self._counted = True
        if not self.implements(self.request.method or ""):
            raise tornado.web.HTTPError(405)
        # Stopping, or the embedded database is known to be down: answer at once.
        if self.services.stopping or (self.needs_database and not self.services.database_available):
            raise ApiError(503, SERVICE_UNAVAILABLE)
        self.limit_body()
        if self.request.method == "OPTIONS":
            return
        key = (self.request.headers.get(idempotency.HEADER)
               if idempotency.is_idempotent(getattr(type(self), self.verb(), None)) else None)
        if self.requires_auth:
            try:
                await self.authenticate()
            except ApiError as refusal:
                if refusal.status != 401 or key is None or not self.ends_session:
                    raise
                await self.defer_refusal(key, refusal)
        self.idempotency_key = idempotency.key_of(key)
        self.check_origin()
        self.check_same_origin_proof()
        self.check_available()
        # The permission and the personal token scope an operation declares for OpenAPI are the
        # ones enforced: said once.
        operation = self.api.get(self.verb())
        if self.requires_auth:
            self.require_scope(None if operation is None else operation.scope)
        if operation is not None and operation.permission is not None:
            self.require_permission(operation.permission)

    async def defer_refusal(self, key: str, refusal: ApiError) -> None:
        """A retried logout or account deletion: its session is gone, and the answer saved for
        its key, by this very session, will answer it. Anything else is the 401 at once, before
        the body is read. (Only a cookie proves it was this session: a token names a session by
        its id, and what was saved names it by its hash.)"""
        cookie = self.session_cookie()
        if cookie is None or self.bearer_token() is not None or not idempotency.is_key(key):
            raise refusal
        saved = await self.services.idempotency.find(cookie.user_id, key, utc_now())
        if saved is None or saved.pending or saved.session != cookie.secret_hash:
            raise refusal
        self.unauthenticated = True

    def check_available(self) -> None:
        """After authentication, before permissions and the body: a route this instance does
        not serve (see the avatar routes and FILE_SERVICE) raises here."""

    def body_limit(self) -> int:
        return DEFAULT_BODY_LIMIT

    def limit_body(self) -> None:
        limit = self.body_limit()
        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, BODY_TOO_LARGE)  # answered before the body is read
        # A chunked body has no length to check: `data_received` refuses it once it passes the
        # limit. Tornado's own cut-off would answer a bare 400 that is not JSON, so it is set
        # out of reach (nothing past our limit is kept). Tornado types `connection` as optional;
        # a request being served always has one.
        self.request.connection.set_max_body_size(UNREACHABLE_BODY_SIZE)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        before = self._body_size
        self._body_size += len(chunk)
        if self._body_size <= self.body_limit():
            self._body_chunks.append(chunk)
        elif not self._finished:
            # Answered now, in the JSON shape; Tornado then closes the connection.
            self._body_chunks = []
            too_large = ApiError(413, BODY_TOO_LARGE)
            self.send_error(413, exc_info=(type(too_large), too_large, None))
        # Tornado reads a body that has already arrived chunk after chunk without returning to
        # the event loop (an awaited read that is already done does not yield): 16 MB from a
        # fast client kept every other request waiting ~25 ms. Each MB, let them run.
        if before // YIELD_EVERY_BYTES != self._body_size // YIELD_EVERY_BYTES:
            return asyncio.sleep(0)
        return None

    @property
    def body_size(self) -> int:
        return self._body_size

    def body_chunks(self) -> list[bytes]:
        """The body as it arrived; a route with a large body joins it off the event loop."""
        if self._body_size > self.body_limit():
            raise ApiError(413, BODY_TOO_LARGE)
        return self._body_chunks

    def on_finish(self) -> None:
        self._stop_counting()

    def on_connection_close(self) -> None:
        # A client that goes away mid-body never reaches on_finish: without this the request
        # would count as in flight forever, and shutdown would wait for it.
        self._stop_counting()
        super().on_connection_close()

    def _stop_counting(self) -> None:
        if self._counted:
            self._counted = False
            self.services.inflight.finished()

    @classmethod
    def implemented_methods(cls) -> list[str]:
        return [m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") if cls.implements(m)]

    @classmethod
    def implements(cls, method: str) -> bool:
        if method == "OPTIONS":
            return True
        if method == "HEAD" and cls.head is ApiHandler.head:
            # HEAD is GET without the body (RFC 9110, 9.3.2); but HEAD must be safe, so a GET that
            # writes (@same_origin_only) offers none: 405 rather than a write nobody sees answered.
            return cls.implements("GET") and not same_origin.requires_same_origin(getattr(cls, "get", None))
        name = method.lower()
        own = getattr(cls, name, None)
        return own is not None and own is not getattr(tornado.web.RequestHandler, name, None)

    def verb(self) -> str:
        """The method whose declarations (`api`, `@reads`) this request follows: a HEAD that the
        handler does not implement itself is its GET, with the same reads and permission."""
        method = (self.request.method or "").lower()
        return "get" if method == "head" and type(self).head is ApiHandler.head else method

    async def head(self, *args: Any, **kwargs: Any) -> None:
        """GET's answer: Tornado writes the headers (Content-Length included) and drops the body."""
        answer = self.get(*args, **kwargs)
        if answer is not None:
            await answer

    # ---- authentication ----

    def session_cookie(self) -> SessionCookie | None:
        """The request's session cookie, parsed; None when there is none or it is not one of ours
        (longer than any of ours: no hash and no query are spent on it)."""
        value = self.get_cookie(COOKIE_NAME)
        return SessionCookie.parse(value) if value and len(value) <= MAX_TOKEN_LENGTH else None

    def declared_read(self) -> Read | None:
        """What this request's verb declared with `@reads`, if anything."""
        return declared_read(getattr(type(self), self.verb(), None))

    def session_read(self) -> SessionRead | None:
        """What the session query brings besides the user, from the verb's declaration and the
        path's `id`: a typed request the user store turns into its query."""
        read = self.declared_read()
        if read is None:
            return None
        if isinstance(read, WholeList):
            return ListRead(read.list_field)
        if isinstance(read, Computed):
            return read.request(self.query_arguments())
        catalog_id = catalog_id_or_none(self.path_kwargs.get("id"))
        if catalog_id is None:
            return None  # nothing to bring: the verb answers 400 for the path
        if isinstance(read, OwnEntry):
            return ListRead(read.list_field, series_id=catalog_id)
        return CatalogRead(read.collection, catalog_id)

    def _brought(self, found: FoundSession) -> Brought:
        """What the verb declared, as the session query brought it."""
        return Brought(declared=self.declared_read(), verb=f"{type(self).__name__}.{self.verb()}",
                       entries=found.entries, catalog=found.catalog, figures=found.figures)

    def offers_credential(self) -> bool:
        """Whether the request sends a session cookie or an access token (valid or not)."""
        return self.bearer_token() is not None or bool(self.get_cookie(COOKIE_NAME))

    def bearer_token(self) -> str | None:
        """The token of `Authorization: Bearer <token>`, if the request sends one."""
        return bearer_token(self.request.headers.get("Authorization"))

    async def authenticate(self, *, read_only: bool = False) -> None:
        """Sets `self.user` from the access or personal token (`Authorization: Bearer`; a personal
        token by its `tsu_pat_` prefix) when the request sends one, else from the session cookie,
        or raises 401. A cookie that names no live session is
        cleared (an expired session is revoked too), and the session's last-seen time and the
        cookie's expiry are refreshed once an hour. With `read_only` none of that: no cookie is
        set or cleared and nothing is written, for answers a shared cache may store (a cached
        Set-Cookie would go to everyone)."""
        token = self.bearer_token()
        if token is not None and is_personal_token(token):
            await self.authenticate_by_personal_token(token, read_only=read_only)
            return
        if token is not None:
            # A token that fails is a 401, never a fall back to the cookie: the client said which
            # credential it means, and one that uses a token is told at once that it is dead.
            await self.authenticate_by_token(token, read_only=read_only)
            return
        cookie = self.session_cookie()
        if cookie is None:
            raise ApiError(401, UNAUTHORIZED)
        hashed = cookie.secret_hash
        users = self.services.users
        found = await users.find_by_session(cookie.user_id, hashed, self.session_read())
        if found is None:
            if not read_only:
                self.clear_refresh_cookie()
            raise ApiError(401, UNAUTHORIZED)
        self.brought = self._brought(found)
        times = SessionTimes(created=found.created, last_seen=found.last_seen)
        now = utc_now()
        if times.is_expired(now):
            if not read_only:
                await users.revoke_session(cookie.user_id, hashed)
                self.clear_refresh_cookie()
            raise ApiError(401, UNAUTHORIZED)
        if times.needs_touch(now) and not read_only:
            await users.touch_session(cookie.user_id, hashed, now)
            self.set_refresh_cookie(cookie, SessionTimes(created=times.created, last_seen=now))
        self.user = AuthenticatedUser(record=found.user, session_hash=hashed, session_id=found.session_id)

    async def authenticate_by_token(self, token: str, *, read_only: bool) -> None:
        """Sets `self.user` from an access token: its signature and expiry checked here, then its
        session in the one read a cookie's takes (by the session's id instead of its secret's
        hash), so that a session ended, a password changed (other sessions end), an account
        deleted or a ban refuse the token at once. No cookie is set or cleared: none was used."""
        now = utc_now()
        claims = self.services.access_tokens.verify(token, now)
        if claims is None:
            raise ApiError(401, UNAUTHORIZED)
        users = self.services.users
        found = await users.find_by_session_id(claims.user_id, claims.session_id, self.session_read())
        # Banned, a cookie still shows the user their account (and its ban); a token, which an app
        # holds to act for them, stops.
        if found is None or is_banned(found.user.roles):
            raise ApiError(401, UNAUTHORIZED)
        times = SessionTimes(created=found.created, last_seen=found.last_seen)
        if times.is_expired(now):
            if not read_only:
                await users.revoke_session(claims.user_id, found.token_hash)
            raise ApiError(401, UNAUTHORIZED)
        if times.needs_touch(now) and not read_only:
            await users.touch_session(claims.user_id, found.token_hash, now)
        self.brought = self._brought(found)
        self.user = AuthenticatedUser(record=found.user, session_hash=found.token_hash,
                                      session_id=found.session_id, access_token=token)

    async def authenticate_by_personal_token(self, token: str, *, read_only: bool) -> None:
        """Sets `self.user` from a personal token: the user's document, with only that token and
        what the verb reads, in the one read a cookie's takes. Revoked, expired, the account
        deleted or banned: 401. Its last use is written at most once an hour."""
        parsed = PersonalToken.parse(token)
        if parsed is None:
            raise ApiError(401, UNAUTHORIZED)
        hashed = parsed.secret_hash
        users = self.services.users
        found = await users.find_by_personal_token(parsed.user_id, hashed, self.session_read())
        now = utc_now()
        if found is None or is_banned(found.user.roles) or found.expires is None or is_expired(found.expires, now) \
                or found.session_id is None:
            raise ApiError(401, UNAUTHORIZED)
        if SessionTimes(created=found.created, last_seen=found.last_seen).needs_touch(now) and not read_only:
            await users.touch_personal_token(parsed.user_id, hashed, now)
        self.brought = self._brought(found)
        self.user = AuthenticatedUser(record=found.user, session_hash=hashed,
                                      personal_token=PersonalTokenGrant(found.session_id, found.scopes))

    def require_scope(self, scope: str | None) -> None:
        """A request made with a personal token reaches only routes that declare a scope it has:
        403 otherwise. Nothing for a cookie or an access token."""
        grant = self.user.personal_token if self.user is not None else None
        if grant is not None and not grant.allows(scope):
            raise ApiError(403, FORBIDDEN)

    def require_user(self) -> AuthenticatedUser:
        if self.user is None:
            raise ApiError(401, UNAUTHORIZED)
        return self.user

    def require_permission(self, permission: str) -> AuthenticatedUser:
        user = self.require_user()
        if not user.can(permission):
            raise ApiError(403, FORBIDDEN)
        return user

    def set_refresh_cookie(self, cookie: SessionCookie, times: SessionTimes) -> None:
        self.set_cookie(COOKIE_NAME, cookie.value, path="/", expires=times.cookie_expiry(), httponly=True,
                        **self._cookie_attributes())

    def clear_refresh_cookie(self) -> None:
        # With the attributes the cookie was set with: a browser keeps a SameSite=None cookie
        # whose clearing is not Secure.
        self.clear_cookie(COOKIE_NAME, path="/", httponly=True, **self._cookie_attributes())

    def _cookie_attributes(self) -> dict[str, Any]:
        """Secure and SameSite of the session cookie in this answer (COOKIE_SECURE, COOKIE_SAMESITE).
        `request.protocol` is https over TLS, or behind TRUST_PROXY's proxy when its X-Scheme
        or X-Forwarded-Proto says so (Tornado's xheaders, which also set the client's address)."""
        settings = self.services.settings
        secure = settings.session_cookie_secure(self.request.protocol == "https")
        return {"secure": secure, "samesite": settings.session_cookie_samesite(secure)}

    # ---- cross-origin ----

    def own_origin(self) -> str:
        return f"{self.request.protocol}://{self.request.host}"

    def origin_is_trusted(self, origin: str) -> bool:
        return origin in self.services.settings.cors_origins or origin == self.own_origin()

    def check_origin(self) -> None:
        """A browser sends Origin on cross-site writes; one from a site we do not serve must
        not be able to act with the user's cookie. A token is no cookie: a page that sends one
        holds it already, and can do with it what it likes from anywhere."""
        if self.request.method not in STATE_CHANGING_METHODS or self.authenticated_by_token():
            return
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.origin_is_trusted(origin):
            raise ApiError(403, FORBIDDEN)

    def check_same_origin_proof(self) -> None:
        """A verb declared `@same_origin_only` (a GET that writes) runs only for a request that
        proves a trusted page sent it (see web.same_origin); the cookie alone proves nothing."""
        if not same_origin.requires_same_origin(getattr(type(self), self.verb(), None)):
            return
        if self.authenticated_by_token():
            return
        headers = self.request.headers
        if not same_origin.proves_same_origin(headers.get("Origin"), headers.get(same_origin.FETCH_SITE_HEADER),
                                              self.origin_is_trusted):
            raise ApiError(403, CROSS_SITE_REFUSED)

    def authenticated_by_token(self) -> bool:
        """Whether the request was authenticated by a credential a browser never attaches on its
        own (an access or personal token, as `Authorization: Bearer`): another site cannot make a browser send
        one, so such a request needs no same-origin proof. False when a cookie authenticated it,
        and when nothing did."""
        return self.user is not None and (self.user.access_token is not None or self.user.personal_token is not None)

    def options(self, *args: Any, **kwargs: Any) -> None:
        origin = self.request.headers.get("Origin")
        if not origin or origin not in self.services.settings.cors_origins:
            raise ApiError(403, FORBIDDEN)
        self.set_header("Access-Control-Allow-Methods", ", ".join(self.implemented_methods()))
        self.set_header("Access-Control-Allow-Headers", ALLOWED_REQUEST_HEADERS)
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    # ---- input ----

    async def off_the_loop(self, work: Callable[..., T], *args: Any, pool: Executor | None = None) -> T:
        """The one way work that grows with a request's input leaves the event loop: a worker
        of the input pool (or `pool`: images have their own), a few at once, so that large
        bodies queue instead of multiplying their memory."""
        return await workers.off_the_loop(pool or self.services.input_pool, work, *args)

    async def sized_work(self, size: int, work: Callable[..., T], *args: Any) -> T:
        """`work` on input of `size` bytes: at once when that is small (a bounded cost, cheaper
        than a thread hop), off the loop otherwise."""
        if size <= INLINE_INPUT_BYTES:
            return work(*args)
        return await self.off_the_loop(work, *args)

    async def parse_body(self, model: type[M], unwrap: Callable[[Any], Any] | None = None) -> M:
        """The body validated as `model` (`unwrap` first takes it out of an envelope)."""
        return await self.sized_work(self._body_size, read_and_validate, model, self.body_chunks(),
                                     self.request.headers.get("Content-Type", ""), unwrap)

    def query_arguments(self) -> dict[str, str]:
        """The query string as a flat dict; a repeated key keeps its last value. Each value is the
        text sent, decoded: tornado's get_query_argument would strip its ends and turn control
        characters into spaces, so that the route would judge another text than the one the
        client sent (and the document's schema describes)."""
        arguments = {}
        for key, values in self.request.query_arguments.items():
            try:
                arguments[key] = values[-1].decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, INVALID_PARAMETERS, [FieldError(field=key, message="must be UTF-8")]) from None
        return arguments

    async def list_parameters(self, model: type[M]) -> M:
        """List routes take GET query parameters; the web client sends the same as a JSON
        body with POST. Both are validated by the same model. (A query string is within the
        header limit, 64 KB: validated at once.)"""
        if self.request.method == "POST":
            return await self.parse_body(model)
        return self.query_parameters(model)

    def query_parameters(self, model: type[M]) -> M:
        """The query string validated as `model`, its values as the text they are."""
        return validate(model, self.query_arguments())

    def path_parameter(self, name: str, *, required: bool = True) -> str:
        """The path's `name`, held to the route's declaration of it (the one OpenAPI publishes):
        400 "Required parameters missing" when the route matched it empty (`/users//save-settings`),
        unless empty is merely another value outside the declaration (`required=False`); then the
        declaration's own answer to a value outside it."""
        value = self.path_kwargs.get(name) or ""
        if required and not value:
            raise ApiError(400, MISSING_PARAMETERS, [FieldError(field=name, message=FIELD_REQUIRED)])
        declared = self.path_parameters.get(name)
        if declared is not None and not declared.accepts(value):
            raise declared.refused(name)
        return value

    # ---- output ----

    def client_has(self, etag: str) -> bool:
        """Whether If-None-Match names `etag` (then a 304 answers): web.conditional's rules, the
        weak comparison (RFC 9110, 13.1.2)."""
        return conditional.none_match_fails(self.request.headers.get(conditional.IF_NONE_MATCH), etag)

    def if_match(self) -> str | None:
        return self.request.headers.get(conditional.IF_MATCH)

    def unchanged_entry(self, current: E | None, answer: Callable[[E], BaseModel], missing: str) -> E | None:
        """If-Match for a write to the user's entry `current` (as stored now; None: they have
        none), whose GET answers `answer(current)`: 404 `missing` when there is no entry (what the
        request answers without the header: RFC 9110, 13.2.2), 412 when no tag the header names is
        the entry's. Then the entry the write must find exactly as it is (the store puts it in the
        write's filter, so a change in between is a 412 too, never overwritten); None without the
        header, or with `*` (which asks only that the entry exist)."""
        header = self.if_match()
        if header is None:
            return None
        if current is None:
            raise ApiError(404, missing)
        if not conditional.if_match_holds(header, conditional.tag_of_answer(answer(current))):
            raise ApiError(412, conditional.PRECONDITION_FAILED)
        return None if conditional.asks_any(header) else current

    async def finish_large(self, body: str | bytes) -> None:
        """An answer that grows with the user's data (an export), built off the event loop: its
        bytes, and its ETag when it has one, are made off the loop too."""
        data = await self.sized_work(len(body), _as_bytes, body)
        if self.answers_etag():
            self._etag = await self.sized_work(len(data), conditional.entity_tag, [data])
        self.finish(data)

    @staticmethod
    def json_text(payload: Any) -> str:
        return json.dumps(payload, separators=(",", ":"), default=_json_default)

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.finish_json(self.json_text(payload), status)

    def finish_json(self, text: str, status: int = 200) -> None:
        """The answer, already JSON; held instead while a write's transaction is open."""
        if self.holding is not None:
            self.holding.status, self.holding.body = status, text
            return
        self.set_status(status)
        self.finish(text)

    def send_held(self, held: idempotency.HeldAnswer) -> None:
        """A held answer (see web.idempotency), once what it says is stored."""
        self.set_status(held.status)
        self.set_held_challenge(held.status, held.body)
        self.finish(held.body)

    def replay(self, status: int, body: str) -> None:
        """The answer saved for an earlier attempt with this request's Idempotency-Key."""
        self.set_header(idempotency.REPLAYED_HEADER, "true")
        self.set_status(status)
        self.set_held_challenge(status, body)
        self.finish(body)

    def write_model(self, answer: BaseModel | None, status: int = 200) -> None:
        """An answer built as its published response model (None answers JSON `null`), as
        `conditional.answer_json` writes it."""
        self.finish_json(conditional.answer_json(answer), status)

    def write_message(self, status: int, message: str) -> None:
        self.write_json(message_body(status, message), status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exception = kwargs.get("exc_info", (None, None, None))[1]
        errors, error_count = None, None
        if isinstance(exception, ApiError):
            status, message = exception.status, exception.message
            errors, error_count = exception.errors, exception.error_count
        elif exception is not None and is_unavailable(exception):
            status, message = 503, SERVICE_UNAVAILABLE
        elif isinstance(exception, PasswordsBusy):
            # Not 503: that says the service is down or stopping, and a balancer that takes an
            # instance out on it would let a flood of logins take instances out.
            status, message = 429, TOO_MANY_REQUESTS
        elif _user_document_full(exception):
            status, message = 507, USER_DOCUMENT_FULL
        elif isinstance(exception, UserGone):
            status, message = 401, UNAUTHORIZED  # deleted since the session was read
        elif isinstance(exception, tornado.web.HTTPError):
            status = exception.status_code
            message = STANDARD_MESSAGES.get(status, self._reason)
        else:
            status, message = 500, INTERNAL_ERROR
        self.set_status(status)
        if status == 405:
            self.set_header("Allow", ", ".join(self.implemented_methods() + ["OPTIONS"]))
        self.set_retry_after(status, exception.retry_after if isinstance(exception, ApiError) else None)
        self.set_challenge(status, message)
        self.finish(json.dumps(message_body(status, message, errors, error_count), separators=(",", ":")))

    def set_challenge(self, status: int, message: str) -> None:
        """Every 401 says how to authenticate. "Unauthorized" to a request that sent a Bearer token
        refused that token (unknown, expired, forged, its session ended, a banned or deleted user's,
        or a token where only the cookie is taken): `error="invalid_token"`, so that a client knows
        to get a new one. Any other 401 (no credential, a dead cookie, a password that is wrong
        while the token is fine) names the scheme alone."""
        if status != 401:
            return
        refused = message == UNAUTHORIZED and self.bearer_token() is not None
        self.set_header("WWW-Authenticate", REFUSED_TOKEN_CHALLENGE if refused else BEARER_CHALLENGE)

    def set_held_challenge(self, status: int, body: str) -> None:
        """`set_challenge` for an answer held or saved as its JSON text (web.idempotency: a wrong
        password to DELETE /user/account or POST /auth/change-password is such a 401)."""
        if status == 401:
            self.set_challenge(status, str(json.loads(body).get("data", "")))

    def set_retry_after(self, status: int, seconds: int | None) -> None:
        """Every 429 says when to try again (RFC 9110, 10.2.3): when the limit's window ends, or
        in a second when every password hash is busy (a queue, not a window)."""
        if status == 429:
            self.set_header("Retry-After", str(seconds or BUSY_RETRY_AFTER_S))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, (ApiError, tornado.web.HTTPError, PasswordsBusy, UserGone)):
            return  # an answer, not a fault: the access log has it
        if _user_document_full(value):
            log.warning("user document full in %s %s", self.request.method, self.request.path)
            return
        if is_unavailable(value):
            log.warning("database unavailable during %s %s: %s: %s", self.request.method, self.request.path,
                        type(value).__name__, value)
            return
        log.error("unhandled error in %s %s", self.request.method, self.request.path, exc_info=(typ, value, tb))


class NotFoundHandler(ApiHandler):
    """Every path no route matches."""

    requires_auth = False

    async def prepare(self) -> None:
        raise tornado.web.HTTPError(404)


def validate_body(model: type[M], body: Any) -> M:
    return validate(model, {} if body is None else body)


def read_and_validate(model: type[M], chunks: list[bytes], content_type: str,
                      unwrap: Callable[[Any], Any] | None = None, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> M:
    """A body as it arrived -> its model. Pure, so that it can run in a worker."""
    body = read_json_body(b"".join(chunks), content_type, limits)
    return validate_body(model, body if unwrap is None else unwrap(body))


def _as_bytes(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else body


def _user_document_full(error: BaseException | None) -> bool:
    """A write refused because the user's document is (or would be) too large: 507, not a fault."""
    return isinstance(error, ListsFull) or is_document_too_large(error)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
