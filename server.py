"""Runs the Tsundoku service, and the operator commands that work on its database."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tornado.netutil import bind_sockets

from auth.passwords import PASSWORD_RULE, Passwords, is_valid_password
from auth.permissions import ROLES
from auth.secret_file import read_or_create
from formats.catalog_file import CatalogFileReader, read_catalog_file
from handlers.application import make_app
from imaging import give_large_buffers_back_to_the_os, guard_decoding
from log_format import configure_logging
from settings import Settings, SettingsError, documented_variables
from storage import collection_stats
from storage.account_removal import AccountRemoval
from storage.avatars import AvatarStore
from storage.backup import (
    MANIFEST,
    BackupDamaged,
    BackupInconsistent,
    BackupRaced,
    BackupRefused,
    RestoreRefused,
    backup,
    check_target,
    read_manifest,
    restore,
)
from storage.backup_invariants import describe
from storage.catalog import CatalogFileError, CatalogStore, ImportCounts
from storage.compaction import CompactRefused, compact
from storage.database import Database, StandaloneServer, require_replica_set
from storage.embedded import DataDirInUse, DataDirOfAnotherUser, NoDatabaseHere
from storage.indexes import prepare_database
from storage.lifecycle import DatabaseRefusedCredentials, DatabaseUnreachable, open_database, running_service_uri
from storage.rate_limits import clear_login_failures
from storage.ratings import RatingStore
from storage.users import UserStore
from web import log_redaction
from web.connections import raise_open_file_limit
from web.http_server import make_http_server
from workers import off_the_loop

log = logging.getLogger("tsundoku")

DEMO_CATALOG = Path(__file__).resolve().parent / "catalog" / "demo-catalog.json"
SHUTDOWN_GRACE_S = 10.0

__all__ = ["make_app", "main"]


# The embedded database kept failing: a process supervisor should restart the whole service.
EXIT_DATABASE_FAILED = 3


def fingerprint_secret(settings: Settings) -> bytes:
    """The key of the fingerprints Idempotency-Key keeps: the same across restarts (a retry after
    one must match) and in every process of the service."""
    if settings.idempotency_secret is not None:
        return settings.idempotency_secret.encode()
    return read_or_create(settings.data_dir / "idempotency-secret")


def access_token_keys(settings: Settings) -> list[bytes]:
    """The keys of access tokens, the signing one first: ACCESS_TOKEN_SECRET or its file, the
    same across restarts and in every process (a token one signed, another must accept), then
    ACCESS_TOKEN_PREVIOUS_SECRET while a rotation lets the tokens it signed expire."""
    current = settings.access_token_secret.encode() if settings.access_token_secret is not None \
        else read_or_create(settings.data_dir / "access-token-secret")
    previous = settings.access_token_previous_secret
    return [current] if previous is None else [current, previous.encode()]


def set_process_wide(settings: Settings) -> None:
    """State every app of the process shares, set once at start (tests/conftest.py does the same
    for the apps the tests build): secrets redacted from every log record, whoever makes it, and
    Pillow's pixel limit, with its warning made an error."""
    log_redaction.install()
    guard_decoding(settings.max_image_pixels)


async def serve(settings: Settings) -> int:
    # The address first, before any database is started or anything imported: an address this
    # machine does not have, or a port in use, stops the start at once.
    try:
        sockets = bind_sockets(settings.port, settings.host)
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, error.strerror)
        return 1
    async with open_database(settings, owner=True) as opened:
        db = opened.db
        try:
            await require_replica_set(db)
        except StandaloneServer as error:
            log.error("MONGODB_URI: %s", error)
            return 2
        with opened.probes_held():
            # Seconds at most, except once after an upgrade that adds an index to a large catalog
            # (minutes at a million volumes): said, so that a silent start is not taken for a hung one.
            started = time.monotonic()
            log.info("preparing the database: indexes and layout changes")
            await prepare_database(db)
            await import_demo_catalog_if_empty(settings, db)
            log.info("the database is prepared (%.1f s)", time.monotonic() - started)
        app = make_app(settings, db, supervisor=opened.supervisor, fingerprint_secret=fingerprint_secret(settings),
                       access_token_keys=access_token_keys(settings))
        raise_open_file_limit()
        give_large_buffers_back_to_the_os()
        # What start built (modules, schemas, the route table, the clients) lives as long as the
        # process: frozen, it is out of the collector's walk, and a full collection looks only at
        # what requests made. Each full collection during a 7 MB import paused every thread, the
        # event loop's included, for 23-39 ms.
        gc.collect()
        gc.freeze()
        server = make_http_server(app)
        server.add_sockets(sockets)
        log.info("listening on http://%s:%d (at most %d connections)", settings.host, settings.port, server.cap)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reasons = [asyncio.ensure_future(stop.wait())]
        if opened.supervisor is not None:
            reasons.append(asyncio.ensure_future(opened.supervisor.failed.wait()))
        await asyncio.wait(reasons, return_when=asyncio.FIRST_COMPLETED)
        for reason in reasons:
            reason.cancel()
        database_failed = opened.supervisor is not None and opened.supervisor.failed.is_set()

        # From here on, a request that arrives on a still-open connection answers 503.
        app.services.stopping = True
        log.info("stopping: no new connections; waiting up to %.0f s for %d request(s)",
                 SHUTDOWN_GRACE_S, app.services.inflight.count)
        server.stop()
        if not await app.services.inflight.wait_idle(SHUTDOWN_GRACE_S):
            log.warning("%d request(s) still running after %.0f s; closing them",
                        app.services.inflight.count, SHUTDOWN_GRACE_S)
        try:
            await asyncio.wait_for(server.close_all_connections(), 2.0)
        except asyncio.TimeoutError:
            log.warning("some connections did not close in time")
        server.refusals.flush()
        app.services.image_pool.shutdown(wait=False, cancel_futures=True)
        app.services.input_pool.shutdown(wait=False, cancel_futures=True)
    if database_failed:
        log.error("stopped: the embedded database kept failing (exit code %d)", EXIT_DATABASE_FAILED)
        return EXIT_DATABASE_FAILED
    log.info("stopped")
    return 0


def _describe(counts: ImportCounts) -> str:
    return (f"series: {counts.series_inserted} inserted, {counts.series_updated} updated; "
            f"volumes: {counts.volumes_inserted} inserted, {counts.volumes_updated} updated")


async def import_catalog(settings: Settings, path: str) -> int:
    # The whole file is checked before the database is even opened: a bad file writes nothing.
    # Then it is read again and written a chunk at a time, so memory follows the chunk.
    try:
        reader = CatalogFileReader(Path(path))
    except CatalogFileError as error:
        print(f"import-catalog: {error}", file=sys.stderr)
        return 2  # bad input, as for every command
    with reader:
        try:
            series = await off_the_loop(None, reader.check)
        except CatalogFileError as error:
            print(f"import-catalog: {error}", file=sys.stderr)
            return 2
        log.info("import-catalog: %s is valid (%d series); writing it", path, len(series.ids))
        async with open_database(settings, owner=False, command="import-catalog", creates=True) as opened:
            await prepare_database(opened.db)
            try:
                counts = await CatalogStore(opened.db).import_chunks(series, reader.chunks(settings.catalog_import_chunk))
            except CatalogFileError as error:  # an external id or a slug another stored entry holds
                print(f"import-catalog: {error}", file=sys.stderr)
                return 2
    print(f"import-catalog: {path}: {_describe(counts)}")
    return 0


async def import_demo_catalog_if_empty(settings: Settings, db: Database) -> None:
    """A newcomer on the embedded default sees data at once; a real deployment never gets it."""
    store = CatalogStore(db)
    if not settings.uses_embedded_database or not await store.is_empty():
        return
    counts = await store.import_file(read_catalog_file(DEMO_CATALOG))
    log.info("the catalog was empty: imported the demo catalog (%s)", _describe(counts))


async def set_role(settings: Settings, username: str, role: str) -> int:
    if role not in ROLES:
        print(f"set-role: unknown role {role!r}; roles are {', '.join(ROLES)}", file=sys.stderr)
        return 2
    async with open_database(settings, owner=False, command="set-role") as opened:
        await prepare_database(opened.db)
        if not await UserStore(opened.db).set_roles(username, [role]):
            print(f"set-role: no user named {username!r}", file=sys.stderr)
            return 1
    print(f"set-role: {username} now has the role {role}")
    return 0


async def sweep(settings: Settings) -> int:
    async with open_database(settings, owner=False, command="sweep") as opened:
        report = await AccountRemoval(opened.db, AvatarStore(opened.db, UserStore(opened.db))).sweep()
    deleted = ([f"the changes of {report.changes_of} deleted users"] if report.changes_of else []) + (
        [f"{report.files} avatar files of {report.owners} deleted users"] if report.files else []) + (
        [f"{report.orphan_chunks} avatar chunks of unfinished uploads"] if report.orphan_chunks else [])
    print(f"sweep: deleted {' and '.join(deleted)}" if deleted
          else "sweep: nothing left behind by deleted accounts or unfinished uploads")
    return 0


async def recount_ratings(settings: Settings, check: bool = False) -> int:
    """With `check`, writes nothing and exits 1 when a series drifted, for a monitor or a cron job."""
    async with open_database(settings, owner=False, command="recount-ratings") as opened:
        drift = await RatingStore(opened.db).recount(repair=not check)
    for d in drift:
        print(f"recount-ratings: series {d.series_id}: count {d.stored_count} -> {d.true_count}, "
              f"sum {d.stored_half_points / 2:g} -> {d.true_half_points / 2:g}")
    if not drift:
        print("recount-ratings: every series agrees with the stored ratings")
        return 0
    if check:
        print(f"recount-ratings: {len(drift)} series have drifted (nothing was changed; "
              "run recount-ratings without --check to fix them)")
        return 1
    print(f"recount-ratings: {len(drift)} series had drifted and were fixed")
    return 0


async def recount_collection_stats(settings: Settings, check: bool = False) -> int:
    """With `check`, writes nothing and exits 1 when a user's kept collection figures differ."""
    async with open_database(settings, owner=False, command="recount-collection-stats") as opened:
        differ = await collection_stats.recount(opened.db, repair=not check)
    if not differ:
        print("recount-collection-stats: every user's collection figures agree with their items")
        return 0
    if check:
        print(f"recount-collection-stats: {len(differ)} users' figures differ or are not kept yet (nothing was "
              "changed; run recount-collection-stats without --check to store them)")
        return 1
    print(f"recount-collection-stats: {len(differ)} users' figures were stored")
    return 0


async def verify_age(settings: Settings, username: str, revoke: bool) -> int:
    async with open_database(settings, owner=False, command="verify-age") as opened:
        if not await UserStore(opened.db).set_age_verified(username, not revoke):
            print(f"verify-age: no user named {username!r}", file=sys.stderr)
            return 1
    print(f"verify-age: {username} is {'not ' if revoke else ''}age-verified")
    return 0


def _new_password() -> str | None:
    """Asked twice at a terminal; else the first line of standard input (for a script: never an
    argument, which every user of the machine can read in the process list). None when the two
    typed at a terminal differ."""
    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        return password if getpass.getpass("again: ") == password else None
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


async def reset_password(settings: Settings, username: str) -> int:
    # The database and the user first: no one types a password for a name that is not there.
    async with open_database(settings, owner=False, command="reset-password") as opened:
        users = UserStore(opened.db)
        if await users.id_of(username) is None:
            print(f"reset-password: no user named {username!r}", file=sys.stderr)
            return 1
        password = await off_the_loop(None, _new_password)
        if password is None:
            print("reset-password: the two passwords differ; nothing changed", file=sys.stderr)
            return 2
        if not is_valid_password(password):
            print(f"reset-password: a password is {PASSWORD_RULE}; nothing changed", file=sys.stderr)
            return 2
        password_hash = await Passwords(at_once=1).hash(password, caller="reset-password")  # as the service hashes
        ended = await users.reset_password(username, password_hash)
        if ended is None:  # deleted meanwhile
            print(f"reset-password: no user named {username!r}", file=sys.stderr)
            return 1
        unlocked = await clear_login_failures(opened.db, username)
    sessions, tokens = ended
    print(f"reset-password: {username} has a new password; {sessions} sessions and {tokens} personal tokens "
          f"ended; login lockouts from {unlocked} addresses cleared")
    return 0


async def unlock(settings: Settings, username: str) -> int:
    async with open_database(settings, owner=False, command="unlock") as opened:
        if await UserStore(opened.db).id_of(username) is None:
            print(f"unlock: no user named {username!r}", file=sys.stderr)
            return 1
        unlocked = await clear_login_failures(opened.db, username)
    print(f"unlock: {username} may sign in again; login failures from {unlocked} addresses cleared")
    return 0


async def backup_database(settings: Settings, directory: str, compress: bool, replace: bool) -> int:
    """While the service runs (it reuses the running service's embedded database) or not."""
    try:
        check_target(Path(directory).resolve(), replace=replace)  # before any database is started
    except BackupRefused as error:
        print(f"backup: {error}", file=sys.stderr)
        return 1
    async with open_database(settings, owner=False, command="backup") as opened:
        try:
            written = await backup(opened.db, Path(directory), compress=compress, replace=replace)
        except (BackupRaced, BackupRefused) as error:
            print(f"backup: {error}", file=sys.stderr)
            return 1
    for entry in written:
        if entry.path.endswith((".bson", ".bson.gz")):
            print(f"backup: {entry.path}: {entry.documents} documents, {entry.bytes} bytes")
    print(f"backup: {len(written)} files and {MANIFEST} in {directory}")
    return 0


async def restore_database(settings: Settings, directory: str, drop: bool) -> int:
    # A directory that is no backup, or a damaged one, is refused before the database is opened:
    # the embedded one would otherwise create its DATA_DIR first. (Each file's checksum is read
    # twice, here and by the restore: linear in the backup, and nothing is made for a bad one.)
    try:
        read_manifest(Path(directory))
    except BackupDamaged as error:
        print(f"restore: {error}", file=sys.stderr)
        return 1
    async with open_database(settings, owner=False, command="restore", creates=True) as opened:
        try:
            restored = await restore(opened.db, Path(directory), drop=drop)
        except (RestoreRefused, BackupDamaged, BackupInconsistent) as error:
            print(f"restore: {error}", file=sys.stderr)
            return 1
        await prepare_database(opened.db)
    for collection, count in restored.documents.items():
        print(f"restore: {collection}: {count} documents")
    for drift in restored.repaired:
        print(f"restore: repaired: {describe(drift)}; set to the ratings'")
    print(f"restore: {sum(restored.documents.values())} documents into {settings.mongodb_db}")
    return 0


async def compact_database(settings: Settings) -> int:
    try:
        compacted = await compact(settings)
    except CompactRefused as error:
        print(f"compact: {error}", file=sys.stderr)
        return 2 if settings.mongodb_uri is not None else 1
    for collection, count in compacted.documents.items():
        print(f"compact: {collection}: {count} documents")
    print(f"compact: the database's files went from {compacted.bytes_before / 2**20:.1f} MiB to "
          f"{compacted.bytes_after / 2**20:.1f} MiB")
    return 0


async def database_uri(settings: Settings) -> int:
    """For mongosh: the URI of the service's database, with the database name and credentials."""
    if settings.mongodb_uri is not None:
        print(settings.mongodb_uri)
        return 0
    uri = running_service_uri(settings)
    if uri is None:
        print(f"database-uri: no service is running on {settings.data_dir.resolve()}; start it first (make run)",
              file=sys.stderr)
        return 1
    print(uri.replace("/?", f"/{settings.mongodb_db}?", 1))
    return 0


def _parser() -> argparse.ArgumentParser:
    variables = "\n".join(f"  {name:<26} default {default or '(unset)'}: {accepted}"
                          for name, default, accepted in documented_variables())
    parser = argparse.ArgumentParser(
        prog="server.py",
        description="Tsundoku: reading lists, ratings, collections and profiles.",
        epilog="environment variables:\n" + variables,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP service (the default)")
    catalog = commands.add_parser("import-catalog", help="upsert series and volumes from a JSON file")
    catalog.add_argument("file")
    role = commands.add_parser("set-role", help="give a user one role: " + ", ".join(ROLES))
    role.add_argument("username")
    role.add_argument("role")
    commands.add_parser("sweep", help="delete what account deletions and uploads that stopped halfway left behind")
    recount = commands.add_parser("recount-ratings", help="recompute every series' rating aggregates and report drift")
    recount.add_argument("--check", action="store_true",
                         help="only list the drifted series, change nothing, and exit 1 if there are any")
    stats = commands.add_parser("recount-collection-stats",
                                help="store every user's collection figures from their items and report which differed")
    stats.add_argument("--check", action="store_true",
                       help="only report, change nothing, exit 1 when a user's figures differ or are not kept yet")
    reset = commands.add_parser("reset-password", help="set a user's password (asked twice, or the first line of "
                                                        "standard input) and end their sessions and personal tokens")
    reset.add_argument("username")
    unlocking = commands.add_parser("unlock", help="clear a user's login lockout (their failed logins from every "
                                                   "address)")
    unlocking.add_argument("username")
    age = commands.add_parser("verify-age", help="mark a user as age-verified (or not, with --revoke)")
    age.add_argument("username")
    age.add_argument("--revoke", action="store_true")
    commands.add_parser("database-uri", help="print the running service's database URI, with its credentials, "
                                             "for mongosh")
    dump = commands.add_parser("backup", help="write the database to DIR in mongodump's layout, from one snapshot")
    dump.add_argument("directory")
    dump.add_argument("--gzip", action="store_true", help="compress each collection's file")
    dump.add_argument("--replace", action="store_true", help="replace the backup DIR holds (kept until the new one "
                                                             "is complete)")
    commands.add_parser("compact", help="give the embedded database's disk space back: rewrite its files with only "
                                        "the live data (the service stopped)")
    load = commands.add_parser("restore", help="restore a backup from DIR (refused into a non-empty database)")
    load.add_argument("directory")
    load.add_argument("--drop", action="store_true", help="replace the collections the backup holds")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        for variable, accepted in error.problems:
            print(f"error: {variable} is invalid; it accepts {accepted}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    set_process_wide(settings)
    command: Callable[[], Awaitable[int]]
    if arguments.command == "import-catalog":
        command = lambda: import_catalog(settings, arguments.file)  # noqa: E731
    elif arguments.command == "set-role":
        command = lambda: set_role(settings, arguments.username, arguments.role)  # noqa: E731
    elif arguments.command == "sweep":
        command = lambda: sweep(settings)  # noqa: E731
    elif arguments.command == "recount-ratings":
        command = lambda: recount_ratings(settings, arguments.check)  # noqa: E731
    elif arguments.command == "recount-collection-stats":
        command = lambda: recount_collection_stats(settings, arguments.check)  # noqa: E731
    elif arguments.command == "database-uri":
        command = lambda: database_uri(settings)  # noqa: E731
    elif arguments.command == "backup":
        command = lambda: backup_database(settings, arguments.directory, arguments.gzip, arguments.replace)  # noqa: E731
    elif arguments.command == "restore":
        command = lambda: restore_database(settings, arguments.directory, arguments.drop)  # noqa: E731
    elif arguments.command == "reset-password":
        command = lambda: reset_password(settings, arguments.username)  # noqa: E731
    elif arguments.command == "unlock":
        command = lambda: unlock(settings, arguments.username)  # noqa: E731
    elif arguments.command == "compact":
        command = lambda: compact_database(settings)  # noqa: E731
    elif arguments.command == "verify-age":
        command = lambda: verify_age(settings, arguments.username, arguments.revoke)  # noqa: E731
    else:
        command = lambda: serve(settings)  # noqa: E731
    try:
        return asyncio.run(command())
    except KeyboardInterrupt:
        return 130
    except (DataDirInUse, DataDirOfAnotherUser, NoDatabaseHere, DatabaseUnreachable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except DatabaseRefusedCredentials as error:  # a setting that would only fail again, as a bad one
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        # Unexpected, so nothing above explained it: one error record whose first line names
        # the failure, with the traceback the operator needs to fix it (at error level: a
        # service run at the usual level shows it).
        log.error("fatal: %s stopped on %s: %s", arguments.command or "the service", type(error).__name__, error,
                  exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
