"""Idempotency-Key: a write sent again with the same key and the same request answers exactly what
the first answered, without writing again, for 24 hours. The same key with another request is
422. Without the header nothing changes (a second add is 409).

A key belongs to the signed-in user (without one, on register, to the route and the client's
address). The answer is saved in the same transaction as the write (`@idempotent`), so it exists
exactly when the write does: a retry after a crash, a timeout or a 503 finds it whenever the first
attempt took effect, and does the write when it did not. A verb that answers an error changed
nothing (its transaction is rolled back) and its answer is saved on its own (not for a request
without a user). The avatar routes and the account deletion write GridFS files, which take no
part in transactions (`@idempotent_without_transaction`): the key is claimed before the write and
the answer saved after it, so concurrent attempts write once; a process that dies between the
write and the save leaves a claim that a retry takes over after a minute, and writes again (an
upload answers the same; a second removal of an image answers 404).

What identifies a request is an HMAC of it with the service's secret (a body can hold a
password). A logout or an account deletion ends the session its retry carries: only on those
routes does a retry without a live session get its answer (`ApiHandler.ends_session`)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from auth.clock import utc_now
from handlers.schemas.common import FieldError
from storage.database import TRANSACTION_TIMEOUT_S, TransactionConflict, request_transaction
from storage.idempotency import KeyTaken, SavedAnswer
from web.errors import SERVICE_UNAVAILABLE, UNAUTHORIZED, ApiError, message_body

if TYPE_CHECKING:
    from web.base import ApiHandler

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Printable ASCII without spaces, as a UUID or any client-made token is; a longer key is no safer.
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
KEY_RULE = "1 to 255 visible ASCII characters"
INVALID_KEY = "Invalid Idempotency-Key header"
KEY_REUSED = "Idempotency-Key already used for another request"
KEY_IN_USE = "A request with this Idempotency-Key is still being handled"
# A transaction that meets a concurrent write of the same user is run again, after a short
# random pause, until this much time has passed; then 503 (a retry by the client is safe).
RETRY_FOR_S = TRANSACTION_TIMEOUT_S
# Answers that are not saved: a 429 says "not now", and a retry must be tried again.
NOT_SAVED = frozenset({429})
# A saved answer is one document (at most 16 MB). The largest answer, a MAL import report of
# 20,000 entries with 1,000-character titles, passes this: such a write is refused whole, with
# the key, rather than done and then not kept.
MAX_SAVED_ANSWER_BYTES = 8 * 1024 * 1024
ANSWER_TOO_LARGE = "The answer is too large to keep for an Idempotency-Key: nothing was changed; send it without one"
# A write outside a transaction claims its key first: another attempt with the key waits this
# long for its answer, then answers 409. A claim older than ABANDONED_AFTER was left by a
# process that died mid-write (no write takes a minute): the next attempt takes it over.
CLAIM_WAIT_S = 10.0
ABANDONED_AFTER = timedelta(minutes=1)

Verb = Callable[..., Awaitable[None]]


def idempotent(verb: Verb) -> Verb:
    """The write and its answer in one transaction (see the module's docstring)."""
    return _once(verb, in_transaction=True)


def idempotent_without_transaction(verb: Verb) -> Verb:
    """For writes of GridFS files, which cannot be in a transaction: the key is claimed before
    the write and the answer saved after it."""
    return _once(verb, in_transaction=False)


def _once(verb: Verb, *, in_transaction: bool) -> Verb:
    @functools.wraps(verb)
    async def once(handler: ApiHandler, *args: Any, **kwargs: Any) -> None:
        key = handler.idempotency_key
        if key is None:
            await verb(handler, *args, **kwargs)
            return
        await _answer_once(handler, key, functools.partial(verb, handler, *args, **kwargs), in_transaction)

    # A mark on the verb, read back by is_idempotent (and the OpenAPI document); a function's
    # type has no such attribute.
    once.idempotency = "transaction" if in_transaction else "after"  # type: ignore[attr-defined]
    return once


def is_idempotent(verb: Any) -> bool:
    return getattr(verb, "idempotency", None) is not None


def is_key(header: str) -> bool:
    return _KEY.fullmatch(header) is not None


def key_of(header: str | None) -> str | None:
    """The header's key; 400 when it is there but not a key."""
    if header is None:
        return None
    if not _KEY.fullmatch(header):
        raise ApiError(400, INVALID_KEY, [FieldError(field=HEADER, message=KEY_RULE)])
    return header


def fingerprint(secret: bytes, method: str, uri: str, chunks: list[bytes]) -> str:
    """Of everything that makes a request what it is, keyed with the service's secret: a body
    can hold a password (register, change-password, account deletion), and a bare hash kept in
    the database would let whoever reads it test guesses at full speed. Linear in the body; run
    off the loop for a large one (`sized_work`)."""
    digest = hmac.new(secret, f"{method} {uri}\n".encode(), hashlib.sha256)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class HeldAnswer:
    """What the verb answered, held until its transaction commits."""

    status: int = 200
    body: str = ""


@dataclass(frozen=True)
class _Attempt:
    scope: str
    key: str
    fingerprint: str
    session: str | None  # the hash of the session that sends it

    def answer(self, held: HeldAnswer) -> SavedAnswer:
        return SavedAnswer(self.fingerprint, held.status, held.body, self.session, utc_now())


async def _answer_once(handler: ApiHandler, key: str, run: Callable[[], Awaitable[None]],
                       in_transaction: bool) -> None:
    scope, session = scope_of(handler)
    request_print = await handler.sized_work(
        handler.body_size, fingerprint, handler.services.fingerprint_secret, handler.request.method or "",
        handler.request.uri or "", handler.body_chunks())
    attempt = _Attempt(scope, key, request_print, session)
    deadline = time.monotonic() + RETRY_FOR_S
    for tries in itertools.count():
        saved = await handler.services.idempotency.find(scope, key, utc_now())
        if saved is not None and not saved.pending:
            replay(handler, attempt, saved)
            return
        if handler.unauthenticated:
            # The session is gone and no answer of this key says it went with this very write
            # (a logout, an account deletion): the 401 that authentication deferred.
            raise ApiError(401, UNAUTHORIZED)
        try:
            if in_transaction:
                held = await _in_transaction(handler, run, attempt)
            else:
                held = await _claimed(handler, run, attempt)
        except (TransactionConflict, KeyTaken):
            if time.monotonic() > deadline:
                raise ApiError(503, SERVICE_UNAVAILABLE) from None
            handler.clear()
            # Apart, so that attempts that met stop meeting: a few ms at first, at most 0.2 s.
            await asyncio.sleep(random.uniform(0, min(0.2, 0.005 * 2 ** tries)))
            continue
        handler.send_held(held)
        return


def replay(handler: ApiHandler, attempt: _Attempt, saved: SavedAnswer) -> None:
    if handler.unauthenticated and saved.session != attempt.session:
        raise ApiError(401, UNAUTHORIZED)  # first: without the session, not even whether the key is used
    if saved.fingerprint != attempt.fingerprint:
        raise ApiError(422, KEY_REUSED)
    handler.replay(saved.status or 200, saved.body)


async def _in_transaction(handler: ApiHandler, run: Callable[[], Awaitable[None]], attempt: _Attempt) -> HeldAnswer:
    store = handler.services.idempotency
    try:
        async with request_transaction(handler.services.db):
            held = await _held(handler, run)
            if held.status >= 400:
                raise _Refused(held)  # an answer in error changes nothing: roll back
            if len(held.body) > MAX_SAVED_ANSWER_BYTES:
                raise _Refused(HeldAnswer(413, handler.json_text(message_body(413, ANSWER_TOO_LARGE))))
            await store.save(attempt.scope, attempt.key, attempt.answer(held))
    except _Refused as refused:
        held = refused.held
        if _kept(handler, held):
            await store.save(attempt.scope, attempt.key, attempt.answer(held))
    return held


def _kept(handler: ApiHandler, held: HeldAnswer) -> bool:
    """Whether an answer in error is saved: not a 429, and not one to a request without a user
    (a registration refused changed nothing, and anyone may send one: nothing is kept for it)."""
    return held.status not in NOT_SAVED and (held.status < 400 or handler.user is not None)


async def _claimed(handler: ApiHandler, run: Callable[[], Awaitable[None]], attempt: _Attempt) -> HeldAnswer:
    """A write outside a transaction: the key is claimed first, so that of concurrent attempts
    one writes and the others wait for its answer."""
    store = handler.services.idempotency
    claim = SavedAnswer(attempt.fingerprint, None, "", attempt.session, utc_now())
    holder = await store.claim(attempt.scope, attempt.key, claim, claim.created)
    if holder is not None:
        if holder.fingerprint != attempt.fingerprint:
            raise ApiError(422, KEY_REUSED)
        if utc_now() - holder.created > ABANDONED_AFTER:
            await store.release(attempt.scope, attempt.key, holder)
        else:
            await _wait_for_answer(handler, attempt)
        raise KeyTaken(attempt.key)  # look again: the answer, or the key free
    try:
        held = await _held(handler, run)
    except BaseException:
        await store.release(attempt.scope, attempt.key, claim)  # not answered: a retry writes again
        raise
    if _kept(handler, held):
        await store.save(attempt.scope, attempt.key, attempt.answer(held), replacing=claim)
    else:
        await store.release(attempt.scope, attempt.key, claim)
    return held


async def _wait_for_answer(handler: ApiHandler, attempt: _Attempt) -> None:
    deadline = time.monotonic() + CLAIM_WAIT_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        saved = await handler.services.idempotency.find(attempt.scope, attempt.key, utc_now())
        if saved is None or not saved.pending:
            return
    raise ApiError(409, KEY_IN_USE)


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
        handler.set_retry_after(error.status, error.retry_after)
    finally:
        handler.holding = None
    return held


def scope_of(handler: ApiHandler) -> tuple[str, str | None]:
    """Whose keys these are, and the session that sends it: the signed-in user; the user of the
    cookie when its session is gone (a retried logout); without a user (register), the route
    and the client's address, so that keys made up by others elsewhere never meet."""
    if handler.user is not None:
        return handler.user.id, handler.user.session_hash
    cookie = handler.session_cookie() if handler.unauthenticated else None
    if cookie is not None:
        return cookie.user_id, cookie.secret_hash
    return f"{handler.route or ''} {handler.request.remote_ip}", None
