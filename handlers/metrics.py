"""`GET /metrics`: the process's numbers in Prometheus' text format, for loopback addresses or a
`METRICS_TOKEN` bearer only (operational data, not for the public).

Requests are counted by route pattern (`/user/reading-status/id/{id}`, never the raw path, so the
series stay few), method and status; latency and database round trips per request are
histograms. The user and session counts cost a scan of `users`, so a scrape starts a fresh count
in the background only as often as web.service_metrics allows, and waits for one only before the
first count is done."""

from __future__ import annotations

import hmac
import ipaddress

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from web.base import ApiHandler
from web.errors import FORBIDDEN, ApiError


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class MetricsHandler(ApiHandler):
    requires_auth = False
    needs_database = False  # answered from memory, also while the database is down

    async def get(self) -> None:
        token = self.services.settings.metrics_token
        given = self.request.headers.get("Authorization", "")
        authorized = token is not None and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
        if not (authorized or _is_loopback(self.request.remote_ip)):
            raise ApiError(403, FORBIDDEN)
        metrics = self.services.metrics
        supervisor = self.services.supervisor
        metrics.embedded_restarts.set(supervisor.restarts if supervisor is not None else 0)
        await metrics.refresh_counts(self.services.users)
        self.set_header("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)  # what every Prometheus reads
        self.finish(generate_latest(metrics.registry))
