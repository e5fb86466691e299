"""Errors of the shared package. Every package has its own base class like this one."""


class VizitaError(Exception):
    """Base class of this package's errors."""


class BrokerError(VizitaError):
    """The local Kafka broker could not be set up, started or stopped."""


class ConfigError(VizitaError):
    """A setting or a config file is wrong; the message says which and why."""
