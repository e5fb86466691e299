"""The one exception root, and the contract's own errors.

Every package has one sub-root of :class:`VizitaError` (``ProducerError``,
``StreamError``, ``SinkError``, ``DashboardsError``, ``KafkaAdminError``, ``AppError``).
An expected failure is one of them, with a message a person can act on; the command
line prints that message as one line and exits non-zero. Anything else is a bug.
"""


class VizitaError(Exception):
    """The root of every error Vizita raises on purpose."""


class ConfigError(VizitaError):
    """A setting or a config file is wrong; the message says which and why."""
