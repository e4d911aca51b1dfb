"""The process's numbers for `GET /metrics` (handlers.metrics), kept in memory by each application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from storage.users import UserStore

log = logging.getLogger("tsundoku")
# The user and session counts cost a scan of `users`, so a scrape starts a fresh count in the
# background only when the last one is older than COUNTS_AT_MOST_EVERY_S and than COUNTS_COST_SHARE
# times what it took: a count that took 1 s is made again after 100 s at the earliest, so counting
# takes at most 1% of the database's time, while a small database is counted every 15 s.
COUNTS_AT_MOST_EVERY_S = 15.0
COUNTS_COST_SHARE = 100
# Until a first count is done a scrape waits for it this long (within Prometheus' default 10 s
# scrape timeout): what it answers is then a count, never a 0 that was never counted.
FIRST_COUNT_WAIT_S = 5.0
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROUND_TRIP_BUCKETS = (0, 1, 2, 3, 4, 5, 8, 13)


def count_is_due(age: float, took: float) -> bool:
    """Whether a count of users and sessions as old as `age` (NaN: there is none), whose making
    took `took` seconds, is to be made again."""
    return not age < max(COUNTS_AT_MOST_EVERY_S, COUNTS_COST_SHARE * took)  # NaN compares False


class ServiceMetrics:
    """One per application (its own registry, so that several apps in one process, as in the
    tests, never mix their numbers)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("tsundoku_requests", "Requests answered", ("route", "method", "status"),
                                registry=self.registry)
        self.latency = Histogram("tsundoku_request_duration_seconds", "Time to answer a request",
                                 ("route", "method"), buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.round_trips = Histogram("tsundoku_request_database_round_trips", "Database commands per request",
                                     ("route",), buckets=_ROUND_TRIP_BUCKETS, registry=self.registry)
        self.database_errors = Counter("tsundoku_database_errors", "Requests answered 503 because the database "
                                       "could not serve", registry=self.registry)
        self.embedded_restarts = Gauge("tsundoku_embedded_database_restarts",
                                       "Restarts of the embedded database by its supervisor", registry=self.registry)
        self.in_flight = Gauge("tsundoku_requests_in_flight", "Requests being answered now (a scrape counts itself)",
                               registry=self.registry)
        self.users = Gauge("tsundoku_users", "Registered users (as of tsundoku_counts_age_seconds ago)",
                           registry=self.registry)
        self.sessions = Gauge("tsundoku_stored_sessions", "Sessions stored (as of tsundoku_counts_age_seconds ago)",
                              registry=self.registry)
        self.counts_age = Gauge("tsundoku_counts_age_seconds", "Age of the last count of users and sessions "
                                "(NaN before the first)", registry=self.registry)
        self.counts_age.set_function(lambda: time.monotonic() - self._counted_at)
        self._counted_at = float("nan")  # when the last count that finished started
        self._count_took = 0.0
        self._counting: asyncio.Task[None] | None = None

    def observe(self, route: str, method: str, status: int, seconds: float, round_trips: int | None) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if round_trips is not None:
            self.round_trips.labels(route).observe(round_trips)
        if status == 503:
            self.database_errors.inc()

    async def refresh_counts(self, users: UserStore) -> None:
        """Starts a background count when the last one is old enough (see COUNTS_COST_SHARE);
        waits for it (at most FIRST_COUNT_WAIT_S) only while there has been no count at all."""
        due = count_is_due(time.monotonic() - self._counted_at, self._count_took)
        if due and (self._counting is None or self._counting.done()):
            self._counting = asyncio.get_running_loop().create_task(self._count(users))
        if self._counted_at != self._counted_at and self._counting is not None:  # NaN: never counted
            # Shielded: a scrape that gives up waiting leaves the count to finish for the next one.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._counting), FIRST_COUNT_WAIT_S)

    async def _count(self, store: UserStore) -> None:
        started = time.monotonic()
        try:
            users, sessions = await store.population()
        except Exception:  # noqa: BLE001 - a scrape must not fail for it; the old values stay
            log.warning("metrics: counting users and sessions failed", exc_info=True)
            return
        self.users.set(users)
        self.sessions.set(sessions)
        self._counted_at, self._count_took = started, time.monotonic() - started
