"""The MongoDB client: one durable write concern and bounded waits for an unreachable server."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure
from pymongo.monitoring import CommandListener

# An acknowledged write must survive a crash: j=True is what makes that true on SecantusDB
# (see DATABASE.md) and costs nothing extra on a real MongoDB.
DURABLE_WRITES = WriteConcern(w="majority", j=True)

# A request must not hang while the database is down: selection gives up after a few seconds
# and the request answers 503.
SERVER_SELECTION_TIMEOUT_MS = 3000

DatabaseUnavailable = ConnectionFailure


def connect(uri: str, listeners: Sequence[CommandListener] = ()) -> AsyncMongoClient:
    return AsyncMongoClient(
        uri,
        serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
        connectTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
        event_listeners=list(listeners),
        tz_aware=True,
        uuidRepresentation="standard",
        appname="tsundoku",
    )


def database(client: AsyncMongoClient, name: str) -> AsyncDatabase:
    return client.get_database(name, write_concern=DURABLE_WRITES)


async def ping(db: AsyncDatabase) -> bool:
    try:
        await db.command("ping")
    except ConnectionFailure:
        return False
    return True
