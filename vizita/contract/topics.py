"""The Kafka topics, their partitions, who reads them, and the headers on them.

A deployment may prefix every name (`Settings.topic`); tests use a unique prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# SPEC §1, §4: the visits in, their dead letters, and the pipeline's results.
TOPIC_VISITS: Final = "visits"
TOPIC_VISITS_DLQ: Final = "visits-dlq"
TOPIC_INDICATORS: Final = "indicators"
TOPIC_ALERTS: Final = "alerts"
# Internal: each visit's finished `visits` row (stage 1 → sink).
TOPIC_VISITS_EFFECTIVE: Final = "visits-effective"
# Internal: each visit's contribution to the indicators, and the clock's ticks (stage 1
# → stage 2).
TOPIC_VISIT_CONTRIBUTIONS: Final = "visit-contributions"

#: topic -> its partitions; None: the settings' `partitions`. Stage 2 reads one
#: partition: the day range and `ALL` need every visit in one place (README).
TOPIC_PARTITIONS: Final[Mapping[str, int | None]] = {
    TOPIC_VISITS: None,
    TOPIC_VISITS_DLQ: None,
    TOPIC_VISITS_EFFECTIVE: None,
    TOPIC_VISIT_CONTRIBUTIONS: 1,
    TOPIC_INDICATORS: None,
    TOPIC_ALERTS: None,
}
#: what the stream's consumer group reads (stage 1, stage 2)
STREAM_TOPICS: Final = (TOPIC_VISITS, TOPIC_VISIT_CONTRIBUTIONS)
#: what the sink writes to the store
SINK_TOPICS: Final = (TOPIC_VISITS_EFFECTIVE, TOPIC_VISITS_DLQ, TOPIC_INDICATORS, TOPIC_ALERTS)


def stream_group(app_id: str) -> str:
    """The consumer group of the Faust app (Faust names it by the app id)."""
    return app_id


def sink_group(app_id: str) -> str:
    return f"{app_id}-sink"


# Headers on a dead letter; its value stays the original bytes.
DLQ_HEADER_REASON: Final = "vizita-reason"
DLQ_HEADER_FIELD: Final = "vizita-field"
DLQ_HEADER_DETAIL: Final = "vizita-detail"
DLQ_HEADER_SOURCE: Final = "vizita-source"
# Who sent a payload through the ingest endpoint (on `visits` and on its dead letters).
SUBMITTER_HEADER: Final = "vizita-submitter"
