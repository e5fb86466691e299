"""One municipality (or all of Kosovo): every indicator over time against its target,
every indicator over a calendar month or quarter, the caseload of its Family Medicine
Centres and nurses, at-risk referrals, and how late submissions arrive."""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards import overview, sql
from dashboards.config import MUNICIPALITY_UID, BuildConfig
from dashboards.panels import Panels, new_dashboard, prop, steps_json, target_steps
from dashboards.units import indicator_display
from vizita.contract.display import municipality_options, title
from vizita.contract.indicators import COUNT_INDICATORS, INDICATORS

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
        description="One municipality's indicators against its targets, over time and by "
                    "calendar month or quarter, its Family Medicine Centres and nurses, its "
                    "at-risk children and how late its visits are submitted.",
    ).with_variable(municipality_variable()).with_variable(
        overview.period_variable(panels, config))  # fmt: skip
    board.with_row(panels.row("Indicators over time: 7- and 30-day windows, and the target"))
    for indicator in INDICATORS:
        board.with_panel(_indicator(panels, config, indicator).span(8).height(8))
    board.with_row(panels.row("Indicators in ${period:text}"))
    for indicator in INDICATORS:
        board.with_panel(_in_period(panels, config, indicator).span(8).height(4))
    board.with_row(panels.row("Family Medicine Centres and nurses: caseload in range"))
    board.with_panel(_per_facility(panels, config).span(12).height(10))
    board.with_panel(_per_nurse(panels, config).span(12).height(10))
    board.with_row(panels.row("Children at risk"))
    board.with_panel(_at_risk(panels, config).span(24).height(8))
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


def _in_period(panels: Panels, config: BuildConfig, indicator: str) -> stat.Panel:
    display = indicator_display(indicator)
    query = sql.period_indicator(config.database, indicator, sql.MUNICIPALITY)
    panel = (
        panels.stat(display.title, query)
        .description("Over the days of the month or quarter picked above (to date for the "
                     "current one), from the stored visits.")
        .graph_mode(common_model.BigValueGraphMode.NONE)
        .text_mode(common_model.BigValueTextMode.VALUE_AND_NAME)
        .override_by_name("value", [prop("displayName", "Value"), prop("unit", display.unit),
                                    prop("decimals", display.decimals)])
    )  # fmt: skip
    if indicator not in COUNT_INDICATORS:
        for part in ("numerator", "denominator"):
            panel.override_by_name(part, [prop("displayName", part.capitalize()),
                                          prop("unit", "none"), prop("decimals", 0)])  # fmt: skip
    return panel


PER_FACILITY_PANEL = "Family Medicine Centres"
PER_NURSE_PANEL = "Nurses"


def _per_facility(panels: Panels, config: BuildConfig) -> table.Panel:
    panel = (
        panels.table(PER_FACILITY_PANEL, sql.facility_caseload(config.database))
        .description("Effective visits in range by Family Medicine Centre (facility_id): "
                     "nurses who visited from it, distinct households with a completed "
                     "visit, completed and all visits, and the share missed.")
        .override_by_name("facility", [prop("displayName", "Centre")])
        .override_by_name("nurses", [prop("displayName", "Nurses")])
    )  # fmt: skip
    return _caseload_fields(panel, config)


def _per_nurse(panels: Panels, config: BuildConfig) -> table.Panel:
    panel = (
        panels.table(PER_NURSE_PANEL, sql.nurse_caseload(config.database))
        .description("Effective visits in range by nurse (pseudonymous ids): the centres "
                     "they visited from, distinct households with a completed visit, "
                     "completed and all visits, and the share missed.")
        .override_by_name("nurse_id", [prop("displayName", "Nurse")])
        .override_by_name("facilities", [prop("displayName", "Centres")])
    )  # fmt: skip
    return _caseload_fields(panel, config)


def _caseload_fields(panel: table.Panel, config: BuildConfig) -> table.Panel:
    """The caseload columns as the indicators they count are called; the missed share
    coloured by the missed-visit target, where there is a default one."""
    missed = indicator_display("missed_visit_rate")
    missed_field = [prop("displayName", missed.title), prop("unit", missed.unit),
                    prop("decimals", missed.decimals)]  # fmt: skip
    target = {str(k): v for k, v in config.targets.defaults.items()}.get("missed_visit_rate")
    if target is not None:
        missed_field += [
            prop("thresholds", steps_json(target_steps(target))),
            prop("color", {"mode": "thresholds"}),
            prop("custom.cellOptions", {"type": "color-text"}),
        ]
    return (
        panel.override_by_name("households", [prop("displayName", title("households_reached"))])
        .override_by_name("completed_visits", [prop("displayName", title("visits_completed"))])
        .override_by_name("visits", [prop("displayName", "All visits")])
        .override_by_name("missed_share", missed_field)
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
