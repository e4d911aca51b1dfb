"""The HTTP server's defences against slow and numerous clients.

A client costs an open file for as long as its connection lives, so a client that never finishes
its request must not keep one: headers must be complete within `header_timeout_s` (Tornado closes
the connection; the same bound ends an idle keep-alive connection), and a body must bring at least
`BODY_MIN_BYTES` in every `body_stall_s` or be cut off. The number of open connections is capped
below the process's open-file limit; at the cap, the connection that has waited longest for its
next request's headers makes room for the new one, so a flood of half-sent requests cannot lock
out the clients that do send theirs. Refusals are logged once per interval, never per connection:
a flood must not flood the log too.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from tornado import httputil
from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

log = logging.getLogger("tsundoku.connections")

# Files the process needs besides client connections: database pools and monitors, GridFS,
# the log, the image workers. The connection cap leaves this many of the open-file limit free.
RESERVED_FILES = 256
# A body must bring at least this many bytes in every stall interval (or be complete).
BODY_MIN_BYTES = 4096
# Refusals are summed and logged at most once per this many seconds.
REFUSAL_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 30.0
    body_stall_s: float = 60.0
    # 0: as many as the open-file limit allows, less RESERVED_FILES.
    max_connections: int = 0

    def connection_cap(self) -> int:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        by_files = max(16, soft - RESERVED_FILES) if soft != resource.RLIM_INFINITY else 1 << 20
        return min(self.max_connections, by_files) if self.max_connections > 0 else by_files


def raise_open_file_limit() -> None:
    """Most systems start a process with a soft limit (often 1024) far below the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass  # keep the soft limit; the cap follows whatever it is


class RefusalLog:
    """Counts refusals by reason and logs the sums at most once per interval."""

    def __init__(self, interval_s: float = REFUSAL_LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.counts: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._last_logged = float("-inf")

    def count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.totals[reason] = self.totals.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._last_logged >= self.interval_s:
            self._last_logged = now
            summary = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
            self.counts.clear()
            log.warning("refused connections in the last %.0f s: %s", self.interval_s, summary)


class _Connection:
    """What the server knows of one client connection."""

    def __init__(self) -> None:
        self.waiting_since = time.monotonic()  # for its next request's headers
        self.in_request = False


class GuardedHTTPServer(HTTPServer):
    def initialize(self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        self.limits = limits or ConnectionLimits()
        # Tornado applies its idle-connection timeout to the wait for a request's headers.
        kwargs["idle_connection_timeout"] = self.limits.header_timeout_s
        super().initialize(*args, **kwargs)
        self.cap = self.limits.connection_cap()
        self.refusals = RefusalLog()
        self._states: dict[HTTP1ServerConnection, _Connection] = {}
        # Closed by us, not yet removed by Tornado: their files are already free.
        self._evicted: set[HTTP1ServerConnection] = set()

    @property
    def open_connections(self) -> int:
        return len(self._connections) - len(self._evicted)

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        if self.open_connections >= self.cap and not self._evict_a_waiting_connection():
            self.refusals.count("over the connection cap")
            stream.close()
            return
        super().handle_stream(stream, address)

    def _evict_a_waiting_connection(self) -> bool:
        waiting = [(state.waiting_since, id(conn), conn) for conn, state in self._states.items()
                   if not state.in_request]
        if not waiting:
            return False
        _since, _id, oldest = min(waiting)
        self.refusals.count("closed at the connection cap while waiting for headers")
        del self._states[oldest]
        self._evicted.add(oldest)
        oldest.stream.close()
        return True

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        connection = self._states.setdefault(server_conn, _Connection())  # type: ignore[arg-type]
        connection.in_request = False
        connection.waiting_since = time.monotonic()
        inner = super().start_request(server_conn, request_conn)
        return _WatchedRequest(inner, request_conn, connection, self)

    def on_close(self, server_conn: object) -> None:
        self._states.pop(server_conn, None)  # type: ignore[call-overload]
        self._evicted.discard(server_conn)  # type: ignore[arg-type]
        super().on_close(server_conn)


class _WatchedRequest(httputil.HTTPMessageDelegate):
    """Passes everything to the application, and cuts off a body that stalls."""

    def __init__(self, inner: httputil.HTTPMessageDelegate, request_conn: httputil.HTTPConnection,
                 connection: _Connection, server: GuardedHTTPServer) -> None:
        self.inner = inner
        self.request_conn = request_conn
        self.connection = connection
        self.server = server
        self.received = 0
        self._received_at_last_check = 0
        self._watch: object | None = None

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> Any:
        self.connection.in_request = True
        if "Content-Length" in headers or "Transfer-Encoding" in headers:
            self._schedule_check()
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        self.received += len(chunk)
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self._stop_watching()
        self.inner.finish()

    def on_connection_close(self) -> None:
        self._stop_watching()
        self.inner.on_connection_close()

    def _schedule_check(self) -> None:
        self._watch = IOLoop.current().call_later(self.server.limits.body_stall_s, self._check_progress)

    def _check_progress(self) -> None:
        self._watch = None
        if self.received - self._received_at_last_check >= BODY_MIN_BYTES:
            self._received_at_last_check = self.received
            self._schedule_check()
            return
        self.server.refusals.count("request bodies that stalled")
        self.request_conn.close()  # type: ignore[attr-defined]

    def _stop_watching(self) -> None:
        if self._watch is not None:
            IOLoop.current().remove_timeout(self._watch)  # type: ignore[arg-type]
            self._watch = None
