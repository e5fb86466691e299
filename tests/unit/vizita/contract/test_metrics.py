"""The metrics: each defined once, named as Prometheus would have them, in the registry
of the process that counts them, and the counting rules that are ours."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sinks.lag import Consumer, lag_rows, show_lag
from streams.runtime.stage1 import Batch, count
from vizita.contract import metrics
from vizita.contract.validation import Reason, Rejection

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _families(registry: CollectorRegistry) -> dict[str, Any]:
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _ours(registry: CollectorRegistry) -> dict[str, Any]:
    return {name: f for name, f in _families(registry).items() if name.startswith("vizita_")}


def test_each_process_shows_its_own_metrics_only() -> None:
    worker, ingest = _ours(metrics.WORKER), _ours(metrics.INGEST)
    assert worker
    assert ingest
    assert not set(worker) & set(ingest)
    assert all(name.startswith("vizita_ingest_") for name in ingest)
    assert not any(name.startswith("vizita_ingest_") for name in worker)
    for registry in (metrics.WORKER, metrics.INGEST):  # and what the process costs
        assert {"process_resident_memory_bytes", "python_info"} <= set(_families(registry))


def test_every_metric_says_what_it_counts_and_counts_in_base_units() -> None:
    for family in [*_ours(metrics.WORKER).values(), *_ours(metrics.INGEST).values()]:
        assert len(family.documentation) > 20, family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
    # No `_created` twins: the process start time says when counting began.
    assert not any(name.endswith("_created") for name in _families(metrics.WORKER))


def test_known_label_values_are_shown_from_the_start() -> None:
    text = generate_latest(metrics.WORKER).decode()
    for reason in metrics.STAGE1_REASONS:
        assert f'vizita_events_dead_lettered_total{{reason="{reason}"}}' in text
    assert Reason.INTERNAL_ERROR.value in metrics.STAGE1_REASONS
    # Reasons stage 1 never gives are not shown as if they could rise.
    assert Reason.STORE_REFUSED.value not in metrics.STAGE1_REASONS


@pytest.mark.parametrize(
    ("day", "utc"),
    [
        (date(2026, 1, 15), datetime(2026, 1, 14, 23, tzinfo=UTC)),  # CET: UTC+1
        (date(2026, 7, 15), datetime(2026, 7, 14, 22, tzinfo=UTC)),  # CEST: UTC+2
        (date(2026, 3, 29), datetime(2026, 3, 28, 23, tzinfo=UTC)),  # the clocks go forward
    ],
)
def test_a_day_is_shown_as_its_midnight_in_kosovo(day: date, utc: datetime) -> None:
    assert metrics.day_timestamp(day) == utc.timestamp()


def _value(name: str, **labels: str) -> float:
    return metrics.WORKER.get_sample_value(name, labels) or 0.0


def test_stage_one_counts_a_batch_by_its_tallies() -> None:
    batch = Batch()
    batch.outcomes = Counter(valid=5, duplicate=2, rekeyed=1, dead_lettered=3)
    not_json = Rejection(Reason.NOT_JSON, "", "")
    batch.dead = [
        (None, not_json),
        (None, not_json),
        (None, Rejection(Reason.INTERNAL_ERROR, "", "")),
    ]
    keys = [("vizita_events_in_total", {}), ("vizita_events_valid_total", {}),
            ("vizita_events_duplicate_total", {}), ("vizita_events_rekeyed_total", {}),
            ("vizita_events_dead_lettered_total", {"reason": "not_json"}),
            ("vizita_events_dead_lettered_total", {"reason": "internal_error"}),
            ("vizita_events_dead_lettered_total", {"reason": "wrong_type"})]  # fmt: skip
    before = [_value(name, **labels) for name, labels in keys]
    count(batch, 11)
    after = [_value(name, **labels) for name, labels in keys]
    # valid counts duplicates too (the replay summary's `valid`); in = every message taken.
    assert [a - b for a, b in zip(after, before, strict=True)] == [11, 7, 2, 1, 2, 1, 0]


def test_the_lag_gauge_sums_a_topics_partitions_per_consumer() -> None:
    stream = Consumer("app", "p.visits", "stream", "visits")
    sink = Consumer("app-sink", "p.alerts", "sink", "alerts")
    show_lag([(stream, lag_rows(stream, {0: 10, 1: 50}, {0: 10, 1: 20}, AT)),
              (sink, lag_rows(sink, {0: 7}, {}, AT))])  # fmt: skip
    assert _value("vizita_consumer_lag_messages", consumer="stream", topic="visits") == 30
    assert _value("vizita_consumer_lag_messages", consumer="sink", topic="alerts") == 7
    show_lag([(stream, lag_rows(stream, {0: 10, 1: 50}, {0: 10, 1: 50}, AT))])
    assert _value("vizita_consumer_lag_messages", consumer="stream", topic="visits") == 0
