"""Opens the database the settings name: the given MongoDB, or the embedded SecantusDB."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError
from pymongo.monitoring import CommandListener

from settings import Settings
from storage.database import (
    REQUEST_OPERATION_TIMEOUT_MS,
    connect,
    database,
    write_probe,
)
from storage.embedded import (
    CredentialsFile,
    DataDirInUse,
    DataDirLock,
    EmbeddedDatabase,
    EmbeddedDatabaseError,
    NoDatabaseHere,
    RunningServerFile,
    check_owner,
    credentials_path,
    loopback_uri,
)
from storage.supervisor import EmbeddedSupervisor

log = logging.getLogger("tsundoku.database")

AUTHENTICATION_FAILED = 18  # MongoDB's error code for a wrong user or password


def redact(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


@dataclass(frozen=True)
class OpenDatabase:
    db: AsyncDatabase[dict[str, Any]]
    # Only for the service on the embedded database: what keeps that database running.
    supervisor: EmbeddedSupervisor | None = None

    def probes_held(self) -> AbstractContextManager[None]:
        """For the service's preparation of its database (storage.indexes): see EmbeddedSupervisor.probes_held."""
        return self.supervisor.probes_held() if self.supervisor is not None else nullcontext()


class DatabaseUnreachable(RuntimeError):
    """The server MONGODB_URI names did not answer (it may later: the start is worth retrying)."""


class DatabaseRefusedCredentials(RuntimeError):
    """The server MONGODB_URI names refused its user or password (retrying would not help)."""


async def _reach(client: AsyncMongoClient[dict[str, Any]], uri: str) -> None:
    """One ping to the server MONGODB_URI names, so that a wrong address or password stops the
    start with one line saying so, rather than a driver's topology dump at the first query."""
    started = time.monotonic()
    try:
        await client.admin.command("ping")
    except ServerSelectionTimeoutError as error:
        # The driver's text ends with its timeouts and a topology description: the first part is
        # the reason (refused, no such host, no replica set member).
        reason = str(error).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
        raise DatabaseUnreachable(f"cannot reach MongoDB at {redact(uri)} (MONGODB_URI) within "
                                  f"{time.monotonic() - started:.0f} s: {reason}") from None
    except OperationFailure as error:
        if error.code != AUTHENTICATION_FAILED:
            raise
        raise DatabaseRefusedCredentials(f"MongoDB at {redact(uri)} (MONGODB_URI) refused its user or password: "
                                         f"{error.details.get('errmsg') if error.details else error}") from None


def embedded_database(settings: Settings) -> EmbeddedDatabase:
    return EmbeddedDatabase(settings.data_dir / "db", log_file=settings.data_dir / "secantusd.log")


def no_database_here(settings: Settings, command: str | None) -> NoDatabaseHere:
    return NoDatabaseHere(
        f"DATA_DIR {settings.data_dir.resolve()} holds no database, so {command or 'the command'} would work on a "
        "new, empty one: run it with the service's settings (its DATA_DIR, or its MONGODB_URI); for "
        "deploy/tsundoku.service, `set -a; . /etc/tsundoku.env; set +a` and DATA_DIR=/var/lib/tsundoku "
        "(docs/operations.md, \"Operator commands\")")


def holds_a_database(settings: Settings) -> bool:
    storage = embedded_database(settings).storage_dir
    return storage.is_dir() and any(storage.iterdir())


def running_service_uri(settings: Settings) -> str | None:
    """The URI of the embedded database of a service running on `DATA_DIR`, if there is one."""
    port = RunningServerFile(settings.data_dir).live_port()
    if port is None:
        return None
    credentials = CredentialsFile(credentials_path(settings.data_dir)).read()
    if credentials is None:
        raise EmbeddedDatabaseError(f"cannot read the database credentials in {settings.data_dir}")
    return loopback_uri(port, credentials)


@asynccontextmanager
async def open_database(
    settings: Settings, *, owner: bool, listeners: Sequence[CommandListener] = (),
    command: str | None = None, creates: bool = False,
) -> AsyncIterator[OpenDatabase]:
    """`owner` is the service: it publishes the embedded server's port and supervises the
    server. A command (import, set-role; `command` names it) instead reuses the running
    service's server, or starts its own for the duration; on a DATA_DIR that holds no database
    it stops (NoDatabaseHere) unless it `creates` one (a restore, a catalog import before the
    first start)."""
    embedded: EmbeddedDatabase | None = None
    lock = DataDirLock(settings.data_dir)
    supervisor: EmbeddedSupervisor | None = None
    running = RunningServerFile(settings.data_dir)
    if settings.mongodb_uri is not None:
        uri = settings.mongodb_uri
        log.info("database: MongoDB at %s, database %s", redact(uri), settings.mongodb_db)
    else:
        reused = None if owner else running_service_uri(settings)
        if reused is not None:
            uri = reused
            log.info("database: the running service's embedded SecantusDB at %s", redact(uri))
        else:
            refuses_a_new_database = not owner and not creates
            # Before anything is made there: without a database, a lock file that is not there yet
            # is not made to find out. (One that is there is taken below, so that one held says who
            # is starting a database here.)
            if refuses_a_new_database and not holds_a_database(settings) and not lock.path.exists():
                raise no_database_here(settings, command)
            check_owner(settings.data_dir, command)
            holder = running.live_pid() if owner else None
            if holder is not None:
                raise DataDirInUse(
                    f"another Tsundoku service (PID {holder}) is using DATA_DIR {settings.data_dir}: one DATA_DIR "
                    "serves one instance. Stop that one, or give this one its own DATA_DIR (or MONGODB_URI)")
            # Held until the database has stopped: a service started meanwhile is told who has the
            # directory (a command that holds it records itself here too) before it starts anything.
            lock.acquire("a Tsundoku service" if owner
                         else f"the operator command {command!r}" if command else "an operator command")
            if refuses_a_new_database and not holds_a_database(settings):
                # Checked holding the lock: one that is held says who is starting a database here.
                lock.release()
                raise no_database_here(settings, command)
            embedded = embedded_database(settings)
            try:
                await embedded.start_async()
            except BaseException:
                await embedded.stop_async()
                lock.release()
                raise
            uri = embedded.uri
            if owner:
                running.write(embedded.port or 0)
                supervisor = EmbeddedSupervisor(embedded)
            log.info(
                "database: embedded SecantusDB (files in %s, port %s, pid %s), database %s",
                embedded.storage_dir.resolve(), embedded.port, embedded.pid, settings.mongodb_db,
            )
    if supervisor is not None:
        listeners = [*listeners, supervisor.command_listener()]
    # The service bounds every operation; operator commands may legitimately scan everything.
    client = connect(uri, listeners, operation_timeout_ms=REQUEST_OPERATION_TIMEOUT_MS if owner else None)
    try:
        if settings.mongodb_uri is not None:
            await _reach(client, uri)
        if supervisor is not None:
            # Probing through the service's own client: the writes it fails are the ones requests meet.
            supervisor.start(probe=functools.partial(write_probe, client))
        yield OpenDatabase(database(client, settings.mongodb_db), supervisor)
    finally:
        if supervisor is not None:
            await supervisor.stop()
        await client.close()
        if embedded is not None:
            if owner:
                running.remove()
            await embedded.stop_async()
            lock.release()
