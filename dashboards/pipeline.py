"""Pipeline health: visits coming in, dead letters by reason, consumer lag, and the
time since each municipality was last heard from."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import table, timeseries

from dashboards import sql
from dashboards.config import PIPELINE_UID, BuildConfig
from dashboards.panels import BAD, GOOD, WARN, Panels, new_dashboard, prop, stacked_bars, steps_json

HOUR = 3600.0
# Panels alert rules link to.
VISITS_IN_PANEL = "Visits in"
LAG_PANEL = "Consumer lag"


def build(config: BuildConfig) -> dashboard_builder.Dashboard:
    panels = Panels(config.datasource_uid)
    board = new_dashboard(
        "Vizita: pipeline health", PIPELINE_UID, since="now-24h", refresh="30s",
        description="Is data flowing: visits in, dead letters, consumer lag, silence.",
    )  # fmt: skip
    board.with_row(panels.row("Events in"))
    board.with_panel(_visits_in(panels, config).span(24).height(8))
    board.with_row(panels.row("Dead letters"))
    board.with_panel(_dead_letters(panels, config).span(16).height(8))
    board.with_panel(_dead_letter_reasons(panels, config).span(8).height(8))
    board.with_row(panels.row("Consumers"))
    board.with_panel(_lag(panels, config).span(24).height(8))
    board.with_row(panels.row("Municipalities"))
    board.with_panel(_silence(panels, config).span(24).height(14))
    return board


def _visits_in(panels: Panels, config: BuildConfig) -> timeseries.Panel:
    stored = sql.visits_in(config.database, "stored_at", "visits_stored")
    submitted = sql.visits_in(config.database, "submitted_at", "visits_submitted")
    return (
        panels.timeseries(VISITS_IN_PANEL, stored, submitted)
        .description("Current visit rows by when they reached the store and by when the "
                     "winning revision was submitted, per interval.")
        .override_by_name("visits_stored", [prop("displayName", "Stored")])
        .override_by_name("visits_submitted", [prop("displayName", "Submitted")])
    )  # fmt: skip


def _dead_letters(panels: Panels, config: BuildConfig) -> timeseries.Panel:
    panel = panels.timeseries("Dead letters by reason", sql.dead_letters_over_time(config.database))
    return stacked_bars(panel).description("Invalid payloads per interval, by reason (SPEC §1).")


def _dead_letter_reasons(panels: Panels, config: BuildConfig) -> table.Panel:
    return panels.table("Dead letters in range", sql.dead_letters_by_reason(config.database))


def _lag(panels: Panels, config: BuildConfig) -> timeseries.Panel:
    return (
        panels.timeseries(LAG_PANEL, sql.consumer_lag(config.database))
        .description("Messages each consumer group has not committed yet, over all "
                     "partitions of a topic (table consumer_lag, sinks/lag.py).")
        .unit("short").min(0)
    )  # fmt: skip


def _silence(panels: Panels, config: BuildConfig) -> table.Panel:
    steps = [(None, GOOD), (12 * HOUR, WARN), (48 * HOUR, BAD)]
    return (
        panels.table("Since each municipality's last visit", sql.since_last_visit(config.database))
        .description("Empty: no visit ever stored for that municipality.")
        .override_by_name("name", [prop("displayName", "Municipality")])
        .override_by_name("since_last_stored", [
            prop("displayName", "Since last stored"), prop("unit", "s"),
            prop("thresholds", steps_json(steps)), prop("color", {"mode": "thresholds"}),
            prop("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
        ])
    )  # fmt: skip
