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

from sinks.schema import CONSUMER_LAG, CONSUMER_LAG_COLUMNS
from sinks.store import Store
from vizita.contract.settings import Settings
from vizita.contract.topics import SINK_TOPICS, STREAM_TOPICS, sink_group, stream_group
from vizita.kafka.admin import bootstrap_of, committed_offsets, end_offsets

LagRow = tuple[datetime, str, str, int, int, int, int]


@dataclass(frozen=True)
class Consumer:
    group: str
    topic: str


def consumers(settings: Settings) -> list[Consumer]:
    """Every consumer group of the pipeline and the topics it reads."""
    stream, sink = stream_group(settings.app_id), sink_group(settings.app_id)
    return [
        *(Consumer(stream, settings.topic(topic)) for topic in STREAM_TOPICS),
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
    bootstrap = bootstrap_of(settings)
    measured_at = now or datetime.now(UTC)
    rows: list[LagRow] = []
    for consumer in consumers(settings):
        ends = end_offsets(bootstrap, consumer.topic)
        committed = committed_offsets(bootstrap, consumer.group, consumer.topic)
        rows += lag_rows(consumer, ends, committed, measured_at)
    store.insert(CONSUMER_LAG, CONSUMER_LAG_COLUMNS, rows)
    return len(rows)
