"""Errors of the Kafka admin helpers."""

from vizita.contract.errors import VizitaError


class KafkaAdminError(VizitaError):
    """Base class of this package's errors."""


class KafkaUnreachable(KafkaAdminError):
    """No broker answered at the bootstrap address."""
