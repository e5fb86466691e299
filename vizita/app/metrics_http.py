"""The worker's `/metrics` (README "Metrics"): the client library's HTTP server, in a
thread of its own, so that a scrape is answered while the event loop is busy with a
batch (the ingest endpoint serves its metrics on its own aiohttp app instead)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from prometheus_client import CollectorRegistry, start_http_server

from vizita.app.errors import AppError
from vizita.contract import metrics
from vizita.contract.settings import Settings

log = structlog.get_logger(__name__)

JOIN_SECONDS = 5.0


class MetricsPortError(AppError):
    """The metrics port could not be listened on (in use, not allowed)."""


@contextmanager
def serving_metrics(
    settings: Settings, registry: CollectorRegistry = metrics.WORKER
) -> Iterator[int | None]:
    """`registry` at http://metrics_host:metrics_port/metrics while the block runs;
    yields the port (None: metrics_port is not set, nothing is served)."""
    if settings.metrics_port is None:
        yield None
        return
    where = f"{settings.metrics_host}:{settings.metrics_port}"
    try:
        server, thread = start_http_server(
            settings.metrics_port, settings.metrics_host, registry=registry
        )
    except OSError as exc:
        raise MetricsPortError(f"cannot serve metrics on {where}: {exc.strerror}") from exc
    port = int(server.server_port)
    log.info("metrics.serving", host=settings.metrics_host, port=port)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(JOIN_SECONDS)
