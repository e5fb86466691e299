"""Errors of the sinks. Transient ones are retried; the rest are bugs or bad config."""

from vizita.contract.errors import VizitaError


class SinkError(VizitaError):
    """Base class of this package's errors."""


class StoreUnavailable(SinkError):
    """The store cannot be reached now (server down, network). Retry later; the
    events wait in Kafka meanwhile."""


class StoreQueryError(SinkError):
    """The store refused a statement. Retrying the same statement will not help."""


class StoreUrlError(SinkError):
    """The store URL is not one of chdb:///abs/path or clickhouse://…"""
