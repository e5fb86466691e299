"""The ingest endpoint's connections: how many may be open, how long a client may take
over a request's headers, and what aiohttp's connection handler may log.

aiohttp 3.14 gives the keep-alive timeout, the header size limits and the backlog of
connections not yet accepted, but no cap on open connections and no deadline for the
headers. (Its keep-alive timer does run from the connect and from each answer, bytes
arriving do not push it back, so it ends a client that trickles headers too, but only
after the keep-alive timeout, which must be long: a proxy reuses idle connections for up
to 60 s.) So every connection goes through :class:`_GuardedConnection`, a small asyncio
protocol in front of aiohttp's own, fed the very same transport: it answers 503 to a
connection over the cap, and closes one whose request line and headers are not complete
in time. A request is complete once it reaches the app, where a middleware tells the
guard (:meth:`ConnectionGuard.request_started`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from http import HTTPStatus

import structlog

from vizita.contract import metrics

log = structlog.get_logger(__name__)

ProtocolFactory = Callable[[], asyncio.Protocol]


class ConnectionGuard:
    """The open connections of one listening socket."""

    def __init__(
        self, *, max_connections: int, header_timeout: float, busy_body: Callable[[], bytes]
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._busy_body = busy_body  # the JSON of a 503 `too_many_connections`
        self._open: dict[asyncio.BaseTransport, _GuardedConnection] = {}
        self._full_reported = False

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def protocol_factory(self, handler_factory: ProtocolFactory) -> ProtocolFactory:
        """A protocol factory for `loop.create_server` wrapping aiohttp's (the Server)."""
        return lambda: _GuardedConnection(self, handler_factory)

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is not None and (connection := self._open.get(transport)):
            connection.request_started()

    def request_finished(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is not None and (connection := self._open.get(transport)):
            connection.request_finished()

    def admit(self, transport: asyncio.BaseTransport, connection: _GuardedConnection) -> bool:
        if len(self._open) >= self.max_connections:
            metrics.INGEST_CONNECTIONS_REFUSED.labels("too_many").inc()
            if not self._full_reported:  # once each time it fills up, not per connection
                log.warning("ingest.connections_full", max_connections=self.max_connections)
                self._full_reported = True
            return False
        self._open[transport] = connection
        metrics.INGEST_CONNECTIONS_OPEN.inc()
        return True

    def leave(self, transport: asyncio.BaseTransport) -> None:
        if self._open.pop(transport, None) is not None:
            metrics.INGEST_CONNECTIONS_OPEN.dec()
        if len(self._open) < self.max_connections:
            self._full_reported = False

    def busy_answer(self) -> bytes:
        body = self._busy_body()
        status = HTTPStatus.SERVICE_UNAVAILABLE
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Retry-After: 1\r\nConnection: close\r\n\r\n"
        )
        return head.encode("ascii") + body


class _GuardedConnection(asyncio.Protocol):
    """One connection: admitted or answered 503; its header deadline; everything else
    passed on to aiohttp's protocol."""

    def __init__(self, guard: ConnectionGuard, handler_factory: ProtocolFactory) -> None:
        self._guard = guard
        self._handler_factory = handler_factory
        self._handler: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._header_deadline: asyncio.TimerHandle | None = None
        self._in_request = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a TCP server's connection
        self._transport = transport
        if not self._guard.admit(transport, self):
            transport.write(self._guard.busy_answer())
            transport.close()
            return
        self._handler = self._handler_factory()
        self._handler.connection_made(transport)
        self._start_header_deadline()

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            return
        if not self._in_request and self._header_deadline is None:
            self._start_header_deadline()  # the first bytes of a keep-alive's next request
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received() if self._handler is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        if self._handler is None or self._transport is None:
            return
        self._guard.leave(self._transport)
        self._handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def request_started(self) -> None:
        self._in_request = True
        self._cancel_header_deadline()

    def request_finished(self) -> None:
        # Idle now: aiohttp's keep-alive timer watches; the next request's first bytes
        # start a new header deadline.
        self._in_request = False

    def _start_header_deadline(self) -> None:
        loop = asyncio.get_running_loop()
        self._header_deadline = loop.call_later(self._guard.header_timeout, self._too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        log.info("ingest.header_timeout", seconds=self._guard.header_timeout)
        metrics.INGEST_CONNECTIONS_REFUSED.labels("header_timeout").inc()
        if self._transport is not None:
            self._transport.close()


class ServerLog:
    """The `logger` of aiohttp's connection handler (`handler_args`). aiohttp's
    messages about a malformed request quote its bytes (a header line with a bearer
    token, say) and its exceptions carry them, so only aiohttp's message template and
    the kind of error are logged, never its arguments or the exception's text."""

    def exception(self, msg: str, *_args: object, exc_info: object = None, **_: object) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        status = getattr(error, "code", None)
        log.warning("ingest.http_error", message=msg,
                    error=type(error).__name__ if error is not None else None,
                    status=status if isinstance(status, int) else None)  # fmt: skip

    def error(self, msg: str, *_args: object, **_: object) -> None:
        log.error("ingest.aiohttp", message=msg)

    def warning(self, msg: str, *_args: object, **_: object) -> None:
        log.warning("ingest.aiohttp", message=msg)

    def info(self, msg: str, *_args: object, **_: object) -> None:
        log.info("ingest.aiohttp", message=msg)

    def debug(self, msg: str, *_args: object, **_: object) -> None:
        log.debug("ingest.aiohttp", message=msg)
