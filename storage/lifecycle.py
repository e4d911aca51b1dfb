"""Opens the database the settings name: the given MongoDB, or the embedded SecantusDB."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.monitoring import CommandListener

from settings import Settings
from storage.database import connect, database
from storage.embedded import EmbeddedDatabase, RunningServerFile

log = logging.getLogger("tsundoku.database")


def redact(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


@asynccontextmanager
async def open_database(
    settings: Settings, *, owner: bool, listeners: Sequence[CommandListener] = ()
) -> AsyncIterator[AsyncDatabase]:
    """`owner` is the service: it publishes the embedded server's port. A command (import,
    set-role) instead reuses the running service's server, or starts its own for the duration."""
    embedded: EmbeddedDatabase | None = None
    running = RunningServerFile(settings.data_dir)
    if settings.mongodb_uri is not None:
        uri = settings.mongodb_uri
        log.info("database: MongoDB at %s, database %s", redact(uri), settings.mongodb_db)
    else:
        reused = None if owner else running.live_uri()
        if reused is not None:
            uri = reused
            log.info("database: the running service's embedded SecantusDB at %s", uri)
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            embedded = EmbeddedDatabase(settings.data_dir / "db", log_file=settings.data_dir / "secantusd.log")
            await embedded.start_async()
            uri = embedded.uri
            if owner:
                running.write(embedded.port or 0)
            log.info(
                "database: embedded SecantusDB (files in %s, port %s), database %s",
                embedded.storage_dir.resolve(), embedded.port, settings.mongodb_db,
            )
    client = connect(uri, listeners)
    try:
        yield database(client, settings.mongodb_db)
    finally:
        await client.close()
        if embedded is not None:
            if owner:
                running.remove()
            await embedded.stop_async()
