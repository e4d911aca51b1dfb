"""The MongoDB client: one durable write concern, bounded waits, retried writes, transactions,
and which failures mean "the database is unavailable" rather than a bug."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, TypeVar

import pymongo
from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
    WriteError,
)
from pymongo.monitoring import CommandListener

from storage.round_trips import RoundTripCounter
from storage.user_turns import user_turn

# An acknowledged write must survive a crash: j=True is what makes that true on SecantusDB
# (measured on SecantusDB: acknowledged writes without it were lost on kill -9; docs/design.md) and
# costs nothing extra on a real MongoDB.
DURABLE_WRITES = WriteConcern(w="majority", j=True)

# A request must not hang while the database is down: selection gives up after a few seconds
# and the request answers 503.
SERVER_SELECTION_TIMEOUT_MS = 3000
# No single operation of a request may wait longer than this, even on a database that accepts
# the connection and then stops answering (a hung or stopped server): it fails and answers 503.
REQUEST_OPERATION_TIMEOUT_MS = 10_000
# A health check (a load balancer's, an operator's) wants an answer now: a database that does not
# answer a ping within this cannot serve, whatever the reason (restarting, hung, unreachable).
PING_TIMEOUT_S = 1.0
# A transaction, with the driver's retries of transient conflicts, ends within this.
TRANSACTION_TIMEOUT_S = 10.0
# Where the embedded database's supervisor writes its probe: a database of its own, so that the
# service's database (its backups, its collections) never holds it.
PROBE_DATABASE = "tsundoku_supervisor"
PROBE_COLLECTION = "write_probe"
# Probes write one of this many documents, the next one each second. A probe that timed out on
# the client may still be running on the server (SecantusDB retries a write that conflicts, for
# 10 s and more): when every probe wrote one document, each next probe conflicted with the last
# one, timed out in turn, and a busy database was judged hung and restarted (seen in a soak).
PROBE_SLOTS = 64


def probe_slot() -> str:
    """The document the write probe (or a health check) writes now: the second's, of PROBE_SLOTS."""
    return f"probe-{int(time.time()) % PROBE_SLOTS}"

# Server error codes that say "not now" (failover, shutdown, overload, timeouts, conflicts),
# not "this request is wrong". Taken from MongoDB's retryable and transient error lists.
TRANSIENT_CODES = frozenset({
    6, 7, 24, 46, 50, 64, 89, 91, 100, 112, 189, 251, 262, 9001, 10107, 11600, 11601, 11602,
    13388, 13435, 13436, 216, 134, 462,
})
TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError", "UnknownTransactionCommitResult")

T = TypeVar("T")

# The transaction a request with an Idempotency-Key runs in (see `request_transaction`).
_request_session: ContextVar[AsyncClientSession | None] = ContextVar("request_transaction", default=None)


def connect(uri: str, listeners: Sequence[CommandListener] = (), *,
            operation_timeout_ms: int | None = None) -> AsyncMongoClient[dict[str, Any]]:
    """`operation_timeout_ms` bounds every operation (the service sets it; operator commands,
    which may scan everything, do not)."""
    options: dict[str, Any] = {}
    if operation_timeout_ms is not None:
        options["timeoutMS"] = operation_timeout_ms
    return AsyncMongoClient(
        uri,
        serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
        connectTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
        # Both are the driver's default; stated because the guarantees rely on them. A write that
        # meets a failover or a dropped connection is retried once, where the topology (a replica
        # set or sharded cluster) supports it.
        retryWrites=True,
        retryReads=True,
        # After a "not primary" or shutdown error the driver marks the server unknown and asks
        # its monitor to check again. A streaming monitor (the default) is then still parked in an
        # awaitable hello for up to 10 s on a server whose topology did not change, such as the
        # embedded one restarting; a polling monitor checks again within half a second.
        serverMonitoringMode="poll",
        # Every client counts each request's commands for the metrics (storage.round_trips).
        event_listeners=[*listeners, RoundTripCounter()],
        tz_aware=True,
        uuidRepresentation="standard",
        appname="tsundoku",
        **options,
    )


# The database handle as the layers above storage hold it: opaque, handed to stores and to the
# helpers here, so that no module outside storage/ imports pymongo.
Database = AsyncDatabase[dict[str, Any]]
# MongoDB's codes for an update whose result would pass the 16 MB document limit.
DOCUMENT_TOO_LARGE_CODES = frozenset({10334, 17419})


def database(client: AsyncMongoClient[dict[str, Any]], name: str) -> AsyncDatabase[dict[str, Any]]:
    return client.get_database(name, write_concern=DURABLE_WRITES)


def is_document_too_large(error: BaseException | None) -> bool:
    """Whether `error` is a write the database refused because the user's document would pass
    its size limit."""
    return isinstance(error, WriteError) and error.code in DOCUMENT_TOO_LARGE_CODES


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot serve now (answer 503), not a bug (500)."""
    if isinstance(error, BulkWriteError):
        return _bulk_write_unavailable(error)
    if isinstance(error, (ConnectionFailure, WriteConcernError, ExecutionTimeout)):
        return True
    if isinstance(error, PyMongoError) and any(error.has_error_label(label) for label in TRANSIENT_LABELS):
        return True
    return isinstance(error, OperationFailure) and error.code in TRANSIENT_CODES


def _bulk_write_unavailable(error: BulkWriteError) -> bool:
    """A bulk write gathers its writes' errors into one exception (code 65, never transient itself):
    the database is unavailable when what it gathered says so (a write concern error, a transient
    code or label) and no write error says the request itself was wrong (a duplicate key)."""
    details = error.details or {}
    write_errors = details.get("writeErrors") or []
    if any(write_error.get("code") not in TRANSIENT_CODES for write_error in write_errors):
        return False
    concern_errors = details.get("writeConcernErrors") or []
    labelled = any(error.has_error_label(label) for label in TRANSIENT_LABELS)
    return bool(write_errors or concern_errors or labelled)


async def in_transaction(db: AsyncDatabase[dict[str, Any]], work: Callable[[AsyncClientSession], Awaitable[T]],
                         *, user_id: str | None = None) -> T:
    """Runs `work` in one multi-document transaction, committed with the durable write
    concern. The driver retries transient conflicts; the whole attempt is bounded in time.
    Inside a request's transaction `work` joins it: one commit makes both or neither. With
    `user_id` (a transaction that writes that user's document), it waits for this process's turn
    of the user (storage.user_turns), so that one user's writes here do not conflict."""
    joined = _request_session.get()
    if joined is not None:
        return await work(joined)
    async with user_turn(user_id) if user_id is not None else nullcontext():
        async with db.client.start_session() as session:
            with pymongo.timeout(TRANSACTION_TIMEOUT_S):
                return await session.with_transaction(work, write_concern=DURABLE_WRITES)


def request_session() -> AsyncClientSession | None:
    """The session of the request's transaction, if it runs in one. Every write that a request
    can make passes it: PyMongo picks an operation's write concern before it looks at the bound
    session, and a write concern inside a transaction is refused, so writes name it."""
    return _request_session.get()


class TransactionConflict(Exception):
    """A request's transaction met a concurrent write: nothing of it stays, and it can be run
    again."""


@asynccontextmanager
async def request_transaction(db: AsyncDatabase[dict[str, Any]]) -> AsyncIterator[None]:
    """Everything the block writes, in one transaction: every operation inside uses its session
    without being handed it (PyMongo's bound session), and `in_transaction` joins it. Committed
    with the durable write concern when the block ends, aborted when it raises; a conflict
    raises TransactionConflict."""
    async with db.client.start_session() as session:
        await session.start_transaction(write_concern=DURABLE_WRITES)
        token = _request_session.set(session)
        # Whether the transaction may still be open on the server after this block: a commit
        # that failed, or a database error (after which the abort can fail too, silently).
        may_linger = False
        try:
            async with session.bind(end_session=False):
                yield
            may_linger = True
            with pymongo.timeout(TRANSACTION_TIMEOUT_S):
                await session.commit_transaction()
            may_linger = False
        except PyMongoError as error:
            # Also after a conflict: the driver labels a lost connection and "not primary"
            # transient too, and then the transaction can still be open on the server.
            may_linger = True
            if error.has_error_label("TransientTransactionError"):
                raise TransactionConflict(str(error)) from error
            raise
        finally:
            _request_session.reset(token)
            if session.in_transaction:
                await session.abort_transaction()  # PyMongo ignores an abort that fails
            if may_linger:
                await _end_on_the_server(db, session)


async def _end_on_the_server(db: AsyncDatabase[dict[str, Any]], session: AsyncClientSession) -> None:
    """A commit that failed, or an abort after a database error, can leave the transaction open
    on the server, holding what it wrote against every other writer until it expires (measured on
    SecantusDB: over two minutes; the driver cannot abort after a commit, and ignores an abort
    that fails): killing the session aborts it now, or does nothing if it already ended."""
    try:
        with pymongo.timeout(PING_TIMEOUT_S):
            await db.client.admin.command("killSessions", [session.session_id])
    except PyMongoError:
        pass  # the database is down: the transaction went with it, or expires there


@asynccontextmanager
async def outside_request_transaction(db: AsyncDatabase[dict[str, Any]]) -> AsyncIterator[None]:
    """What the block writes stays whatever becomes of the request's transaction (a rate-limit
    counter must count an attempt that is rolled back): it gets a session of its own."""
    if _request_session.get() is None:
        yield
        return
    async with db.client.start_session() as session, session.bind(end_session=False):
        token = _request_session.set(None)
        try:
            yield
        finally:
            _request_session.reset(token)


class StandaloneServer(RuntimeError):
    """The database is a standalone server: no transactions, no retryable writes."""


async def require_replica_set(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Ratings change in transactions and writes are retried, which a standalone server cannot
    do: refuse it at start rather than fail on the first rating. A one-member replica set is
    enough (the embedded database presents itself as one)."""
    hello = await db.client.admin.command("hello")
    if not hello.get("setName") and hello.get("msg") != "isdbgrid":
        raise StandaloneServer("the database is a standalone server; the service needs a replica set "
                               "(one member is enough) or a sharded cluster, for transactions and retryable writes")


async def ping(db: AsyncDatabase[dict[str, Any]], timeout_s: float = PING_TIMEOUT_S) -> bool:
    """Whether the database answers a ping within `timeout_s`, both attempts together."""
    # Twice, like the driver retries a read: after the embedded database restarts, the pool can
    # still hold a connection to the old process, which fails once and is then discarded.
    with pymongo.timeout(timeout_s):
        for attempt in range(2):
            try:
                await db.command("ping")
                return True
            except PyMongoError as error:
                # Any failure, not only the transient ones: a storage engine that panicked (a full
                # disk) fails the sign-in of a new connection with an internal error (code 1).
                stale_connection = (isinstance(error, AutoReconnect)
                                    and not isinstance(error, ServerSelectionTimeoutError))
                if attempt == 1 or not stale_connection:
                    return False
    return False


async def write_probe(client: AsyncMongoClient[dict[str, Any]], timeout_s: float) -> None:
    """One tiny journaled write, bounded by `timeout_s`; raises PyMongoError when the database cannot
    take it. A ping is no proof: a storage engine that panicked (a full disk) still answers pings,
    and fails every read and write."""
    collection = client.get_database(PROBE_DATABASE).get_collection(PROBE_COLLECTION, write_concern=DURABLE_WRITES)
    with pymongo.timeout(timeout_s):
        await collection.update_one({"_id": probe_slot()}, {"$inc": {"writes": 1}}, upsert=True)


async def takes_writes(db: AsyncDatabase[dict[str, Any]], timeout_s: float = PING_TIMEOUT_S) -> bool:
    """Whether the database takes a tiny journaled write within `timeout_s`: what `/health` asks a
    MongoDB named by MONGODB_URI (the embedded one has its supervisor's probe). In the service's
    own database, where its user may write: `health`, one of PROBE_SLOTS documents."""
    try:
        with pymongo.timeout(timeout_s):
            await db["health"].update_one({"_id": probe_slot()}, {"$inc": {"writes": 1}}, upsert=True)
        return True
    except PyMongoError:
        return False
