"""What Tornado calls when a request is answered: the access log line and the request metrics."""

from __future__ import annotations

import logging

import tornado.web

access_log = logging.getLogger("tsundoku.access")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One line per request: never headers, cookies, bodies or query strings."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    user = getattr(handler, "user", None)
    request = handler.request
    duration_ms = round(1000.0 * request.request_time(), 1)
    user_id = user.id if user is not None else "-"
    # The route's pattern (`/user/reading-status/id/{id}`) for a JSON line; "-" when none matched.
    fields = {"method": request.method, "route": getattr(handler, "route", None) or "-", "status": status,
              "duration_ms": duration_ms, "user": user_id}
    access_log.log(level, "%s %s %d %.1fms user=%s", request.method, request.path, status, duration_ms, user_id,
                   extra=fields)


def record_request(handler: tornado.web.RequestHandler) -> None:
    """The application's `log_function`: the access log line and the metrics."""
    log_request(handler)
    services = getattr(handler, "services", None)
    if services is not None:
        trips = getattr(handler, "round_trips", None)
        services.metrics.observe(getattr(handler, "route", None) or "-", handler.request.method or "-",
                                 handler.get_status(), handler.request.request_time(), trips[0] if trips else None)
