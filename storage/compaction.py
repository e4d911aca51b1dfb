"""`server.py compact`: gives the embedded database's disk space back.

SecantusDB's files grow with the bytes written, not with the data (WiredTiger reuses space inside
its files but never returns it; docs/performance.md, "the data directory grows"). The only way to
shrink them is to write the live documents into new files. This does it as one command, in the
data directory, with the service stopped:

1. the service's database is backed up (storage.backup, checked across collections) into
   `DATA_DIR/compact-work/backup`;
2. a new database is started in `DATA_DIR/compact-work/db`, signed into with the old database's
   credentials (so `db-credentials.json` stays true), and the backup is restored into it: the live
   documents and their indexes, nothing else (no demo catalog, no roles written first), then
   prepared as a start would;
3. every collection's count is checked against the backup's manifest;
4. the new files and the old ones are exchanged in one step (renameat2 with RENAME_EXCHANGE):
   `DATA_DIR/db` is the old database or the new one at every instant, never absent or half
   moved, whenever the command is killed or the machine stops;
5. `compact-work` (then holding the old files) is removed.

Until step 4 the old database is untouched. A `compact-work` left by a killed run holds copies
only, whichever step it reached, and is removed by the next run.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from settings import Settings
from storage.backup import backup, fsync_path, read_manifest, restore
from storage.database import connect, database
from storage.embedded import DataDirLock, EmbeddedDatabase, check_owner
from storage.indexes import prepare_database
from storage.lifecycle import embedded_database, holds_a_database, no_database_here, running_service_uri
from storage.user_directory import DERIVED_COLLECTIONS

WORK = "compact-work"
# Free space asked for beyond the backup itself: the new database's files, its indexes and its
# journal, as a multiple of the backup's bytes (measured: about 1.3; room is left to spare).
ROOM_FACTOR = 3
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class CompactRefused(Exception):
    """Nothing was changed: the service runs, the database is not embedded, or there is no room."""


@dataclass(frozen=True)
class Compacted:
    documents: dict[str, int]  # per collection, as restored
    bytes_before: int  # the database's files, as allocated on disk
    bytes_after: int


def exchange(first: Path, second: Path) -> None:
    """Swaps two directories of one file system in one step (Linux's renameat2)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"cannot exchange {first} and {second}: {os.strerror(error)}")


def allocated_bytes(directory: Path) -> int:
    """What the files under `directory` take on disk (blocks, not apparent sizes)."""
    total = 0
    for root, _, names in os.walk(directory):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


async def compact(settings: Settings) -> Compacted:
    """Rewrites the embedded database's files with only its live data (see the module's text)."""
    if settings.mongodb_uri is not None:
        raise CompactRefused("compact is for the embedded database; MongoDB gives space back itself "
                             "(its `compact` command, or a member's initial sync)")
    if running_service_uri(settings) is not None:
        raise CompactRefused(f"a service is running on DATA_DIR {settings.data_dir}: stop it first "
                             "(compact replaces the database's files)")
    live, work = settings.data_dir / "db", settings.data_dir / WORK
    lock = DataDirLock(settings.data_dir)
    if not holds_a_database(settings):
        raise no_database_here(settings, "compact")  # before the lock file is made there
    check_owner(settings.data_dir, "compact")
    lock.acquire("the operator command 'compact'")
    try:
        if not holds_a_database(settings):
            raise no_database_here(settings, "compact")
        shutil.rmtree(work, ignore_errors=True)  # a killed run's copies (see the module's text)
        work.mkdir(mode=0o700)
        # Tried first on two empty directories: a file system that cannot exchange them stops the
        # command before any work is done.
        (work / "probe-a").mkdir()
        (work / "probe-b").mkdir()
        exchange(work / "probe-a", work / "probe-b")
        before = allocated_bytes(live)

        old = embedded_database(settings)
        await old.start_async()
        try:
            client = connect(old.uri)
            try:
                await backup(database(client, settings.mongodb_db), work / "backup")
            finally:
                await client.close()
        finally:
            await old.stop_async()
        assert old.credentials is not None
        needed = ROOM_FACTOR * allocated_bytes(work / "backup")
        free = shutil.disk_usage(work).free
        if free < needed:
            raise CompactRefused(f"{free // 2**20} MiB free in {settings.data_dir}, and the new database needs "
                                 f"about {needed // 2**20} MiB; nothing was changed")

        new = EmbeddedDatabase(work / "db", log_file=work / "secantusd.log",
                               credentials_file=work / "db-credentials.json")
        await new.start_new_async(old.credentials)
        try:
            client = connect(new.uri)
            try:
                db = database(client, settings.mongodb_db)
                restored = await restore(db, work / "backup")
                await prepare_database(db)
                for entry in read_manifest(work / "backup", checksums=False):
                    if entry.path.endswith(".metadata.json") or entry.collection in DERIVED_COLLECTIONS:
                        continue
                    counted = await db[entry.collection].count_documents({})
                    if counted != entry.documents:
                        raise RuntimeError(f"compact: {entry.collection} holds {counted} documents in the new "
                                           f"database and {entry.documents} in the backup; nothing was changed")
            finally:
                await client.close()
        finally:
            await new.stop_async()

        exchange(live, work / "db")
        fsync_path(settings.data_dir)
        fsync_path(work)
        return Compacted(restored.documents, before, allocated_bytes(live))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        lock.release()
