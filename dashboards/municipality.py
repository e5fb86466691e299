"""One municipality (or all of Kosovo): every indicator over time against its target,
visits per nurse, at-risk referrals, and how late submissions arrive."""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards import sql
from dashboards.config import MUNICIPALITY_UID, BuildConfig
from dashboards.panels import Panels, new_dashboard, prop
from dashboards.units import indicator_display
from vizita.contract.display import municipality_options
from vizita.contract.indicators import INDICATORS

VARIABLE = "municipality"
_TARGET_LINE = [
    prop("displayName", "Target"),
    prop("color", {"mode": "fixed", "fixedColor": "red"}),
    prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
    prop("custom.fillOpacity", 0),
]


def build(config: BuildConfig) -> dashboard_builder.Dashboard:
    panels = Panels(config.datasource_uid)
    board = new_dashboard(
        "Vizita: municipality", MUNICIPALITY_UID, since="now-90d", refresh="5m",
        description="One municipality's indicators against its targets, its nurses, its "
                    "at-risk children and how late its visits are submitted.",
    ).with_variable(municipality_variable())  # fmt: skip
    board.with_row(panels.row("Indicators over time: 7- and 30-day windows, and the target"))
    for indicator in INDICATORS:
        board.with_panel(_indicator(panels, config, indicator).span(8).height(8))
    board.with_row(panels.row("Nurses and children at risk"))
    board.with_panel(_per_nurse(panels, config).span(12).height(10))
    board.with_panel(_at_risk(panels, config).span(12).height(10))
    board.with_row(panels.row("How late submissions arrive"))
    board.with_panel(_delays(panels, config).span(16).height(8))
    board.with_panel(_delay_quantiles(panels, config).span(8).height(8))
    return board


def municipality_variable() -> dashboard_builder.CustomVariable:
    """Labels in Albanian / Serbian (English), values the codes of SPEC §6. Grafana reads
    `label : value` pairs from a custom variable's query; options and current are set
    too, because Grafana does not fill them from the query when it loads JSON."""
    pairs = municipality_options()
    assert all("," not in label and " : " not in label for label, _ in pairs)
    options = [dashboard_model.VariableOption(text=label, value=code) for label, code in pairs]
    first = pairs[0]
    return (
        dashboard_builder.CustomVariable(VARIABLE).label("Municipality")
        .values(",".join(f"{label} : {code}" for label, code in pairs))
        .options(options).allow_custom_value(False)
        .current(dashboard_model.VariableOption(text=first[0], value=first[1], selected=True))
    )  # fmt: skip


def _indicator(panels: Panels, config: BuildConfig, indicator: str) -> timeseries.Panel:
    display = indicator_display(indicator)
    target = sql.target_expression(config.targets, indicator, sql.MUNICIPALITY)
    series = sql.indicator_series(config.database, indicator, sql.MUNICIPALITY, target)
    panel = (
        panels.timeseries(display.title, series)
        .unit(display.unit).decimals(display.decimals)
    )  # fmt: skip
    if target is not None:
        panel.override_by_name("target", _TARGET_LINE)
    return panel


def _per_nurse(panels: Panels, config: BuildConfig) -> table.Panel:
    return (
        panels.table("Visits per nurse", sql.visits_per_nurse(config.database))
        .description("Visits in range by nurse (pseudonymous ids); households are distinct "
                     "households with a completed visit.")
        .override_by_name("nurse_id", [prop("displayName", "Nurse")])
    )  # fmt: skip


def _at_risk(panels: Panels, config: BuildConfig) -> table.Panel:
    return (
        panels.table("Children at risk: completed visits and referrals",
                     sql.at_risk_referrals(config.database))
        .description("Completed visits carrying each risk flag, and how many of them "
                     "referred the child on to another service.")
        .override_by_name("referred_share", [prop("unit", "percentunit"),
                                             prop("displayName", "Referred")])
        .override_by_name("referred", [prop("displayName", "With a referral")])
    )  # fmt: skip


def _delays(panels: Panels, config: BuildConfig) -> barchart.Panel:
    return (
        panels.barchart("Submitted after the visit", sql.submission_delays(config.database))
        .description("submitted_at minus occurred_at of each visit's winning revision.")
        .x_field("delay").show_value(common_model.VisibilityMode.AUTO)
    )  # fmt: skip


def _delay_quantiles(panels: Panels, config: BuildConfig) -> stat.Panel:
    return (
        panels.stat("Submission delay", sql.submission_delay_quantiles(config.database))
        .unit("h").decimals(1).graph_mode(common_model.BigValueGraphMode.NONE)
        .override_by_name("median_hours", [prop("displayName", "Median")])
        .override_by_name("p90_hours", [prop("displayName", "9 in 10 within")])
    )  # fmt: skip
