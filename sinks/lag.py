"""Consumer lag in the store: how far each consumer group is behind the end of the
topics it reads, so the pipeline-health dashboard and its alert rule can show it
(table `consumer_lag`, migration 0002).

`lag_rows` is pure; `record_consumer_lag` asks the broker once, sets the lag gauge of
the metrics (per consumer and topic) and inserts one row per partition. Something must
call it every so often (the worker, say every 30 s); a row is ~60 bytes, so 4
partitions x 6 consumers every 30 s is ~40 MB a year, and the table keeps 90 days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sinks.schema import CONSUMER_LAG, CONSUMER_LAG_COLUMNS
from sinks.store import Store
from vizita.contract import metrics
from vizita.contract.settings import Settings
from vizita.contract.topics import SINK_TOPICS, STREAM_TOPICS, sink_group, stream_group
from vizita.kafka.admin import bootstrap_of, offset_reader

LagRow = tuple[datetime, str, str, int, int, int, int]


@dataclass(frozen=True)
class Consumer:
    group: str
    topic: str
    # For the metrics, which name neither the app id nor the topic prefix (one
    # Prometheus scrapes one deployment): "stream" or "sink", and the contract's topic.
    role: str = ""
    name: str = ""


def consumers(settings: Settings) -> list[Consumer]:
    """Every consumer group of the pipeline and the topics it reads."""
    stream, sink = stream_group(settings.app_id), sink_group(settings.app_id)
    return [
        *(Consumer(stream, settings.topic(t), "stream", t) for t in STREAM_TOPICS),
        *(Consumer(sink, settings.topic(t), "sink", t) for t in SINK_TOPICS),
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


Measured = list[tuple[Consumer, list[LagRow]]]


def measure_consumer_lag(settings: Settings, now: datetime | None = None) -> Measured:
    """Every consumer's lag now, a row per partition."""
    bootstrap = bootstrap_of(settings)
    measured_at = now or datetime.now(UTC)
    measured: Measured = []
    with offset_reader(bootstrap) as offsets:
        for consumer in consumers(settings):
            ends = offsets.end_offsets(consumer.topic)
            committed = offsets.committed_offsets(consumer.group, consumer.topic)
            measured.append((consumer, lag_rows(consumer, ends, committed, measured_at)))
    return measured


def show_lag(measured: Measured) -> None:
    """The lag gauge: per consumer and topic, over all its partitions."""
    for consumer, rows in measured:
        metrics.CONSUMER_LAG.labels(consumer.role, consumer.name).set(sum(r[6] for r in rows))


def record_consumer_lag(settings: Settings, store: Store, now: datetime | None = None) -> int:
    """Measure every consumer's lag now, show it in the metrics (first: a store that
    refuses the rows must not hide the lag) and store it; answer the rows written."""
    measured = measure_consumer_lag(settings, now)
    show_lag(measured)
    rows = [row for _, consumer_rows in measured for row in consumer_rows]
    store.insert(CONSUMER_LAG, CONSUMER_LAG_COLUMNS, rows)
    return len(rows)
