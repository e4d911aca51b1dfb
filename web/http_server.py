"""The Tornado application the service runs, and the HTTP server built for it."""

from __future__ import annotations

import tornado.web

from web.connections import ConnectionLimits, GuardedHTTPServer
from web.services import Services


class TsundokuApplication(tornado.web.Application):
    services: Services
    # The largest request body any route accepts (each route applies its own in `prepare`):
    # the route table knows it, the server is built with it.
    largest_body: int


def make_http_server(app: TsundokuApplication) -> GuardedHTTPServer:
    """The server for `app`: its body limit is the largest of any route, forwarded addresses
    count only behind a trusted proxy, and slow or numerous clients are bounded (see
    `web.connections`)."""
    settings = app.services.settings
    limits = ConnectionLimits(header_timeout_s=settings.header_timeout_s, body_grace_s=settings.body_grace_s,
                              body_min_bytes_per_s=settings.body_min_bytes_per_s,
                              max_connections=settings.max_connections)
    return GuardedHTTPServer(app, xheaders=settings.trust_proxy, max_body_size=app.largest_body, limits=limits)
