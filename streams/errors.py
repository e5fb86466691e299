"""Errors of the streams."""

from vizita.contract.errors import VizitaError


class StreamError(VizitaError):
    """Base class of this package's errors."""


class NoBootstrap(StreamError):
    """The stream was asked to start without a Kafka bootstrap address."""
