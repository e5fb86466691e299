"""Errors of the producers."""


class ProducerError(Exception):
    """Base class of this package's errors."""


class PublishError(ProducerError):
    """Kafka did not acknowledge a payload after the producer's own retries."""
