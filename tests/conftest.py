"""Fixtures: one real SecantusDB per test run, a fresh database per test, the real app on a real port."""

from __future__ import annotations

import fcntl
import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymongo
import pymongo.common
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from auth.passwords import HASHES_AT_ONCE, HASHES_WAITING, Passwords
from handlers.application import make_app
from server import set_process_wide
from settings import Settings
from storage.database import REQUEST_OPERATION_TIMEOUT_MS, connect, database
from storage.embedded import EmbeddedDatabase
from storage.indexes import prepare_database
from storage.round_trips import DRIVER_COMMANDS
from tests.api_client import ApiClient
from tests.catalog_data import TWO_SERIES, load_catalog
from web.connections import GuardedHTTPServer
from web.http_server import TsundokuApplication, make_http_server

# The `browser` fixture of the Chromium tests (tests/test_browser.py, tests/test_webapp.py).
pytest_plugins = ["tests.chromium"]

# The modules whose tests take about 10 s or more each (a quiet run's --durations), started first:
# pytest-xdist hands out tests in collection order, so long ones left to the end make one worker
# run them while the other has nothing left (on 2026-12-07, here: 19:37 first, 20:40 alphabetically).
STARTED_FIRST = ("test_schema_fuzzing.py", "test_compact.py", "test_process_faults.py", "test_service_process.py",
                 "test_mal_import.py", "test_database_faults.py", "test_image_memory.py", "test_scale_out.py",
                 "test_hostile_sweep.py", "test_catalog_import.py", "test_ratings.py", "test_slow_clients.py",
                 "test_account_deletion.py", "test_log_format.py", "test_access_tokens.py", "test_webapp.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return STARTED_FIRST.index(name) if name in STARTED_FIRST else len(STARTED_FIRST)

    items.sort(key=rank)  # stable: the order within a module and among the others stays


FRONTEND_ORIGIN = "https://app.tsundoku.test"
# Real argon2id with small costs: the production parameters make every registration ~100 ms.
# Every test client is 127.0.0.1: one caller may take every place of the queue (tests of the
# per-caller bound build their own Passwords).
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
                           per_caller=HASHES_AT_ONCE + HASHES_WAITING)


class CommandCounter(CommandListener):
    """Counts the database commands (round trips) the application sends."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()
        self.log: list[str] = []
        self.sent: list[Any] = []  # the command documents themselves

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name not in DRIVER_COMMANDS:
            self.commands[event.command_name] += 1
            self.log.append(event.command_name)
            self.sent.append(event.command)

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass

    @property
    def total(self) -> int:
        return sum(self.commands.values())

    def targets(self) -> list[tuple[str, Any]]:
        """Each command with the collection it went to: ("find", "users")."""
        return [(name, sent.get(name)) for name, sent in zip(self.log, self.sent, strict=True)]

    def reset(self) -> None:
        self.commands.clear()
        self.log.clear()
        self.sent.clear()


@contextmanager
def _turn(directory: Path, alone: bool) -> Iterator[None]:
    """Shared between the workers of a parallel run, or the whole machine for a test `alone`:
    one that waits for its turn holds the turnstile, so the others cannot keep starting tests."""
    with open(directory / "turnstile.lock", "a") as turnstile, open(directory / "running.lock", "a") as running:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        fcntl.flock(running, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(running, fcntl.LOCK_UN)
            fcntl.flock(turnstile, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _alone_when_marked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # In a parallel run (pytest-xdist) a test marked `alone` waits for the other workers' tests to
    # end, and they wait for it: its bounds on waits are measured on a machine as quiet as in a run
    # on one worker. The workers' temporary directories share a parent, unique to the run.
    alone = request.node.get_closest_marker("alone") is not None
    if alone:
        # The test database's watchdog (below) makes a client in this process every few seconds:
        # not while a test measures its waits (one failed by 9 ms beside it).
        WATCHDOG_PAUSED.set()
    try:
        if not hasattr(request.config, "workerinput"):
            yield
            return
        with _turn(tmp_path_factory.getbasetemp().parent, alone):
            yield
    finally:
        WATCHDOG_PAUSED.clear()


@pytest.fixture(scope="session", autouse=True)
def _process_wide() -> None:
    # What server.py sets at start; the tests build their apps with make_app, in this process.
    set_process_wide(Settings())


@pytest.fixture(scope="session", autouse=True)
def _prompt_rediscovery() -> Iterator[None]:
    # After a network error or "not writable primary" the driver finds the server again before it
    # retries, waiting at least this long between checks (0.5 s: about a second per fault). The
    # fault tests inject hundreds of those; the answers, the retry and what is stored do not depend
    # on the wait, so the test clients check again after 50 ms (pymongo's own tests shorten it too).
    # The service started as its own process keeps the driver's value.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pymongo.common, "MIN_HEARTBEAT_INTERVAL", 0.05)
        yield


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("secantus")
    # As the service runs it (with --auth), plus MongoDB's fail points for the fault tests.
    server = EmbeddedDatabase(directory / "db", log_file=directory / "secantusd.log", test_commands=True)
    server.start()
    watchdog = TestDatabaseWatchdog(server, directory)
    watchdog.start()
    yield server.uri
    watchdog.stop()
    server.stop()


# SecantusDB was seen to stop answering for good in 2 of about 8 clean-clone runs (one thread in
# a storage-engine search, every other waiting for its lock): every later test of that worker then
# waited out its timeout, and the run outlived CI's limit. The service's supervisor kills and
# restarts a database that stops serving; a worker's test database gets the same, here: the test
# in flight fails, the ones after it run.
WEDGED_AFTER_S = 60.0
CHECK_EVERY_S = 5.0
WATCHDOG_PAUSED = threading.Event()  # set while a test marked `alone` runs


class TestDatabaseWatchdog(threading.Thread):
    """Signs in and pings the test database every CHECK_EVERY_S; after WEDGED_AFTER_S without an
    answer, writes the server's threads (py-spy, where installed) beside its files, says so on
    the terminal, and kills and restarts it on the same files and port."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, server: EmbeddedDatabase, directory: Path, *, wedged_after_s: float = WEDGED_AFTER_S,
                 check_every_s: float = CHECK_EVERY_S, answer_within_s: float = 10.0) -> None:
        super().__init__(daemon=True, name="test-database-watchdog")
        self.server = server
        self.directory = directory
        self.wedged_after_s = wedged_after_s
        self.check_every_s = check_every_s
        self.answer_within_ms = int(answer_within_s * 1000)
        self.restarts = 0
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)

    def _answers(self) -> bool:
        # A new client each time: signing in takes the lock that the stuck server's threads waited on.
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            self.server.uri, serverSelectionTimeoutMS=self.answer_within_ms, socketTimeoutMS=self.answer_within_ms,
            connectTimeoutMS=self.answer_within_ms)
        try:
            client.admin.command("ping")
            return True
        except Exception:  # noqa: BLE001 - any failure counts as no answer
            return False
        finally:
            client.close()

    def run(self) -> None:
        silent_since: float | None = None
        while not self._stopping.wait(self.check_every_s):
            if WATCHDOG_PAUSED.is_set():
                silent_since = None
                continue
            asked = time.monotonic()
            if self._answers():
                silent_since = None
                continue
            silent_since = silent_since or asked
            if time.monotonic() - silent_since < self.wedged_after_s or self._stopping.is_set():
                continue
            self._restart()
            silent_since = None

    def _restart(self) -> None:
        self.restarts += 1
        dump = self.directory / f"stuck-{self.restarts}.txt"
        spy = Path(sys.executable).parent / "py-spy"
        if spy.exists() and self.server.pid is not None:
            found = subprocess.run([str(spy), "dump", "--native", "--pid", str(self.server.pid)],
                                   capture_output=True, text=True, timeout=120)
            dump.write_text(found.stdout + found.stderr)
        sys.__stderr__.write(f"\nthe test database stopped answering for {self.wedged_after_s:.0f} s: restarting it "
                             f"(its threads: {dump})\n")
        self.server.kill()  # as the supervisor does: nothing acknowledged is lost
        self.server.restart()


@pytest.fixture
def commands() -> CommandCounter:
    return CommandCounter()


@asynccontextmanager
async def fresh_database(mongo_uri: str, listeners: list[CommandListener]) -> AsyncIterator[AsyncDatabase]:
    """A new, prepared database on the test server, dropped at the end."""
    client = connect(mongo_uri, listeners, operation_timeout_ms=REQUEST_OPERATION_TIMEOUT_MS)
    name = f"test_{uuid.uuid4().hex[:16]}"
    fresh = database(client, name)
    await prepare_database(fresh)
    yield fresh
    # Not bound by the service's 10 s: dropping what a heavy test wrote took longer than that on a
    # loaded machine (a clean-clone run, beside a soak), and failed a test that had passed.
    with pymongo.timeout(120):
        await client.drop_database(name)
    await client.close()


@pytest_asyncio.fixture
async def db(mongo_uri: str, commands: CommandCounter) -> AsyncIterator[AsyncDatabase]:
    async with fresh_database(mongo_uri, [commands]) as fresh:
        yield fresh


class FailPoints:
    """MongoDB's `failCommand` fail point on the test database server, scoped to the service's
    client (appName "tsundoku") so that the test's own setup and checks are never hit."""

    def __init__(self, admin: AsyncMongoClient) -> None:
        self._admin = admin

    async def fail(self, commands: list[str], mode: Any, **data: Any) -> None:
        await self._admin.admin.command("configureFailPoint", "failCommand", mode=mode,
                                        data={"failCommands": commands, "appName": "tsundoku", **data})

    async def off(self) -> None:
        await self._admin.admin.command("configureFailPoint", "failCommand", mode="off")


@pytest_asyncio.fixture
async def fail_points(mongo_uri: str) -> AsyncIterator[FailPoints]:
    admin: AsyncMongoClient = AsyncMongoClient(mongo_uri, appname="tsundoku-tests", timeoutMS=10_000)
    points = FailPoints(admin)
    yield points
    await points.off()
    await admin.close()


def suite_settings() -> Settings:
    """The settings of the tests' apps. Tests sign up many users from one address; the rate-limit
    tests set their own limits."""
    return Settings(cors_origins=(FRONTEND_ORIGIN,), cookie_secure=True, register_limit_per_hour=10_000)


@pytest.fixture
def settings() -> Settings:
    return suite_settings()


@dataclass
class RunningApp:
    app: TsundokuApplication
    base_url: str
    port: int
    server: GuardedHTTPServer

    def client(self) -> ApiClient:
        return ApiClient(self.base_url)


StartApp = Callable[..., Awaitable[RunningApp]]


def serve(app_settings: Settings, database_: AsyncDatabase, passwords: Passwords = FAST_PASSWORDS) -> RunningApp:
    """The real application, listening on a free port of 127.0.0.1 (stopped by `stop_serving`)."""
    app = make_app(app_settings, database_, passwords=passwords)
    sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server = make_http_server(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    return RunningApp(app, f"http://127.0.0.1:{port}", port, server)


async def stop_serving(servers: list[HTTPServer]) -> None:
    for server in servers:
        server.stop()
        await server.close_all_connections()


@pytest_asyncio.fixture
async def start_app(db: AsyncDatabase, settings: Settings) -> AsyncIterator[StartApp]:
    """Starts the real application on a free port; keyword arguments override settings (and
    `passwords`, the FAST_PASSWORDS hashing)."""
    servers: list[HTTPServer] = []

    async def start(database_: AsyncDatabase | None = None, passwords: Passwords | None = None,
                    **overrides: Any) -> RunningApp:
        running = serve(settings.with_overrides(**overrides), database_ if database_ is not None else db,
                        passwords or FAST_PASSWORDS)
        servers.append(running.server)
        return running

    yield start
    await stop_serving(servers)


@pytest_asyncio.fixture
async def running(start_app: StartApp) -> RunningApp:
    return await start_app()


@pytest.fixture
def api(running: RunningApp) -> ApiClient:
    return running.client()


@pytest_asyncio.fixture
async def catalog(request: pytest.FixtureRequest, db: AsyncDatabase) -> None:
    """The test module's `CATALOG` (the series its assertions are written for), or TWO_SERIES if
    it names none, loaded through the real catalog import."""
    await load_catalog(db, getattr(request.module, "CATALOG", TWO_SERIES))


@pytest_asyncio.fixture
async def alice(api: ApiClient, catalog: None) -> dict[str, Any]:
    """A signed-up user, `alice`, beside the module's catalog. A module whose alice has more (a
    list, an avatar) defines its own."""
    return await api.sign_up("alice")


@pytest.fixture(autouse=True)
def _quiet_access_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tsundoku")
