"""Pipeline metrics, from Prometheus (README "Metrics"): what stage 1 takes in and
dead-letters, stage 2's computations, what the sink stores and how far each consumer
is behind, the ingest endpoint's requests, and the processes themselves. The
ClickHouse pipeline-health board shows what reached the store; this one shows the
pipeline while it works, between two rows stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards import promql
from dashboards.config import METRICS_UID, BuildConfig
from dashboards.panels import new_dashboard, stacked_bars
from vizita.contract import metrics

PROMETHEUS_TYPE = "prometheus"
# Panels alert rules link to.
ROWS_STORED_PANEL = "Rows stored per table"
DEAD_LETTERS_PANEL = "Dead letters stored"

Query = tuple[str, str]  # (PromQL, legend)


class PromPanels:
    """Makes the board's panels: ids count up from 1, every target on Prometheus."""

    def __init__(self, datasource_uid: str) -> None:
        self.ref = dashboard_model.DataSourceRef(type_val=PROMETHEUS_TYPE, uid=datasource_uid)
        self._last_id = 0

    def _targets(self, queries: Sequence[Query], instant: bool) -> list[cogbuilder.Builder[Any]]:
        made: list[cogbuilder.Builder[Any]] = []
        for ref_id, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
            query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id)
            made.append((query.instant() if instant else query.range()).datasource(self.ref))
        return made

    def _common(self, panel: Any, title: str, queries: Sequence[Query], instant: bool) -> Any:
        self._last_id += 1
        return (panel.id(self._last_id).title(title).datasource(self.ref)
                .targets(self._targets(queries, instant)))  # fmt: skip

    def timeseries(self, title: str, *queries: Query) -> timeseries.Panel:
        panel: timeseries.Panel = self._common(timeseries.Panel(), title, queries, instant=False)
        return panel.min(0)

    def stat(self, title: str, *queries: Query) -> stat.Panel:
        panel: stat.Panel = self._common(stat.Panel(), title, queries, instant=True)
        return panel.graph_mode(common_model.BigValueGraphMode.NONE)

    def row(self, title: str) -> dashboard_builder.Row:
        self._last_id += 1
        return dashboard_builder.Row(title).id(self._last_id)


def build(config: BuildConfig) -> dashboard_builder.Dashboard:
    panels = PromPanels(config.prometheus_uid)
    board = new_dashboard(
        "Vizita: pipeline metrics", METRICS_UID, since="now-6h", refresh="30s",
        description="The worker and the ingest endpoint as Prometheus scrapes them.",
    )  # fmt: skip
    sections = [("Stage 1", _stage_one), ("Stage 2", _stage_two), ("The sink", _sink),
                ("The ingest endpoint", _ingest), ("Processes", _processes)]  # fmt: skip
    for title, make in sections:
        board.with_row(panels.row(title))
        for panel, width in make(panels):
            board.with_panel(panel.span(width).height(8))
    return board


Made = list[tuple[Any, int]]  # (panel, width of 24)


def _stage_one(panels: PromPanels) -> Made:
    events = panels.timeseries(
        "Events per second",
        (promql.rate_by(metrics.EVENTS_IN), "in"),
        (promql.rate_by(metrics.EVENTS_VALID), "valid"),
        (promql.rate_by(metrics.EVENTS_DUPLICATE), "duplicate"),
        (promql.rate_by(metrics.EVENTS_REKEYED), "re-keyed"),
    ).description("What stage 1 took from `visits`: valid counts duplicates too.")
    dead = panels.timeseries(
        "Dead-lettered by reason",
        (promql.rate_by(metrics.EVENTS_DEAD_LETTERED, "reason"), "{{reason}}"),
        (promql.rate_by(metrics.UNDECODABLE, "part"), "undecodable in {{part}}"),
    ).description("Events stage 1 sent to visits-dlq per second, by SPEC §1 reason.")
    return [(events.unit("cps"), 14), (stacked_bars(dead).unit("cps"), 10)]


def _stage_two(panels: PromPanels) -> Made:
    compute = panels.timeseries(
        "Stage 2 compute time",
        *[(promql.quantile(q, metrics.STAGE2_COMPUTE_SECONDS), f"p{round(q * 100)}")
          for q in (0.5, 0.95, 0.99)],
    ).description("A tick's computation of a partition's changed rows and alerts.")  # fmt: skip
    clock = panels.stat(
        "Clock day", (f"max({promql.name(metrics.CLOCK_DAY)}) * 1000", "clock day")
    ).description("The day stage 2 computes up to (SPEC §2), at its midnight in Kosovo.")
    alerts = f"sum({promql.name(metrics.ALERTS_ACTIVE)})"
    active = panels.stat("Alerts active", (alerts, "active"))
    by_indicator = panels.timeseries(
        "Alerts active by indicator",
        (f"sum by (indicator) ({promql.name(metrics.ALERTS_ACTIVE)})", "{{indicator}}"),
    )
    return [(compute.unit("s"), 8), (clock.unit("dateTimeAsIso"), 4), (active, 4),
            (by_indicator.unit("short"), 8)]  # fmt: skip


def _sink(panels: PromPanels) -> Made:
    rows = panels.timeseries(
        ROWS_STORED_PANEL, (promql.rate_by(metrics.SINK_ROWS, "table"), "{{table}}")
    ).description("Rows the sink stored per second (store_rejects: rows the store refused).")
    batches = panels.timeseries(
        "Batches per table", (promql.rate_by(metrics.SINK_BATCHES, "table"), "{{table}}")
    )
    dead = panels.timeseries(
        DEAD_LETTERS_PANEL,
        (promql.dead_letters_recent(), f"in the last {promql.RISING_WINDOW}"),
        (promql.dead_letters_limit(), "the alert fires above"),
    ).description(
        f"Dead letters stored from every source in the last {promql.RISING_WINDOW}; the alert "
        f"fires above {promql.RISING_FACTOR} times a usual {promql.RISING_WINDOW} of the day "
        f"before, plus {promql.RISING_MARGIN}."
    )
    errors = panels.timeseries(
        "Store errors and retries",
        (promql.rate_by(metrics.STORE_ERRORS, "table, kind"), "{{kind}} on {{table}}"),
        (promql.rate_by(metrics.STORE_RETRIES, "table"), "retried on {{table}}"),
        (promql.rate_by(metrics.SINK_ROWS_REJECTED, "table"), "set aside from {{table}}"),
    )
    store_time = panels.timeseries(
        "Store time p95", (promql.quantile(0.95, metrics.SINK_STORE_SECONDS, "table"), "{{table}}")
    ).description("One batch's rows of a table, retries included.")
    lag = panels.timeseries("Consumer lag", (promql.lag(), "{{consumer}} · {{topic}}"))
    return [(rows.unit("cps"), 12), (batches.unit("cps"), 12), (dead.unit("short"), 12),
            (errors.unit("cps"), 12), (store_time.unit("s"), 12),
            (lag.unit("short").description("Measured every 30 s by each sink."), 12)]  # fmt: skip


def _ingest(panels: PromPanels) -> Made:
    by_status = panels.timeseries(
        "Ingest requests by status",
        (promql.rate_by(metrics.INGEST_REQUESTS, "status"), "{{status}}"),
    )
    by_submitter = panels.timeseries(
        "Ingest requests by submitter",
        (promql.rate_by(metrics.INGEST_REQUESTS, "submitter"), "{{submitter}}"),
    ).description("Empty submitter: no known token.")
    latency = panels.timeseries(
        "Ingest latency",
        *[(promql.quantile(q, metrics.INGEST_REQUEST_SECONDS), f"p{round(q * 100)}")
          for q in (0.5, 0.95, 0.99)],
    ).description("From the request to its answer, Kafka's acknowledgement included.")  # fmt: skip
    items = panels.timeseries(
        "Ingest items", (promql.rate_by(metrics.INGEST_ITEMS, "outcome"), "{{outcome}}")
    )
    return [(by_status.unit("reqps"), 6), (by_submitter.unit("reqps"), 6),
            (latency.unit("s"), 6), (items.unit("cps"), 6)]  # fmt: skip


def _processes(panels: PromPanels) -> Made:
    up = panels.stat("Scraped", (f"up{{{promql.JOBS}}}", "{{job}} {{instance}}"))
    memory = panels.timeseries(
        "Resident memory",
        (f"process_resident_memory_bytes{{{promql.JOBS}}}", "{{job}} {{instance}}"),
    )
    cpu = panels.timeseries(
        "CPU", (f"rate(process_cpu_seconds_total{{{promql.JOBS}}}[{promql.RATE}])",
                "{{job}} {{instance}}"),
    )  # fmt: skip
    return [(up.description("1: Prometheus reached the process at its last scrape."), 6),
            (memory.unit("bytes"), 9), (cpu.unit("percentunit"), 9)]  # fmt: skip
