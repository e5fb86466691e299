"""The Kafka topics, their partitions, who reads them, and the headers on them.

A deployment may prefix every name (`Settings.topic`); tests use a unique prefix.
"""

from __future__ import annotations

from typing import Final, Protocol

from vizita.contract.municipalities import SCOPES

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

#: every topic of the pipeline; each has the settings' `partitions`
TOPICS: Final = (
    TOPIC_VISITS, TOPIC_VISITS_DLQ, TOPIC_VISITS_EFFECTIVE, TOPIC_VISIT_CONTRIBUTIONS,
    TOPIC_INDICATORS, TOPIC_ALERTS,
)  # fmt: skip
#: what the stream's consumer group reads (stage 1, stage 2)
STREAM_TOPICS: Final = (TOPIC_VISITS, TOPIC_VISIT_CONTRIBUTIONS)
#: what the sink writes to the store
SINK_TOPICS: Final = (TOPIC_VISITS_EFFECTIVE, TOPIC_VISITS_DLQ, TOPIC_INDICATORS, TOPIC_ALERTS)


def scope_partition(scope: str, partitions: int) -> int:
    """The `visit-contributions` partition of a scope (a municipality, or ALL): stage 2
    computes a scope where its entries are, so every message for it goes there."""
    return SCOPES.index(scope) % partitions


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


class _Partition(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...


def partition_label(tp: _Partition) -> str:
    """How a topic's partition is named in logs and stall reports: `topic/partition`."""
    return f"{tp.topic}/{tp.partition}"
