"""The real services (tests/services.py): one Apache Kafka broker for the session, a
broker of a test's own where it needs one, and the embedded ClickHouse engine; and the
stream whose tables one uninterrupted worker makes (tests/workers.py)."""

from services import chdb_url, kafka, make_settings, own_kafka, settings, store
from workers import payloads, reference

__all__ = [
    "chdb_url", "kafka", "make_settings", "own_kafka", "payloads", "reference", "settings",
    "store",
]  # fmt: skip
