"""`vizita worker` with its metrics on: a real worker process on the real broker,
scraped over HTTP at /metrics, counting exactly what it processed.

What it should count is worked out here as `vizita replay` sums it up (read, valid,
duplicates, dead-lettered), from the file and the validator alone, and the rows the
sink should have stored are read back from the topics it stores from."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from workers import WORKER_TIMEOUT, dump, publish_all, scenario_settings, start_worker

from producers.simulator import SimulationConfig, simulate
from vizita.app.broker import LocalBroker
from vizita.contract.days import local_day
from vizita.contract.events import UpsertEvent
from vizita.contract.indicators import INDICATORS
from vizita.contract.messages import IndicatorValues, VisitRows, decode
from vizita.contract.metrics import day_timestamp
from vizita.contract.settings import Settings
from vizita.contract.topics import (
    SINK_TOPICS,
    TOPIC_ALERTS,
    TOPIC_INDICATORS,
    TOPIC_VISIT_CONTRIBUTIONS,
    TOPIC_VISITS,
    TOPIC_VISITS_DLQ,
    TOPIC_VISITS_EFFECTIVE,
    sink_group,
)
from vizita.contract.validation import Rejection, ValidEvent, validate_payload
from vizita.kafka.admin import committed_offsets, end_offsets, last_value

STREAM = SimulationConfig(
    seed=1212, start=date(2026, 2, 2), days=12, visits_per_day=40, late_share=0.3,
    duplicate_share=0.08, correction_share=0.12, void_share=0.04, invalid_share=0.05,
)  # fmt: skip
# How often the worker measures consumer lag (vizita.app.runner.LAG_EVERY_SECONDS), and
# a start-up's worth more.
LAG_WAIT_SECONDS = 75

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --- the worker, from outside -------------------------------------------------------------------


def metrics_port(settings: Settings, process: subprocess.Popen[bytes]) -> int:
    """The free port the worker took (`--metrics-port 0`), from its `metrics.serving` line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the worker exited"
        for log in settings.data_dir.glob("worker-*.log"):
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if '"metrics.serving"' in line:
                    return int(json.loads(line)["port"])
        time.sleep(0.2)
    raise AssertionError("the worker never said where it serves its metrics")


def scrape(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        content_type = answer.headers["Content-Type"]
        text = answer.read().decode()
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return content_type, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(key)[label]: v for (found, key), v in samples.items() if found == name}


def _until(what: str, done: Callable[[], bool], seconds: float = WORKER_TIMEOUT) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def wait_until_stored(settings: Settings) -> None:
    """As `Pipeline.wait_until_stored`, from outside the worker: stage 1 has committed all
    of `visits`; then every stage-2 partition has settled a tick past everything stage 1
    sent (its progress table's changelog); then the sink has committed everything that
    led to."""
    bootstrap = settings.kafka_bootstrap or ""

    def caught_up(group: str, topic: str, ends: dict[int, int]) -> Callable[[], bool]:
        def done() -> bool:
            committed = committed_offsets(bootstrap, group, settings.topic(topic))
            return all(committed.get(p, 0) >= end for p, end in ends.items())

        return done

    visits = end_offsets(bootstrap, settings.topic(TOPIC_VISITS))
    _until("stage 1", caught_up(settings.app_id, TOPIC_VISITS, visits))
    contributions = end_offsets(bootstrap, settings.topic(TOPIC_VISIT_CONTRIBUTIONS))
    progress = f"{settings.app_id}-stage2-progress-changelog"

    def settled() -> bool:
        return all(int(last_value(bootstrap, progress, p) or 0) >= end
                   for p, end in contributions.items())  # fmt: skip

    _until("stage 2", settled)
    for topic in SINK_TOPICS:
        ends = end_offsets(bootstrap, settings.topic(topic))
        _until(f"the sink on {topic}", caught_up(sink_group(settings.app_id), topic, ends))


def messages(settings: Settings, name: str) -> list[bytes]:
    """Every message value of a topic, from its beginning to its end now."""
    topic = settings.topic(name)
    ends = end_offsets(settings.kafka_bootstrap or "", topic)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in ends]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    values: list[bytes] = []
    try:
        while any(consumer.position(tp) < ends[tp.partition] for tp in partitions):
            for fetched in consumer.poll(timeout_ms=1000).values():
                values.extend(record.value or b"" for record in fetched)
    finally:
        consumer.close()
    return values


# --- what the replay summary would say -----------------------------------------------------


def summary_of(lines: list[bytes]) -> dict[str, Any]:
    """read / valid / duplicates / dead-lettered (by reason), as `vizita replay` counts."""
    results = [validate_payload(line) for line in lines]
    valid = [r.event for r in results if isinstance(r, ValidEvent)]
    reasons = Counter(r.reason.value for r in results if isinstance(r, Rejection))
    distinct = {(event.visit_id, event.event_id) for event in valid}
    return {"read": len(lines), "valid": len(valid), "duplicates": len(valid) - len(distinct),
            "dead_lettered": reasons.total(), "reasons": dict(reasons)}  # fmt: skip


def clock_day_of(lines: list[bytes]) -> float:
    events = [r.event for r in map(validate_payload, lines) if isinstance(r, ValidEvent)]
    return day_timestamp(
        max(local_day(e.occurred_at) for e in events if isinstance(e, UpsertEvent))
    )


def scraped_summary(samples: Samples) -> dict[str, Any]:
    reasons = by_label(samples, "vizita_events_dead_lettered_total", "reason")
    return {
        "read": value(samples, "vizita_events_in_total"),
        "valid": value(samples, "vizita_events_valid_total"),
        "duplicates": value(samples, "vizita_events_duplicate_total"),
        "dead_lettered": sum(reasons.values()),
        "reasons": {reason: n for reason, n in reasons.items() if n},
    }


# --- the test ------------------------------------------------------------------------------------


def test_a_workers_metrics_count_what_it_processed(kafka: LocalBroker, tmp_path: Path) -> None:
    lines = simulate(STREAM)
    expected = summary_of(lines)
    assert expected["duplicates"] > 0
    assert expected["dead_lettered"] > 0
    settings = scenario_settings(kafka, f"metrics{tmp_path.name[-6:]}", tmp_path)
    publish_all(settings, lines)
    worker = start_worker(settings, tmp_path / "store", "--metrics-port", "0")
    try:
        port = metrics_port(settings, worker)
        wait_until_stored(settings)
        content_type, samples = scrape(port)
        lag: dict[str, float] = {}

        def no_lag_left() -> bool:
            # The gauge is measured every 30 s: wait for a measurement after the work.
            nonlocal lag
            lag = {f"{dict(k)['consumer']}/{dict(k)['topic']}": v for (name, k), v in
                   scrape(port)[1].items() if name == "vizita_consumer_lag_messages"}  # fmt: skip
            return (
                bool(lag)
                and all(lag[f"sink/{topic}"] == 0 for topic in SINK_TOPICS)
                and (lag["stream/visits"] == 0)
            )

        _until("the lag gauge to read no lag", no_lag_left, LAG_WAIT_SECONDS)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    tables = dump(tmp_path / "store", settings.database)

    assert content_type.startswith("text/plain; version=0.0.4")
    assert scraped_summary(samples) == expected
    assert value(samples, "vizita_events_rekeyed_total") == 0

    # What the sink stored, per table: every row of the topics it read, once.
    effective = [decode(m, VisitRows) for m in messages(settings, TOPIC_VISITS_EFFECTIVE)]
    indicators = [decode(m, IndicatorValues) for m in messages(settings, TOPIC_INDICATORS)]
    rows = by_label(samples, "vizita_sink_rows_total", "table")
    assert rows["visits"] == sum(len(m.rows) for m in effective) >= len(tables["visits"]) > 100
    assert rows["indicator_values"] == sum(len(m.rows) for m in indicators) > 0
    assert rows["alerts"] == len(messages(settings, TOPIC_ALERTS)) > 0
    assert rows["dead_letters"] == len(messages(settings, TOPIC_VISITS_DLQ))
    assert rows["dead_letters"] == expected["dead_lettered"] >= len(tables["dead_letters"])
    assert rows["store_rejects"] == 0
    batches = by_label(samples, "vizita_sink_batches_total", "table")
    assert 1 <= batches["visits"] <= len(effective)
    assert not any(v for (name, _), v in samples.items() if name == "vizita_store_errors_total")

    # Stage 2: the clock day of the event clock, and every alert the store holds as active.
    assert value(samples, "vizita_clock_day_timestamp_seconds") == clock_day_of(lines)
    active = by_label(samples, "vizita_alerts_active", "indicator")
    assert sum(active.values()) == len(tables["active_alerts"]) > 0
    assert set(active) == set(INDICATORS)  # every indicator shown, at 0 when none is raised
    assert {name: n for name, n in active.items() if n} == Counter(
        alert["indicator"] for alert in tables["active_alerts"]
    )
    assert value(samples, "vizita_stage2_compute_seconds_count") > 0
    assert value(samples, "process_resident_memory_bytes") > 0
    assert set(lag) == {f"stream/{t}" for t in (TOPIC_VISITS, TOPIC_VISIT_CONTRIBUTIONS)} | {
        f"sink/{t}" for t in SINK_TOPICS
    }
