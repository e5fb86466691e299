"""Consumer lag in the store: how far each consumer group is behind the end of the
topics it reads, so the pipeline-health dashboard and its alert rule can show it
(table `consumer_lag`, migration 0002).

`lag_rows` is pure; `record_consumer_lag` asks the broker once and inserts one row per
partition. Something must call it every so often (the worker, say every 30 s); a
row is ~60 bytes, so 4 partitions x 6 consumers every 30 s is ~40 MB a year, and
the table keeps 90 days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sinks.kafka_sink import SINK_TOPICS, sink_group
from sinks.schema import CONSUMER_LAG, CONSUMER_LAG_COLUMNS
from sinks.store import Store
from vizita.broker import committed_offsets, end_offsets
from vizita.contracts import TOPIC_VISIT_CONTRIBUTIONS, TOPIC_VISITS
from vizita.settings import Settings

LagRow = tuple[datetime, str, str, int, int, int, int]


@dataclass(frozen=True)
class Consumer:
    group: str
    topic: str


def consumers(settings: Settings) -> list[Consumer]:
    """Every consumer group of the pipeline and the topics it reads."""
    # The Faust app's group is the app id (stage 1 reads visits, stage 2 contributions).
    stream, sink = settings.app_id, sink_group(settings)
    return [
        Consumer(stream, settings.topic(TOPIC_VISITS)),
        Consumer(stream, settings.topic(TOPIC_VISIT_CONTRIBUTIONS)),
        *(Consumer(sink, settings.topic(topic)) for topic in SINK_TOPICS),
    ]


def lag_rows(
    consumer: Consumer,
    ends: Mapping[int, int],
    committed: Mapping[int, int],
    measured_at: datetime,
) -> list[LagRow]:
    """One `consumer_lag` row per partition. A partition the group never committed on
    lags by everything in it (the groups start from the earliest offset)."""
    rows = []
    for partition, end in sorted(ends.items()):
        done = committed.get(partition, 0)
        rows.append((measured_at, consumer.group, consumer.topic, partition, end, done,
                     max(end - done, 0)))  # fmt: skip
    return rows


def record_consumer_lag(settings: Settings, store: Store, now: datetime | None = None) -> int:
    """Measure every consumer's lag now and store it; answer the rows written."""
    if not settings.kafka_bootstrap:
        raise ValueError("measuring consumer lag needs settings.kafka_bootstrap")
    measured_at = now or datetime.now(UTC)
    rows: list[LagRow] = []
    for consumer in consumers(settings):
        ends = end_offsets(settings.kafka_bootstrap, consumer.topic)
        committed = committed_offsets(settings.kafka_bootstrap, consumer.group, consumer.topic)
        rows += lag_rows(consumer, ends, committed, measured_at)
    store.insert(CONSUMER_LAG, CONSUMER_LAG_COLUMNS, rows)
    return len(rows)
