"""The HTTP server's defences against slow and numerous clients.

A client costs an open file for as long as its connection lives, so a client that never finishes
its request must not keep one. A request's headers must be complete within `header_timeout_s`;
its body, once `body_grace_s` has passed since the headers were handled, must keep an average of
at least `body_min_bytes_per_s` (or be complete). A request that misses either is answered 408
in the service's JSON shape and its connection closed; an idle keep-alive connection is closed
after `header_timeout_s` without an answer.

The number of open connections is capped below the process's open-file limit. At the cap a new
connection makes room: first the connection whose body arrives at the lowest average rate, then
the one that has waited longest for its next request's headers. A request whose body is complete
(the application is handling it) is never evicted. So a flood of half-sent requests or trickled
bodies cannot lock out the clients that do send theirs. Refusals are logged once per interval,
never per connection: a flood must not flood the log too.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import json
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from web.errors import REQUEST_TIMEOUT, message_body

log = logging.getLogger("tsundoku.connections")

# Files the process needs besides client connections: database pools and monitors, GridFS,
# the log, the image workers. The connection cap leaves this many of the open-file limit free.
RESERVED_FILES = 256
# Refusals are summed and logged at most once per this many seconds.
REFUSAL_LOG_INTERVAL_S = 60.0
# A body that keeps up with the minimum rate is checked again when it could next fall below it,
# but not sooner than this: a body exactly at the rate costs one timer a second, not a busy loop.
BODY_CHECK_MIN_STEP_S = 1.0
# Rates are averaged over at least this long, so that a body's first instant does not decide.
RATE_MIN_WINDOW_S = 1.0
# At the cap, one scan of the bodies picks this fraction of them (the slowest) as the next ones
# to evict: each new connection costs a bounded share of a scan, not a scan of every connection.
EVICTION_BATCH_DIVISOR = 32
# Reads of up to 64 KiB each that a connection answered 408 gets before it is closed (see
# `_discard_unread`).
UNREAD_DISCARD_READS = 4


def _request_timeout_answer() -> bytes:
    # Written by the server itself, so it is built here as ApiHandler.write_error would render it.
    body = json.dumps(message_body(408, REQUEST_TIMEOUT), separators=(",", ":")).encode()
    head = ("HTTP/1.1 408 Request Timeout\r\n"
            "Content-Type: application/json; charset=UTF-8\r\n"
            "Cache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "Connection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


REQUEST_TIMEOUT_ANSWER = _request_timeout_answer()


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 30.0
    body_grace_s: float = 10.0
    body_min_bytes_per_s: int = 1024
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
    """Counts refusals by reason and logs the sums at most once per interval: the first at once,
    the rest when the interval is over."""

    def __init__(self, interval_s: float = REFUSAL_LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.counts: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._last_logged = float("-inf")
        self._flush: asyncio.TimerHandle | None = None

    def count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.totals[reason] = self.totals.get(reason, 0) + 1
        wait_s = self._last_logged + self.interval_s - time.monotonic()
        if wait_s <= 0:
            self.flush()
        elif self._flush is None:
            # Without this, the sums of a flood that stops would wait for the next refusal.
            try:
                self._flush = asyncio.get_running_loop().call_later(wait_s, self.flush)
            except RuntimeError:
                pass  # no loop (a plain test): the next refusal logs them

    def flush(self) -> None:
        """Logs the sums not logged yet (the service calls it as it stops, too)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if not self.counts:
            return
        self._last_logged = time.monotonic()
        summary = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
        self.counts.clear()
        log.warning("refused connections in the last %.0f s: %s", self.interval_s, summary)


class Phase(enum.Enum):
    HEADERS = "waiting for its request's headers"  # an idle keep-alive connection, or headers arriving
    BODY = "receiving a body"  # headers handled, the body arriving: the application waits for it
    BUSY = "busy"  # the application is checking the headers (prepare), handling the request, or answering
    CLOSED = "closed"


class _Connection:
    """What the server knows of one client connection and of its current request."""

    def __init__(self, server_conn: HTTP1ServerConnection) -> None:
        self.server_conn = server_conn
        self.phase = Phase.HEADERS
        self.waiting_since = time.monotonic()
        self.body_since = 0.0
        self.body_received = 0
        self.answered = False  # the application has begun its answer to the current request
        self.timer: object | None = None

    @property
    def stream(self) -> IOStream:
        return self.server_conn.stream

    def body_rate(self, now: float) -> float:
        return self.body_received / max(now - self.body_since, RATE_MIN_WINDOW_S)

    def request_started(self) -> bool:
        """Whether bytes of the next request have arrived (Tornado holds them until the headers
        are complete). Tornado has no public accessor for its read buffer; should the attribute
        go, every timed-out header wait counts as started and is answered 408."""
        return getattr(self.stream, "_read_buffer_size", 1) > 0


class GuardedHTTPServer(HTTPServer):
    def initialize(self, *args: Any, limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        self.limits = limits or ConnectionLimits()
        # The server's own header timer (`_headers_late`) answers first; Tornado's stays a backstop.
        kwargs["idle_connection_timeout"] = 2 * self.limits.header_timeout_s
        super().initialize(*args, **kwargs)
        self.cap = self.limits.connection_cap()
        self.refusals = RefusalLog()
        self._states: dict[HTTP1ServerConnection, _Connection] = {}
        # The evictable connections: header waits, oldest first, and bodies.
        self._waiting: OrderedDict[_Connection, None] = OrderedDict()
        self._bodies: set[_Connection] = set()
        self._next_victims: list[_Connection] = []  # slowest last
        # Closed by us, not yet removed by Tornado: their files are already free.
        self._closing: set[HTTP1ServerConnection] = set()

    @property
    def open_connections(self) -> int:
        return len(self._connections) - len(self._closing)

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        if self.open_connections >= self.cap and not self._make_room():
            self.refusals.count("over the connection cap")
            stream.close()
            return
        super().handle_stream(stream, address)

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        # HTTPServer types both connections loosely; it hands this method its own HTTP/1 ones.
        server_conn = cast(HTTP1ServerConnection, server_conn)
        connection = self._states.get(server_conn)
        if connection is None:
            connection = self._states[server_conn] = _Connection(server_conn)
        connection.waiting_since = time.monotonic()
        connection.body_received = 0
        connection.answered = False
        self._enter(connection, Phase.HEADERS)
        watched = _AnswerWatch(cast(HTTP1Connection, request_conn), lambda: self._answering(connection))
        inner = super().start_request(server_conn, watched)
        return _WatchedRequest(inner, connection, self)

    def connections_by_phase(self) -> dict[str, int]:
        """How many open connections are in each phase (for tests and diagnostics: a full scan)."""
        counts: dict[str, int] = {}
        for connection in self._states.values():
            counts[connection.phase.name] = counts.get(connection.phase.name, 0) + 1
        return counts

    def on_close(self, server_conn: object) -> None:
        server_conn = cast(HTTP1ServerConnection, server_conn)  # as in start_request
        connection = self._states.pop(server_conn, None)
        if connection is not None:
            self._enter(connection, Phase.CLOSED)
        self._closing.discard(server_conn)
        super().on_close(server_conn)

    # ---- the phases of a request ----

    def _enter(self, connection: _Connection, phase: Phase) -> None:
        if connection.timer is not None:
            IOLoop.current().remove_timeout(connection.timer)
            connection.timer = None
        self._waiting.pop(connection, None)
        self._bodies.discard(connection)
        connection.phase = phase
        if phase is Phase.HEADERS:
            self._waiting[connection] = None
            connection.timer = IOLoop.current().call_later(self.limits.header_timeout_s, self._headers_late,
                                                           connection)
        elif phase is Phase.BODY:
            connection.body_since = time.monotonic()
            self._bodies.add(connection)
            connection.timer = IOLoop.current().call_later(self.limits.body_grace_s, self._check_body, connection)

    def headers_arrived(self, connection: _Connection) -> None:
        self._enter(connection, Phase.BUSY)

    def body_started(self, connection: _Connection) -> None:
        """The application has looked at the headers and now waits for the body."""
        if connection.phase is Phase.BUSY and not connection.answered:
            self._enter(connection, Phase.BODY)

    def body_complete(self, connection: _Connection) -> None:
        if connection.phase is not Phase.CLOSED:
            self._enter(connection, Phase.BUSY)

    def request_abandoned(self, connection: _Connection) -> None:
        """The connection is closing under the request (the client left, or Tornado refused it)."""
        self._enter(connection, Phase.CLOSED)

    def _answering(self, connection: _Connection) -> None:
        # From here the answer is the application's; Tornado closes the connection after it if
        # the body is not complete. The server must not answer this request a second time.
        connection.answered = True
        if connection.phase is not Phase.CLOSED:
            self._enter(connection, Phase.BUSY)

    def _headers_late(self, connection: _Connection) -> None:
        connection.timer = None
        if connection.phase is not Phase.HEADERS:
            return
        if connection.request_started():
            self.refusals.count("requests whose headers were too slow (408)")
            self._end(connection, answer=True)
        else:
            # An idle keep-alive connection is closed without a word: browsers and HTTP clients
            # retry a request on a fresh connection when a reused one turns out closed, while an
            # unrequested 408 could be read as the answer to the request they send next.
            self._end(connection, answer=False)

    def _check_body(self, connection: _Connection) -> None:
        connection.timer = None
        if connection.phase is not Phase.BODY:
            return
        now = time.monotonic()
        elapsed = now - connection.body_since
        rate = self.limits.body_min_bytes_per_s
        if connection.body_received >= rate * elapsed:
            # Checked again when, with nothing more arriving, the average would fall below the rate.
            next_s = max(connection.body_received / rate - elapsed, BODY_CHECK_MIN_STEP_S)
            connection.timer = IOLoop.current().call_later(next_s, self._check_body, connection)
            return
        self.refusals.count("request bodies below the minimum rate (408)")
        self._end(connection, answer=True)

    # ---- at the cap ----

    def _make_room(self) -> bool:
        victim = self._slowest_body()
        if victim is not None:
            self.refusals.count("request bodies evicted at the connection cap (408)")
            self._end(victim, answer=True)
            return True
        if self._waiting:
            oldest = next(iter(self._waiting))
            self.refusals.count("closed at the connection cap while waiting for headers")
            self._end(oldest, answer=oldest.request_started())
            return True
        return False

    def _slowest_body(self) -> _Connection | None:
        # The batch's rates are those of when it was picked: close enough for the next few
        # connections, and far cheaper than a scan of every body for each of them.
        while self._next_victims:
            candidate = self._next_victims.pop()
            if candidate.phase is Phase.BODY:
                return candidate
        if not self._bodies:
            return None
        now = time.monotonic()
        batch = max(1, len(self._bodies) // EVICTION_BATCH_DIVISOR)
        slowest = heapq.nsmallest(batch, self._bodies, key=lambda connection: connection.body_rate(now))
        self._next_victims = slowest[::-1]
        return self._next_victims.pop()

    def _end(self, connection: _Connection, *, answer: bool) -> None:
        """Closes the connection, first answering 408 unless the application has begun an answer.
        Closing at once (not after the write) keeps anyone from writing to it in between: the
        answer is small and goes to the kernel's buffer within `write`; a client that has not
        read what fills that buffer would not read the 408 either."""
        self._enter(connection, Phase.CLOSED)
        self._closing.add(connection.server_conn)
        stream = connection.stream
        # `writing`: Tornado's own answer to a malformed request (a bare 400) may still be on its way.
        if answer and not connection.answered and not stream.closed() and not stream.writing():
            stream.write(REQUEST_TIMEOUT_ANSWER)
            _discard_unread(stream)
        # Tornado then tells the application's handler that the connection is gone (its
        # on_connection_close), and calls on_close.
        stream.close()


def _discard_unread(stream: IOStream) -> None:
    """Reads away what the client sent that nobody read yet: closed with unread bytes, a socket
    sends a reset instead of the end of the stream, and a client that gets the reset before it has
    read the 408 never sees it. Bounded: a client that keeps sending gets its reset."""
    try:
        for _ in range(UNREAD_DISCARD_READS):
            if not stream.socket.recv(65536):
                return
    except OSError:  # BlockingIOError included: nothing more to read
        pass


class _AnswerWatch(httputil.HTTPConnection):
    """The request's connection as the application sees it: tells the server when the
    application begins its answer, after which the server never answers that request itself."""

    def __init__(self, inner: HTTP1Connection, on_answer: Callable[[], None]) -> None:
        self.inner = inner
        self.on_answer = on_answer

    @property
    def context(self) -> Any:
        return self.inner.context

    @property
    def stream(self) -> IOStream:
        return self.inner.stream

    def write_headers(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                      headers: httputil.HTTPHeaders, chunk: bytes | None = None) -> asyncio.Future[None]:
        self.on_answer()
        return self.inner.write_headers(start_line, headers, chunk)

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        return self.inner.write(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self.inner.set_close_callback(callback)

    def set_max_body_size(self, max_body_size: int) -> None:
        self.inner.set_max_body_size(max_body_size)

    def set_body_timeout(self, timeout: float) -> None:
        self.inner.set_body_timeout(timeout)

    def detach(self) -> IOStream:
        return self.inner.detach()


def _has_body(headers: httputil.HTTPHeaders) -> bool:
    return "Transfer-Encoding" in headers or headers.get("Content-Length", "0").strip() not in ("", "0")


class _WatchedRequest(httputil.HTTPMessageDelegate):
    """Passes everything to the application, and tells the server where the request stands."""

    def __init__(self, inner: httputil.HTTPMessageDelegate, connection: _Connection,
                 server: GuardedHTTPServer) -> None:
        self.inner = inner
        self.connection = connection
        self.server = server

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> Awaitable[None] | None:
        self.server.headers_arrived(self.connection)
        ready = self.inner.headers_received(start_line, headers)
        if not _has_body(headers):
            return ready
        if ready is None:
            self.server.body_started(self.connection)
            return None
        return self._body_after(ready)

    async def _body_after(self, ready: Awaitable[None]) -> None:
        # Tornado reads no body until the application has looked at the headers (its `prepare`,
        # with authentication): the body's clock starts then, not while the service works.
        await ready
        self.server.body_started(self.connection)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        self.connection.body_received += len(chunk)
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.server.body_complete(self.connection)
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.server.request_abandoned(self.connection)
        self.inner.on_connection_close()
