"""Every Prometheus metric of Vizita, defined once: name, labels and help (README
"Metrics"). The parts that count import them from here; the dashboards and alert
rules name them from here too, so a rename cannot leave a panel reading nothing.

Two registries, one per kind of process, so each `/metrics` shows only what that
process can count: `WORKER` (`vizita worker`, served on `metrics_port`) and `INGEST`
(`vizita ingest serve`, served at `GET /metrics` on its own port). Each also carries
the client library's process, platform and garbage-collector collectors.

Counters count what this process did since it started: a worker that restarts starts
from zero (Prometheus's `rate` and `increase` take resets in their stride), and events
processed again after a crash or a rebalance count again, as they are processed again.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from vizita.contract.days import LOCAL_TZ
from vizita.contract.validation import Reason

# Each counter's `_created` twin would double the page for a start time that
# `process_start_time_seconds` already gives.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated

WORKER: Final = CollectorRegistry()
INGEST: Final = CollectorRegistry()
# The library's own collectors of the process are bound to its global registry, which
# we do not serve: each registry gets its own.
for _registry in (WORKER, INGEST):
    ProcessCollector(registry=_registry)
    PlatformCollector(registry=_registry)
    GCCollector(registry=_registry)

# Seconds: a stage-2 computation is milliseconds at the head of the stream and can be
# seconds on a backfill; a store insert is milliseconds, or as long as retries last.
_COMPUTE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_STORE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# An ingest answer waits for Kafka's acknowledgement (up to 30 s before a 503).
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# --- stage 1 -----------------------------------------------------------------------------------

EVENTS_IN: Final = Counter(
    "vizita_events_in", "Messages stage 1 took from `visits` (a re-keyed event counts "
    "again when it comes back with its visit_id as key).", registry=WORKER,
)  # fmt: skip
EVENTS_VALID: Final = Counter(
    "vizita_events_valid", "Events that passed validation, duplicates included "
    "(the replay summary's `valid`).", registry=WORKER,
)  # fmt: skip
EVENTS_DUPLICATE: Final = Counter(
    "vizita_events_duplicate", "Valid events whose event_id their visit had already seen.",
    registry=WORKER,
)  # fmt: skip
EVENTS_REKEYED: Final = Counter(
    "vizita_events_rekeyed", "Valid events keyed by something else than their visit_id, "
    "sent to `visits` again with the right key.", registry=WORKER,
)  # fmt: skip
EVENTS_DEAD_LETTERED: Final = Counter(
    "vizita_events_dead_lettered", "Events stage 1 sent to `visits-dlq`, by reason (SPEC §1; "
    "internal_error: handling a valid event failed twice).", ["reason"], registry=WORKER,
)  # fmt: skip
UNDECODABLE: Final = Counter(
    "vizita_messages_undecodable", "Messages of an internal topic that were no message of "
    "it, dead-lettered, by the part that read them (stage2, sink).", ["part"],
    registry=WORKER,
)  # fmt: skip

# --- stage 2 -----------------------------------------------------------------------------------

STAGE2_COMPUTE_SECONDS: Final = Histogram(
    "vizita_stage2_compute_seconds", "Time a tick took to compute a partition's changed "
    "indicator rows and alerts, and send them.", buckets=_COMPUTE_BUCKETS, registry=WORKER,
)  # fmt: skip
CLOCK_DAY: Final = Gauge(
    "vizita_clock_day_timestamp_seconds", "The clock day (SPEC §2) stage 2 last computed "
    "up to, as the Unix time of its midnight in Kosovo (0: nothing computed yet).",
    registry=WORKER,
)  # fmt: skip
ALERTS_ACTIVE: Final = Gauge(
    "vizita_alerts_active", "Alerts raised now, by indicator, of the stage-2 partitions "
    "this worker computes (sum over workers: every active alert).", ["indicator"],
    registry=WORKER,
)  # fmt: skip

# --- the sink ----------------------------------------------------------------------------------

SINK_BATCHES: Final = Counter(
    "vizita_sink_batches", "Sink batches that stored rows in a table.", ["table"],
    registry=WORKER,
)  # fmt: skip
SINK_ROWS: Final = Counter(
    "vizita_sink_rows", "Rows the sink stored, by table (rows set aside in "
    "store_rejects count there, not in their own table).", ["table"], registry=WORKER,
)  # fmt: skip
SINK_ROWS_REJECTED: Final = Counter(
    "vizita_sink_rows_rejected", "Rows the store refused for good, set aside in "
    "store_rejects, by the table they were for.", ["table"], registry=WORKER,
)  # fmt: skip
SINK_STORE_SECONDS: Final = Histogram(
    "vizita_sink_store_seconds", "Time to store one batch's rows of a table, retries and "
    "splits included.", ["table"], buckets=_STORE_BUCKETS, registry=WORKER,
)  # fmt: skip
STORE_ERRORS: Final = Counter(
    "vizita_store_errors", "Inserts the store refused, by table and kind (transient: "
    "retried; rows: the batch is split; fatal: the worker stops).", ["table", "kind"],
    registry=WORKER,
)  # fmt: skip
STORE_RETRIES: Final = Counter(
    "vizita_store_retries", "Transient store errors after which the insert waits (with "
    "backoff) and is tried again.", ["table"], registry=WORKER,
)  # fmt: skip
CONSUMER_LAG: Final = Gauge(
    "vizita_consumer_lag_messages", "Messages a consumer group has not committed yet, over "
    "all partitions of a topic, at the last measurement (every 30 s, by each worker that "
    "runs a sink). consumer: stream or sink; topic: the contract's name.",
    ["consumer", "topic"], registry=WORKER,
)  # fmt: skip

# --- the ingest endpoint -------------------------------------------------------------------

INGEST_REQUESTS: Final = Counter(
    "vizita_ingest_requests", "Requests to /v1/visits, by the status answered and the "
    "submitter (empty when none was identified).", ["status", "submitter"], registry=INGEST,
)  # fmt: skip
INGEST_REQUEST_SECONDS: Final = Histogram(
    "vizita_ingest_request_seconds", "Time from a /v1/visits request reaching the endpoint "
    "to its answer (Kafka's acknowledgement included), by status.", ["status"],
    buckets=_REQUEST_BUCKETS, registry=INGEST,
)  # fmt: skip
INGEST_ITEMS: Final = Counter(
    "vizita_ingest_items", "Items recorded in Kafka, by submitter and outcome (accepted: "
    "to `visits`; rejected: to `visits-dlq`).", ["submitter", "outcome"], registry=INGEST,
)  # fmt: skip
INGEST_CONNECTIONS_OPEN: Final = Gauge(
    "vizita_ingest_connections_open", "Connections open now.", registry=INGEST
)
INGEST_CONNECTIONS_REFUSED: Final = Counter(
    "vizita_ingest_connections_refused", "Connections closed by the endpoint before a "
    "request: too_many (answered 503) or header_timeout.", ["why"], registry=INGEST,
)  # fmt: skip

STAGE1_REASONS: Final = tuple(
    reason.value for reason in Reason
    if reason not in {Reason.UNDECODABLE_MESSAGE, Reason.STORE_REFUSED}
)  # fmt: skip
# Label values known in advance are shown from the start, at 0: a series that appears
# only with its first increment hides that first increment from `rate` and `increase`.
for _reason in STAGE1_REASONS:
    EVENTS_DEAD_LETTERED.labels(_reason)
for _part in ("stage2", "sink"):
    UNDECODABLE.labels(_part)
for _why in ("too_many", "header_timeout"):
    INGEST_CONNECTIONS_REFUSED.labels(_why)


def day_timestamp(day: date) -> float:
    """The Unix time a programme day starts (midnight in Kosovo)."""
    return datetime.combine(day, time(), LOCAL_TZ).timestamp()
