"""Keeps the embedded database running: notices when its process exits, says why in the log,
starts it again on the same files and port with backoff, and gives up after repeated fast
failures so that systemd or a container runtime restarts the whole service."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable

from storage.embedded import EmbeddedDatabase, EmbeddedDatabaseError, describe_exit

log = logging.getLogger("tsundoku.embedded")

POLL_INTERVAL_S = 0.2
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# This many failures (exits or failed restarts) within the window: give up.
FAILURES_TO_GIVE_UP = 5
FAILURE_WINDOW_S = 60.0
# Running this long without a failure resets the backoff to its first step.
STABLE_AFTER_S = 60.0


class DatabaseState(enum.Enum):
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"


class EmbeddedSupervisor:
    """Watches one EmbeddedDatabase from the service's event loop. The pymongo client keeps
    its URI: the restarted server listens on the same port, so the driver reconnects alone."""

    def __init__(self, database: EmbeddedDatabase, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self.state = DatabaseState.RUNNING
        self.restarts = 0
        self.last_exit: str | None = None
        self.failed = asyncio.Event()
        self._clock = clock
        self._failures: deque[float] = deque()
        self._consecutive = 0
        self._running_since = clock()
        self._task: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return self.state is DatabaseState.RUNNING

    def describe(self) -> dict[str, object]:
        return {"state": self.state.value, "restarts": self.restarts, "last_exit": self.last_exit}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="embedded-supervisor")

    async def stop(self) -> None:
        """Stops watching, before the service stops the database on purpose."""
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
            if code is None:
                if self._consecutive and self._clock() - self._running_since > STABLE_AFTER_S:
                    self._consecutive = 0
                continue
            self.last_exit = describe_exit(code)
            log.error("the embedded database exited unexpectedly (%s); the last lines of its log:\n%s",
                      self.last_exit, self.database.log_tail())
            if not await self._recover():
                return

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
