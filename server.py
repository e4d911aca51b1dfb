"""Runs the Tsundoku service, and the operator commands that work on its database."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from tornado.httpserver import HTTPServer

from auth.permissions import ROLES
from handlers.application import make_app
from settings import Settings, SettingsError, documented_variables
from storage.indexes import prepare_database
from storage.lifecycle import open_database
from storage.users import UserStore

log = logging.getLogger("tsundoku")

SHUTDOWN_GRACE_S = 10.0
# Only the avatar upload route takes more; every other body is small.
MAX_BODY_BYTES = 1024 * 1024

__all__ = ["make_app", "main"]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The driver's own debug output can include command documents; keep it quiet.
    logging.getLogger("pymongo").setLevel(logging.WARNING)
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)


async def serve(settings: Settings) -> int:
    async with open_database(settings, owner=True) as db:
        await prepare_database(db)
        app = make_app(settings, db)
        server = HTTPServer(app, xheaders=settings.trust_proxy, max_body_size=MAX_BODY_BYTES)
        try:
            server.listen(settings.port, settings.host)
        except OSError as error:
            log.error("cannot listen on %s:%d: %s", settings.host, settings.port, error.strerror)
            return 1
        log.info("listening on http://%s:%d", settings.host, settings.port)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

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
    log.info("stopped")
    return 0


async def import_catalog(settings: Settings, path: str) -> int:
    print("import-catalog: not implemented yet", file=sys.stderr)
    return 1


async def set_role(settings: Settings, username: str, role: str) -> int:
    if role not in ROLES:
        print(f"set-role: unknown role {role!r}; roles are {', '.join(ROLES)}", file=sys.stderr)
        return 2
    async with open_database(settings, owner=False) as db:
        await prepare_database(db)
        if not await UserStore(db).set_roles(username, [role]):
            print(f"set-role: no user named {username!r}", file=sys.stderr)
            return 1
    print(f"set-role: {username} now has the role {role}")
    return 0


async def verify_age(settings: Settings, username: str, revoke: bool) -> int:
    async with open_database(settings, owner=False) as db:
        if not await UserStore(db).set_age_verified(username, not revoke):
            print(f"verify-age: no user named {username!r}", file=sys.stderr)
            return 1
    print(f"verify-age: {username} is {'not ' if revoke else ''}age-verified")
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
    age = commands.add_parser("verify-age", help="mark a user as age-verified (or not, with --revoke)")
    age.add_argument("username")
    age.add_argument("--revoke", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error.variable} is invalid; it accepts {error.accepted}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    command: Callable[[], Awaitable[int]]
    if arguments.command == "import-catalog":
        command = lambda: import_catalog(settings, arguments.file)  # noqa: E731
    elif arguments.command == "set-role":
        command = lambda: set_role(settings, arguments.username, arguments.role)  # noqa: E731
    elif arguments.command == "verify-age":
        command = lambda: verify_age(settings, arguments.username, arguments.revoke)  # noqa: E731
    else:
        command = lambda: serve(settings)  # noqa: E731
    try:
        return asyncio.run(command())
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a clear line for the operator; the traceback at debug level
        log.debug("fatal", exc_info=True)
        log.error("%s: %s", type(error).__name__, error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
