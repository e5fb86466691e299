"""Errors of the application: what the command line and its runs refuse."""

from vizita.contract.errors import VizitaError


class AppError(VizitaError):
    """Base class of this package's errors."""


class BrokerError(AppError):
    """The local Kafka broker could not be set up, started or stopped."""


class InputFileError(AppError):
    """A file given on the command line cannot be read."""
