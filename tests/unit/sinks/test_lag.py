from __future__ import annotations

from datetime import UTC, datetime

from sinks.lag import Consumer, consumers, lag_rows
from vizita.contract.settings import Settings

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_a_row_per_partition_with_its_lag() -> None:
    rows = lag_rows(Consumer("g", "t"), {1: 50, 0: 10}, {0: 10, 1: 20}, AT)
    assert rows == [(AT, "g", "t", 0, 10, 10, 0), (AT, "g", "t", 1, 50, 20, 30)]


def test_a_partition_never_committed_lags_by_all_of_it() -> None:
    assert lag_rows(Consumer("g", "t"), {0: 7}, {}, AT) == [(AT, "g", "t", 0, 7, 0, 7)]


def test_the_pipelines_consumer_groups_and_topics() -> None:
    found = consumers(Settings(app_id="app", topic_prefix="p."))
    assert Consumer("app", "p.visits", "stream", "visits") in found
    assert Consumer("app", "p.visit-contributions", "stream", "visit-contributions") in found
    assert Consumer("app-sink", "p.visits-effective", "sink", "visits-effective") in found
    assert {c.group for c in found} == {"app", "app-sink"}
