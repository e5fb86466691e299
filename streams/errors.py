"""Errors of the streams."""

from vizita.contract.errors import VizitaError


class StreamError(VizitaError):
    """Base class of this package's errors."""


class NoBootstrap(StreamError):
    """The stream was asked to start without a Kafka bootstrap address."""


class StreamStalled(StreamError):
    """A stage has not moved past events waiting on one of its partitions for the
    stall limit: something it waits on never answers."""


class TableUnavailable(StreamError):
    """A table's database on disk could not be read or written: the worker cannot go
    on without it (a full or failing disk, a database another process holds)."""
