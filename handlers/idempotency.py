"""Idempotency-Key: a write sent again with the same key and the same request answers exactly what
the first answered, without writing again, for 24 hours. The same key with another request is
422. Without the header nothing changes (a second add is 409).

A key belongs to the signed-in user (to the route on the routes without one: register). The
answer is saved in the same transaction as the write (`@idempotent`), so it exists exactly when
the write does: a retry after a crash, a timeout or a 503 finds it whenever the first attempt
took effect, and does the write when it did not. A verb that answers an error changed nothing
(its transaction is rolled back) and its answer is saved on its own. The avatar routes and the
account deletion write GridFS files, which take no part in transactions
(`@idempotent_without_transaction`): their answer is saved right after the write, so a crash
between the two makes a retry write again (an upload answers the same; a second removal of an
image answers 404)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auth.clock import utc_now
from auth.tokens import COOKIE_NAME, SessionCookie
from handlers.errors import SERVICE_UNAVAILABLE, UNAUTHORIZED, ApiError, message_body
from storage.database import TransactionConflict, request_transaction
from storage.idempotency import KeyTaken, SavedAnswer

if TYPE_CHECKING:
    from handlers.base import ApiHandler

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Printable ASCII without spaces, as a UUID or any client-made token is; a longer key is no safer.
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
INVALID_KEY = "Invalid Idempotency-Key header"
KEY_REUSED = "Idempotency-Key already used for another request"
# A transaction that meets a concurrent write of the same user is run again this many times in
# all, then answers 503: each attempt is a few round trips, and a retry by the client is safe.
ATTEMPTS = 5
# Answers that are not saved: a 429 says "not now", and a retry must be tried again.
NOT_SAVED = frozenset({429})
# A saved answer is one document (at most 16 MB). The largest answer, a MAL import report of
# 20,000 entries with 1,000-character titles, passes this: such a write is refused whole, with
# the key, rather than done and then not kept.
MAX_SAVED_ANSWER_BYTES = 8 * 1024 * 1024
ANSWER_TOO_LARGE = "The answer is too large to keep for an Idempotency-Key: nothing was changed; send it without one"

Verb = Callable[..., Awaitable[None]]


def idempotent(verb: Verb) -> Verb:
    """The write and its answer in one transaction (see the module's docstring)."""
    return _once(verb, in_transaction=True)


def idempotent_without_transaction(verb: Verb) -> Verb:
    """For writes of GridFS files, which cannot be in a transaction: the answer is saved after."""
    return _once(verb, in_transaction=False)


def _once(verb: Verb, *, in_transaction: bool) -> Verb:
    @functools.wraps(verb)
    async def once(handler: ApiHandler, *args: Any, **kwargs: Any) -> None:
        key = handler.idempotency_key
        if key is None:
            await verb(handler, *args, **kwargs)
            return
        await _answer_once(handler, key, functools.partial(verb, handler, *args, **kwargs), in_transaction)

    once.idempotency = "transaction" if in_transaction else "after"  # type: ignore[attr-defined]
    return once


def is_idempotent(verb: Any) -> bool:
    return getattr(verb, "idempotency", None) is not None


def key_of(header: str | None) -> str | None:
    """The header's key; 400 when it is there but not a key."""
    if header is None:
        return None
    if not _KEY.fullmatch(header):
        raise ApiError(400, INVALID_KEY)
    return header


def fingerprint(method: str, uri: str, chunks: list[bytes]) -> str:
    """Of everything that makes a request what it is. Linear in the body; run off the loop
    for a large one (`sized_work`)."""
    digest = hashlib.sha256(f"{method} {uri}\n".encode())
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class HeldAnswer:
    """What the verb answered, held until its transaction commits."""

    status: int = 200
    body: str = ""


async def _answer_once(handler: ApiHandler, key: str, run: Callable[[], Awaitable[None]],
                       in_transaction: bool) -> None:
    services = handler.services
    scope, session = _scope(handler)
    method = handler.request.method or ""
    request_print = await handler.sized_work(handler.body_size, fingerprint, method, handler.request.uri or "",
                                             handler.body_chunks())
    for _ in range(ATTEMPTS):
        saved = await services.idempotency.find(scope, key, utc_now())
        if saved is not None:
            if handler.unauthenticated and saved.session != session:
                raise ApiError(401, UNAUTHORIZED)  # first: without the session, not even whether the key is used
            if saved.fingerprint != request_print:
                raise ApiError(422, KEY_REUSED)
            handler.replay(saved.status, saved.body)
            return
        if handler.unauthenticated:
            # The session is gone and no answer of this key says it went with this very write
            # (a logout, an account deletion): the 401 that authentication deferred.
            raise ApiError(401, UNAUTHORIZED)
        try:
            held = await _run_and_save(handler, run, in_transaction,
                                       lambda held: SavedAnswer(request_print, held.status, held.body, session,
                                                                utc_now()), scope, key)
        except (TransactionConflict, KeyTaken):
            handler.clear()
            continue
        handler.send_held(held)
        return
    raise ApiError(503, SERVICE_UNAVAILABLE)


async def _run_and_save(handler: ApiHandler, run: Callable[[], Awaitable[None]], in_transaction: bool,
                        answer_of: Callable[[HeldAnswer], SavedAnswer], scope: str, key: str) -> HeldAnswer:
    store = handler.services.idempotency
    if not in_transaction:
        held = await _held(handler, run)  # answers of a few dozen bytes (images, account deletion)
        if held.status not in NOT_SAVED:
            await store.save(scope, key, answer_of(held))
        return held
    try:
        async with request_transaction(handler.services.db):
            held = await _held(handler, run)
            if held.status >= 400:
                raise _Refused(held)  # an answer in error changes nothing: roll back
            if len(held.body) > MAX_SAVED_ANSWER_BYTES:
                raise _Refused(HeldAnswer(413, handler.json_text(message_body(413, ANSWER_TOO_LARGE))))
            await store.save(scope, key, answer_of(held))
    except _Refused as refused:
        held = refused.held
        if held.status not in NOT_SAVED:
            await store.save(scope, key, answer_of(held))
    return held


class _Refused(Exception):
    def __init__(self, held: HeldAnswer) -> None:
        super().__init__(held.status)
        self.held = held


async def _held(handler: ApiHandler, run: Callable[[], Awaitable[None]]) -> HeldAnswer:
    """Runs the verb with its answer held, an ApiError included (rendered as write_error would)."""
    held = HeldAnswer()
    handler.holding = held
    try:
        await run()
    except ApiError as error:
        held.status = error.status
        held.body = handler.json_text(message_body(error.status, error.message, error.errors, error.error_count))
    finally:
        handler.holding = None
    return held


def _scope(handler: ApiHandler) -> tuple[str, str | None]:
    """Whose keys these are, and the session that sends it: the signed-in user; the user of the
    cookie when its session is gone (a retried logout); the route when there is no user."""
    if handler.user is not None:
        return handler.user.id, handler.user.session_hash
    value = handler.get_cookie(COOKIE_NAME)
    cookie = SessionCookie.parse(value) if handler.unauthenticated and value else None
    if cookie is not None:
        return cookie.user_id, cookie.secret_hash
    return handler.route or "", None
