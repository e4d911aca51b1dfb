"""Counts the database commands (round trips) of the request being handled, for the metrics: a
command listener on every client, and a counter per request in a context variable (asyncio runs
each request in its own task, so concurrent requests never share one)."""

from __future__ import annotations

from contextvars import ContextVar

from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

_current: ContextVar[list[int] | None] = ContextVar("round_trips", default=None)
# What the driver sends on its own (monitoring, authentication, a server's version), not on a
# request's behalf. The tests count round trips with the same set (tests/conftest.py).
DRIVER_COMMANDS = frozenset({"hello", "ismaster", "isMaster", "saslStart", "saslContinue", "endSessions", "ping",
                             "buildInfo"})


class RoundTripCounter(CommandListener):
    def started(self, event: CommandStartedEvent) -> None:
        counter = _current.get()
        if counter is not None and event.command_name not in DRIVER_COMMANDS:
            counter[0] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


def count_round_trips() -> list[int]:
    """Starts counting for the current task; the returned one-element list holds the count."""
    counter = [0]
    _current.set(counter)
    return counter
