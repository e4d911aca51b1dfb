"""Keeps the embedded database serving: notices when its process exits, or when it runs but no
longer takes a write (a storage engine that panicked on a full disk answers pings and fails
everything else, for good), says why in the log, starts it again on the same files and port with
backoff, and gives up after repeated fast failures so that systemd or a container runtime restarts
the whole service. It also keeps the database's log under its cap while it runs."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from storage.embedded import EmbeddedDatabase, EmbeddedDatabaseError, describe_exit
from workers import off_the_loop

log = logging.getLogger("tsundoku.embedded")

POLL_INTERVAL_S = 0.2
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# This many failures (exits, restarts because it stopped serving, failed restarts) within the
# window: give up.
FAILURES_TO_GIVE_UP = 5
FAILURE_WINDOW_S = 60.0
# Running this long without a failure resets the backoff to its first step.
STABLE_AFTER_S = 60.0
# A write probe (one tiny journaled write) this long after the previous one ended, each bounded.
PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 3.0
# Restarted once this many probes in a row failed and the first of them began this long ago: one
# that answers every write with an error (a panicked engine) after about 5 s, one that answers
# nothing (hung, stopped) after about 11 s. A slow write now and then restarts nothing; a busy
# database still takes a tiny write within 3 s.
FAILED_PROBES_TO_RESTART = 3
NOT_SERVING_RESTART_AFTER_S = 5.0
# How SecantusDB answers a failure inside its storage engine (and any other internal error).
INTERNAL_ERROR = 1
# Commands whose success shows that the database takes writes (see EmbeddedSupervisor._probe_step).
WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify", "commitTransaction"})


class DatabaseState(enum.Enum):
    RUNNING = "running"
    # Its process runs, but its last write probe failed: routes answer 503 until a probe succeeds
    # again or it has been restarted.
    NOT_SERVING = "not-serving"
    RESTARTING = "restarting"
    FAILED = "failed"


class ProbeVerdict:
    """What the write probes say so far, kept apart from any database so that the decision can be
    read (and tested) on its own: whether the database serves, and whether it has failed long
    enough to be restarted."""

    def __init__(self) -> None:
        self.failures = 0
        self.failing_since: float | None = None
        self.last_error: str | None = None

    @property
    def serving(self) -> bool:
        return self.failures == 0

    def succeeded(self) -> None:
        self.failures, self.failing_since, self.last_error = 0, None, None

    def failed(self, started_at: float, error: str) -> None:
        """`started_at`: when the failed probe began (a probe that timed out began long before it failed)."""
        if self.failures == 0:
            self.failing_since = started_at
        self.failures += 1
        self.last_error = error

    def restart_due(self, now: float) -> bool:
        return (self.failures >= FAILED_PROBES_TO_RESTART and self.failing_since is not None
                and now - self.failing_since >= NOT_SERVING_RESTART_AFTER_S)


def describe_probe_error(error: BaseException) -> str:
    # A server's error carries its whole reply after "full error:"; the message before it says enough.
    return f"{type(error).__name__}: {str(error).split(', full error:')[0][:200]}"


class EmbeddedSupervisor:
    """Watches one EmbeddedDatabase from the service's event loop. The pymongo client keeps
    its URI: the restarted server listens on the same port, so the driver reconnects alone.
    `probe(timeout_s)` is the write probe (storage.database.write_probe on the service's client);
    without one, only the process's exit is watched."""

    def __init__(self, database: EmbeddedDatabase, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self.state = DatabaseState.RUNNING
        self.restarts = 0
        self.last_exit: str | None = None
        self.failed = asyncio.Event()
        self.verdict = ProbeVerdict()
        self._clock = clock
        self._failures: deque[float] = deque()
        self._consecutive = 0
        self._running_since = clock()
        self._task: asyncio.Task[None] | None = None
        self._probe: Callable[[float], Coroutine[Any, Any, None]] | None = None
        self._probing: asyncio.Task[None] | None = None
        self._probe_started = 0.0
        self._next_probe_at = clock() + PROBE_INTERVAL_S
        # When the service's client last had a write acknowledged (see WRITE_COMMANDS).
        self._write_acknowledged_at = float("-inf")

    @property
    def available(self) -> bool:
        return self.state is DatabaseState.RUNNING

    def describe(self) -> dict[str, object]:
        return {"state": self.state.value, "restarts": self.restarts, "last_exit": self.last_exit}

    def start(self, probe: Callable[[float], Coroutine[Any, Any, None]] | None = None) -> None:
        self._probe = probe
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="embedded-supervisor")

    @contextmanager
    def probes_held(self) -> Iterator[None]:
        """No write probe while the service prepares its database: an index built on a large
        catalog blocks SecantusDB for minutes (once, after an upgrade), and probes failing behind it
        would have a busy database taken for one that stopped serving, and killed. The process is
        still watched; probing resumes an interval after."""
        probe, self._probe = self._probe, None
        try:
            yield
        finally:
            self._probe = probe
            self._next_probe_at = self._clock() + PROBE_INTERVAL_S

    def probe_soon(self) -> None:
        """Probes at the next poll instead of after the interval. Safe from any thread."""
        self._next_probe_at = float("-inf")

    def write_acknowledged(self) -> None:
        self._write_acknowledged_at = self._clock()

    def command_listener(self) -> CommandListener:
        """For the service's client: a command that fails as a panicked engine fails asks for a
        probe at once, so that routes answer 503 within a poll instead of 500 for up to a second."""
        return InternalErrorListener(self)

    async def stop(self) -> None:
        """Stops watching, before the service stops the database on purpose."""
        self._abandon_probe()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            code = self.database.exit_code()
            if code is not None:
                self._abandon_probe()
                self.last_exit = describe_exit(code)
                log.error("the embedded database exited unexpectedly (%s); the last lines of its log:\n%s",
                          self.last_exit, self.database.log_tail())
            elif self._probe_step():
                self._abandon_probe()
                verdict = self.verdict
                self.last_exit = f"stopped serving ({verdict.last_error})"
                log.error("the embedded database stopped serving: %d write probes in a row failed over %.0f s "
                          "(the last: %s); killing it to start it again. The last lines of its log:\n%s",
                          verdict.failures, self._clock() - (verdict.failing_since or 0), verdict.last_error,
                          self.database.log_tail())
                await self.database.kill_async()
            else:
                if self._consecutive and self._clock() - self._running_since > STABLE_AFTER_S:
                    self._consecutive = 0
                if self.database.log_over_cap():
                    await off_the_loop(None, self.database.rotate_running_log)
                continue
            if not await self._recover():
                return

    def _probe_step(self) -> bool:
        """Takes a finished probe's outcome and starts the next one when due; True when the
        database has failed its probes long enough to be restarted."""
        if self._probe is None:
            return False
        now = self._clock()
        probing = self._probing
        if probing is not None and not probing.done() and now - self._probe_started > PROBE_TIMEOUT_S + 2:
            # The probe bounds itself; this only guards against one that never ends.
            probing.cancel()
            self._record_probe(now, "the write probe did not end")
        elif probing is not None and probing.done():
            error = None if probing.cancelled() else probing.exception()
            if error is not None and getattr(error, "timeout", False) and self._write_acknowledged_at > self._probe_started:
                # Timed out while the requests' writes were acknowledged: a busy database, whose
                # writes wait their turn (4 s and more in a soak on a saturated machine), not a
                # failed one; taken as an answer.
                error = None
            self._record_probe(now, describe_probe_error(error) if error is not None else None)
        if self.verdict.restart_due(now):
            return True
        if self._probing is None and now >= self._next_probe_at:
            self._probe_started = now
            self._probing = asyncio.get_running_loop().create_task(self._probe(PROBE_TIMEOUT_S),
                                                                   name="embedded-write-probe")
        return False

    def _record_probe(self, now: float, error: str | None) -> None:
        self._probing = None
        self._next_probe_at = now + PROBE_INTERVAL_S
        if error is None:
            if not self.verdict.serving:
                log.warning("the embedded database takes writes again")
            self.verdict.succeeded()
            if self.state is DatabaseState.NOT_SERVING:
                self.state = DatabaseState.RUNNING
            return
        if self.verdict.serving:
            log.warning("the embedded database failed a write probe (%s); answering 503 until it takes "
                        "writes again or has been restarted", error)
        self.verdict.failed(self._probe_started, error)
        if self.state is DatabaseState.RUNNING:
            self.state = DatabaseState.NOT_SERVING

    def _abandon_probe(self) -> None:
        probing, self._probing = self._probing, None
        if probing is None:
            return
        if probing.done() and not probing.cancelled():
            probing.exception()  # its outcome no longer matters; read, so asyncio does not log it as lost
        probing.cancel()

    async def _recover(self) -> bool:
        """Restarts with backoff until it runs again (True) or too many failures (False)."""
        self.state = DatabaseState.RESTARTING
        while True:
            if self._record_failure():
                self.state = DatabaseState.FAILED
                log.error("the embedded database failed %d times within %.0f s; stopping the service so that "
                          "its supervisor can restart it", FAILURES_TO_GIVE_UP, FAILURE_WINDOW_S)
                self.failed.set()
                return False
            delay = min(FIRST_BACKOFF_S * 2 ** (self._consecutive - 1), MAX_BACKOFF_S)
            log.warning("starting the embedded database again in %.0f s", delay)
            await asyncio.sleep(delay)
            try:
                await self.database.restart_async()
            except (EmbeddedDatabaseError, OSError) as error:  # OSError: it could not even be spawned
                self.last_exit = str(error)
                log.error("the embedded database did not start again: %s; the last lines of its log:\n%s",
                          error, self.database.log_tail())
                continue
            self.restarts += 1
            self._running_since = self._clock()
            self.verdict.succeeded()
            self._next_probe_at = self._clock() + PROBE_INTERVAL_S
            self.state = DatabaseState.RUNNING
            log.warning("the embedded database is running again (restart %d, pid %s)",
                        self.restarts, self.database.pid)
            return True

    def _record_failure(self) -> bool:
        """Counts one failure; True when that makes too many within the window."""
        now = self._clock()
        self._failures.append(now)
        while self._failures and now - self._failures[0] > FAILURE_WINDOW_S:
            self._failures.popleft()
        self._consecutive += 1
        return len(self._failures) >= FAILURES_TO_GIVE_UP


class InternalErrorListener(CommandListener):
    """Asks the supervisor for a write probe at once when a command fails with an internal error:
    how every command fails on a panicked storage engine, but also how a single bad command can
    fail, so it only hurries the probe, which decides. And tells it of every write acknowledged."""

    def __init__(self, supervisor: EmbeddedSupervisor) -> None:
        self.supervisor = supervisor

    def started(self, event: CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        # A write the database acknowledged (with no write error in its reply): it takes writes.
        if event.command_name in WRITE_COMMANDS and not (event.reply.get("writeErrors")
                                                         or event.reply.get("writeConcernError")):
            self.supervisor.write_acknowledged()

    def failed(self, event: CommandFailedEvent) -> None:
        if isinstance(event.failure, Mapping) and event.failure.get("code") == INTERNAL_ERROR:
            self.supervisor.probe_soon()
