"""Backups in `mongodump`'s directory layout, and restoring them.

`DIR/<db>/<collection>.bson` (the documents, one BSON document after another; `.bson.gz` with
gzip) and `DIR/<db>/<collection>.metadata.json` (the indexes), which `mongorestore` reads, plus
`DIR/manifest.json`: for each file its collection, document count, bytes and SHA-256.

Consistency: the first attempt reads every collection in one snapshot session (read concern
"snapshot"): on MongoDB the backup is the database at one moment, with no time limit. SecantusDB's
snapshot session does not hold across collections (backups during writes held avatar references to
files they lacked, users without their `usernames` row, series aggregates that were not their
ratings' sum), so the backup then checks what crosses collections (storage/backup_invariants.py)
and, if a write raced it, is taken again, at most `ATTEMPTS` times in all, inside a read-only
transaction: on SecantusDB that is one snapshot across collections (measured: the retry held in
every run during registrations and ratings, where snapshot sessions raced up to 5 times in a row);
on MongoDB it is bounded by transactionLifetimeLimitSeconds (60 s), which is why it is not the
first attempt. `restore` checks the same before it writes: it refuses a backup whose references
do not hold and sets aggregates that differ from the ratings to what the ratings say.

Replacement: a backup is written into `DIR.partial-<pid>` beside DIR and only a complete one (manifest
written, every file fsynced) takes DIR's place, so an interrupted backup never costs the previous one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, cast

import bson
from bson import json_util
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid
from pymongo.read_concern import ReadConcern

from storage.backup_invariants import check, describe
from storage.ratings import Drift
from storage.user_directory import DERIVED_COLLECTIONS, UserDirectory

MANIFEST = "manifest.json"
BATCH = 500  # documents a restore inserts at once
ATTEMPTS = 5  # backups taken, at most, until one is consistent


class RestoreRefused(Exception):
    """The target database is not empty, and no drop was asked for."""


class BackupDamaged(Exception):
    """A backup file is missing or does not match its manifest."""


class BackupRaced(Exception):
    """Writes kept changing the database under every attempt at a consistent backup."""


class BackupInconsistent(Exception):
    """The backup's collections contradict each other (storage/backup_invariants.py)."""


class BackupRefused(Exception):
    """The target exists and is not a backup: replacing it could delete someone's files."""


@dataclass(frozen=True)
class Restored:
    documents: dict[str, int]  # per collection
    repaired: list[Drift]  # series whose aggregates were set from the ratings


@dataclass(frozen=True)
class BackupFile:
    path: str  # relative to the backup directory
    collection: str
    documents: int
    bytes: int
    sha256: str


def _open(path: Path, mode: str, compressed: bool) -> IO[bytes]:
    # GzipFile is a binary file, though typeshed does not declare it an IO[bytes]; `mode` is "rb" or "wb".
    return cast(IO[bytes], gzip.open(path, mode) if compressed else open(path, mode))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_target(directory: Path, *, replace: bool = False) -> None:
    """Raises BackupRefused unless `directory` is absent, empty, or (with `replace`) a backup (it
    has a manifest): a backup is never overwritten unless the operator asked for that."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise BackupRefused(f"{directory} exists and is not a directory")
    if (directory / MANIFEST).is_file():
        if not replace:
            raise BackupRefused(f"{directory} holds a backup, left alone; --replace replaces it (the old one is "
                                "kept until the new one is complete), or give a new directory")
    elif any(directory.iterdir()):
        raise BackupRefused(f"{directory} is not empty and holds no backup ({MANIFEST}); "
                            "it is left alone: give an empty or new directory, or a previous backup's with --replace")


async def backup(db: AsyncDatabase[dict[str, Any]], directory: Path, *, compress: bool = False,
                 replace: bool = False) -> list[BackupFile]:
    """Writes every collection of `db` to `directory`, consistent (see above); a backup there is
    refused unless `replace`, and then replaced only once the new one is complete. Returns what it
    wrote."""
    directory = directory.resolve()  # a symlink to a backup: the backup it points to is replaced
    check_target(directory, replace=replace)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(directory)
    partial = _sibling(directory, "partial", os.getpid())
    shutil.rmtree(partial, ignore_errors=True)  # a dead run's, whose pid this one was given again
    # Only its owner reads a backup: it holds password and session hashes. The directory is
    # closed from the start, so no one else ever reads a file while it is written.
    partial.mkdir(mode=0o700)
    try:
        written = await _write_consistent(db, partial, compress)
        _owner_only(partial)
        _fsync_tree(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _replace(partial, directory)
    return written


async def _write_consistent(db: AsyncDatabase[dict[str, Any]], directory: Path, compress: bool) -> list[BackupFile]:
    for attempt in range(ATTEMPTS):
        written = await _write_collections(db, directory, compress, in_transaction=attempt > 0)
        findings = check(_documents(directory, written))
        if findings.consistent:
            (directory / MANIFEST).write_text(json.dumps({"database": db.name,
                                                         "files": [asdict(f) for f in written]}, indent=1))
            return written
    problem = findings.problem or (f"{describe(findings.drift[0])} (if that stays: "
                                   "'server.py recount-ratings' repairs the aggregates)")
    raise BackupRaced(f"the database kept changing under {ATTEMPTS} backups: {problem}")


def _documents(directory: Path, files: list[BackupFile]) -> dict[str, Path]:
    """Each collection's documents file."""
    return {f.collection: directory / f.path for f in files if not f.path.endswith(".metadata.json")}


def _sibling(directory: Path, kind: str, pid: int) -> Path:
    return directory.with_name(f"{directory.name}.{kind}-{pid}")


def _remove_leftovers(directory: Path) -> None:
    """Removes the `.partial-<pid>` directories of runs whose process is gone (killed mid-backup):
    never a complete backup. A live pid's is another backup into the same DIR, still running."""
    for path in directory.parent.glob(f"{directory.name}.partial-*"):
        pid = path.name.rpartition("-")[2]
        if pid.isdigit() and path.is_dir() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _owner_only(directory: Path) -> None:
    """Directories 700 and files 600 under `directory`, whatever the umask made them."""
    for path in directory.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    directory.chmod(0o700)


def _fsync_tree(directory: Path) -> None:
    """Every file and directory under `directory` on disk, before it is renamed into place."""
    for path in [*directory.rglob("*"), directory]:
        fsync_path(path)


def _replace(complete: Path, directory: Path) -> None:
    """Puts the complete backup at `directory`. A crash at any step leaves no half backup there:
    - before the first rename: the old backup at DIR, untouched (and `.partial-<pid>` beside it,
      which the next run removes);
    - between the renames: no DIR, the old backup complete at `DIR.old-<pid>` and the new one
      complete at `DIR.partial-<pid>` (the next run removes that one; the old one stays for the
      operator to rename back);
    - after the second rename: the new backup at DIR, the old one complete at `DIR.old-<pid>`
      until it is removed."""
    old = _sibling(directory, "old", os.getpid()) if directory.exists() else None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
    complete.rename(directory)
    fsync_path(directory.parent)
    if old is not None:
        shutil.rmtree(old)


def fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


async def _write_collections(db: AsyncDatabase[dict[str, Any]], directory: Path, compress: bool, *,
                             in_transaction: bool) -> list[BackupFile]:
    target = directory / db.name
    target.mkdir(parents=True, exist_ok=True)
    written: list[BackupFile] = []
    # Snapshot reads are for `find`; the collections and their indexes are listed outside it.
    names = sorted(name for name in await db.list_collection_names() if not name.startswith("system."))
    async with db.client.start_session(snapshot=not in_transaction) as session:
        if in_transaction:
            await session.start_transaction(read_concern=ReadConcern("snapshot"))
        for name in names:
            data = target / (f"{name}.bson.gz" if compress else f"{name}.bson")
            count = 0
            with _open(data, "wb", compress) as out:
                async for document in db[name].find({}, session=session).sort("_id", 1):
                    out.write(bson.encode(document))
                    count += 1
            indexes = [dict(index) async for index in await db[name].list_indexes()]
            metadata = target / f"{name}.metadata.json"
            metadata.write_text(json.dumps({"indexes": json.loads(json_util.dumps(indexes)),
                                            "collectionName": name, "type": "collection", "options": {}}))
            for path, documents in ((data, count), (metadata, 0)):
                written.append(BackupFile(str(path.relative_to(directory)), name, documents, path.stat().st_size,
                                          _sha256(path)))
        if in_transaction:
            await session.commit_transaction()  # it wrote nothing: ends it
    return written


def read_manifest(directory: Path, *, checksums: bool = True) -> list[BackupFile]:
    """The manifest's files, each checked against its size and (unless `checksums` is false, a
    quick look before anything is opened) its checksum."""
    if not (directory / MANIFEST).is_file():
        raise BackupDamaged(f"{directory} is not a backup: it holds no {MANIFEST}, which every backup ends with")
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        files = [BackupFile(**entry) for entry in manifest["files"]]
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise BackupDamaged(f"{directory / MANIFEST} cannot be read as a backup's manifest: {error}") from None
    for entry in files:
        path = directory / entry.path
        if not path.is_file() or path.stat().st_size != entry.bytes or (checksums and _sha256(path) != entry.sha256):
            raise BackupDamaged(f"{entry.path} is missing or differs from the manifest")
    return files


async def _insert_file(collection: Any, path: Path, repaired: dict[Any, Drift]) -> int:
    """Streams the file's documents into `collection`, `BATCH` at a time, the aggregates of the
    series in `repaired` set to their true values; returns the count."""
    count = 0
    batch: list[dict[str, Any]] = []
    with _open(path, "rb", path.name.endswith(".gz")) as f:
        for document in bson.decode_file_iter(f):
            drift = repaired.get(document["_id"])
            if drift is not None:
                document["rating_count"], document["rating_half_points"] = drift.true_count, drift.true_half_points
            batch.append(document)
            if len(batch) == BATCH:
                await collection.insert_many(batch, ordered=True)
                count, batch = count + len(batch), []
    if batch:
        await collection.insert_many(batch, ordered=True)
        count += len(batch)
    return count


async def restore(db: AsyncDatabase[dict[str, Any]], directory: Path, *, drop: bool = False) -> Restored:
    """Restores the backup in `directory` into `db`: every document and index, but the directory
    of public users, which is built again from the restored users. Refuses a
    database that holds any document unless `drop`, which empties each restored collection first,
    and a backup whose collections contradict each other; repairs series aggregates (see below).
    Returns the documents restored per collection and the series repaired."""
    files = read_manifest(directory)
    findings = check(_documents(directory, files))
    # Refused: a user without its name (or a name without its user) has no true side to repair
    # from: a half-registered account, a half-removed one, a name given to the wrong user; guessing
    # could bring back a removed account or hand a name over. Aggregates do have one: they are
    # derived from the ratings, which say exactly what they must be (`recount` repairs a live
    # database the same way), so a backup from before these checks, or hand-edited, still restores.
    if findings.problem is not None:
        raise BackupInconsistent(f"the backup is inconsistent, nothing was restored: {findings.problem}")
    repaired = {drift.series_id: drift for drift in findings.drift}
    if not drop:
        for name in await db.list_collection_names():
            if await db[name].find_one({}, {"_id": 1}) is not None:  # a count reads every document on SecantusDB
                raise RestoreRefused(f"the database {db.name!r} is not empty (collection {name!r}); "
                                     "restore --drop replaces what it holds")
    restored: dict[str, int] = {}
    # The directory of public users is derived from the users: a backup's copy may predate one of
    # them (a snapshot that did not hold across collections), so it is built again from the
    # restored users (storage.user_directory) instead of restored.
    for name in DERIVED_COLLECTIONS:
        await db[name].drop()
    for entry in files:
        path = directory / entry.path
        if entry.path.endswith(".metadata.json") or entry.collection in DERIVED_COLLECTIONS:
            continue
        collection = db[entry.collection]
        if drop:
            await collection.drop()
        if entry.documents == 0:
            # Empty, it is restored all the same (an insert would not make it): a restore gives
            # back every collection the backup holds (`removals` is empty but while an account's
            # changes are being deleted).
            try:
                await db.create_collection(entry.collection)
            except CollectionInvalid:
                pass  # there already, empty: a restore without --drop takes no database with data
        restored[entry.collection] = await _insert_file(collection, path,
                                                        repaired if entry.collection == "series" else {})
        metadata = json.loads((path.parent / f"{entry.collection}.metadata.json").read_text())
        for index in json_util.loads(json.dumps(metadata["indexes"])):
            if index["name"] == "_id_":
                continue
            options = {k: v for k, v in index.items() if k not in ("key", "v", "ns")}
            await collection.create_index(list(index["key"].items()), **options)
    await UserDirectory(db).ensure()
    return Restored(restored, findings.drift)
