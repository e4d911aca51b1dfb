"""Opens the database the settings name: the given MongoDB, or the embedded SecantusDB."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
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
    RunningServerFile,
    credentials_path,
    loopback_uri,
)
from storage.supervisor import EmbeddedSupervisor

log = logging.getLogger("tsundoku.database")


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


def embedded_database(settings: Settings) -> EmbeddedDatabase:
    return EmbeddedDatabase(settings.data_dir / "db", log_file=settings.data_dir / "secantusd.log")


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
    command: str | None = None,
) -> AsyncIterator[OpenDatabase]:
    """`owner` is the service: it publishes the embedded server's port and supervises the
    server. A command (import, set-role; `command` names it) instead reuses the running
    service's server, or starts its own for the duration."""
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
            holder = running.live_pid() if owner else None
            if holder is not None:
                raise DataDirInUse(
                    f"another Tsundoku service (PID {holder}) is using DATA_DIR {settings.data_dir}: one DATA_DIR "
                    "serves one instance. Stop that one, or give this one its own DATA_DIR (or MONGODB_URI)")
            # Held until the database has stopped: a service started meanwhile is told who has the
            # directory (a command that holds it records itself here too) before it starts anything.
            lock.acquire("a Tsundoku service" if owner
                         else f"the operator command {command!r}" if command else "an operator command")
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
