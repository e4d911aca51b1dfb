"""The process's numbers for `GET /metrics` (handlers.metrics), kept in memory by each application."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from storage.users import UserStore

log = logging.getLogger("tsundoku")
# The user and session counts cost a scan of `users`: refreshed in the background at most this often.
COUNTS_EVERY_S = 300.0
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROUND_TRIP_BUCKETS = (0, 1, 2, 3, 4, 5, 8, 13)


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
        self.users = Gauge("tsundoku_users", "Registered users (refreshed every few minutes)", registry=self.registry)
        self.sessions = Gauge("tsundoku_stored_sessions", "Sessions stored (refreshed every few minutes)",
                              registry=self.registry)
        self._counted_at = float("-inf")
        self._counting: asyncio.Task[None] | None = None

    def observe(self, route: str, method: str, status: int, seconds: float, round_trips: int | None) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if round_trips is not None:
            self.round_trips.labels(route).observe(round_trips)
        if status == 503:
            self.database_errors.inc()

    def refresh_counts(self, users: UserStore) -> None:
        """Starts a background count if the last one is old; never waits for it."""
        if self._counting is not None and not self._counting.done():
            return
        if time.monotonic() - self._counted_at < COUNTS_EVERY_S:
            return
        self._counted_at = time.monotonic()
        self._counting = asyncio.get_running_loop().create_task(self._count(users))

    async def _count(self, store: UserStore) -> None:
        try:
            users, sessions = await store.population()
        except Exception:  # noqa: BLE001 - a scrape must not fail for it; the old values stay
            log.warning("metrics: counting users and sessions failed", exc_info=True)
            return
        self.users.set(users)
        self.sessions.set(sessions)
