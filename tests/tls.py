"""Serving an application over https on loopback, with Tornado's own self-signed test certificate,
for tests of what the service does with requests that came over TLS."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import tornado
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

TORNADO_TESTS = Path(tornado.__file__).parent / "test"


def tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TORNADO_TESTS / "test.crt", TORNADO_TESTS / "test.key")
    return context


@asynccontextmanager
async def served_over_tls(app: tornado.web.Application, server_class: type[HTTPServer] = HTTPServer,
                          host: str = "127.0.0.1") -> AsyncIterator[str]:
    """`app` over https on a free loopback port, named by `host` (127.0.0.1 or localhost: two
    sites to a browser); its origin. A client must not verify the certificate (it names
    foo.example.com)."""
    sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server = server_class(app, ssl_options=tls_context())
    server.add_sockets(sockets)
    try:
        yield f"https://{host}:{sockets[0].getsockname()[1]}"
    finally:
        server.stop()
        await server.close_all_connections()
