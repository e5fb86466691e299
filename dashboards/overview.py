"""Programme overview: every municipality against its targets at a glance and on maps,
every municipality over a calendar month or quarter, Kosovo-wide trends, the active
alerts and how fresh the data is."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue

from dashboards import maps, sql
from dashboards.config import OVERVIEW_UID, BuildConfig
from dashboards.panels import (
    BAD,
    GOOD,
    WARN,
    Panels,
    Step,
    new_dashboard,
    prop,
    steps_json,
    target_steps,
    thresholds,
)
from dashboards.units import indicator_display
from sinks.sql import literal
from vizita.contract.indicators import INDICATORS, KINDS, Kind
from vizita.contract.municipalities import ALL_KOSOVO
from vizita.contract.targets import Target

HOUR, DAY = 3600.0, 86400.0
TARGETS_PANEL = "30-day values at the latest day in range"  # a rule links to it
PERIOD_PANEL = "Every municipality in ${period:text}"
_COLOURED_CELL = {"type": "color-background", "mode": "basic"}


def build(config: BuildConfig) -> dashboard_builder.Dashboard:
    panels = Panels(config.datasource_uid)
    board = new_dashboard(
        "Vizita: programme overview", OVERVIEW_UID, since="now-90d", refresh="5m",
        description="Home visiting across Kosovo: every municipality against its targets.",
    ).with_variable(period_variable(panels, config))  # fmt: skip
    board.with_row(panels.row("Now"))
    board.with_panel(_freshness(panels, config).span(8).height(8))
    board.with_panel(_active_alerts(panels, config).span(16).height(8))
    board.with_row(panels.row("Municipalities against their targets"))
    board.with_panel(_targets_table(panels, config).span(24).height(24))
    board.with_row(panels.row("Maps: 30-day values against the targets"))
    for indicator in maps.mapped_indicators(config.targets):
        board.with_panel(maps.indicator_map(panels, config, indicator).span(8).height(12))
    board.with_row(panels.row("A calendar month or quarter"))
    board.with_panel(_period_table(panels, config).span(24).height(24))
    board.with_row(panels.row("All of Kosovo over time"))
    for indicator in INDICATORS:
        board.with_panel(_kosovo_trend(panels, config, indicator).span(8).height(8))
    return board


def period_variable(panels: Panels, config: BuildConfig) -> dashboard_builder.QueryVariable:
    """The month or quarter the calendar panels show: recent ones from the data, the
    latest month (to date) first and so the default."""
    return panels.query_variable("period", "Month or quarter",
                                 sql.period_options(config.database))  # fmt: skip


def _defaults(config: BuildConfig) -> dict[str, Target]:
    return {str(name): target for name, target in config.targets.defaults.items()}


def _freshness(panels: Panels, config: BuildConfig) -> stat.Panel:
    stale: list[Step] = [(None, GOOD), (6 * HOUR, WARN), (DAY, BAD)]
    late_days: list[Step] = [(None, GOOD), (1.0, WARN), (2.0, BAD)]
    return (
        panels.stat("How fresh the data is", sql.freshness(config.database))
        .description("Time since the last visit reached the store, since the last visit "
                     "was submitted, and how many days the latest indicators lag today.")
        .color_mode(common_model.BigValueColorMode.BACKGROUND)
        .graph_mode(common_model.BigValueGraphMode.NONE)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
        .override_by_name("since_last_stored", _stat_field("Last visit stored", "s", stale))
        .override_by_name("since_last_submitted",
                          _stat_field("Last visit submitted", "s", stale))
        .override_by_name("days_behind_today",
                          _stat_field("Indicators behind today", "d", late_days))
    )  # fmt: skip


def _stat_field(title: str, unit: str, steps: list[Step]) -> list[DynamicConfigValue]:
    return [prop("displayName", title), prop("unit", unit), prop("thresholds", steps_json(steps))]


def _active_alerts(panels: Panels, config: BuildConfig) -> table.Panel:
    return (
        panels.table("Active alerts", sql.active_alerts(config.database))
        .description("Municipalities behind a target on the 30-day window (SPEC §4).")
        .override_by_name("name", [prop("displayName", "Municipality")])
        .override_by_name("emitted_at", [prop("displayName", "Since")])
    )


def _targets_table(panels: Panels, config: BuildConfig) -> table.Panel:
    panel = (
        panels.table(TARGETS_PANEL, sql.overview_table(config.database, INDICATORS))
        .description("Red: on the wrong side of the default target (config/targets.yaml). "
                     "A municipality's own targets show in the active alerts column.")
        .override_by_name("municipality", [prop("displayName", "Municipality")])
        .override_by_name("active_alerts", _alert_count_field())
        .override_by_name("behind_on", [prop("displayName", "Behind on")])
    )  # fmt: skip
    defaults = _defaults(config)
    for indicator in INDICATORS:
        panel.override_by_name(indicator, _indicator_field(indicator, defaults.get(indicator)))
    return panel


def _period_table(panels: Panels, config: BuildConfig) -> table.Panel:
    panel = (
        panels.table(PERIOD_PANEL, sql.period_table(config.database, INDICATORS))
        .description("Each indicator over the days of the month or quarter picked above (to "
                     "date for the current one), straight from the stored visits; Kosovo's "
                     "distinct households and nurses are counted over the whole country. "
                     "Shares are coloured by the default target; counts and visits per nurse "
                     "grow with the period's length, so they are not.")
        .override_by_name("municipality", [prop("displayName", "Municipality")])
    )  # fmt: skip
    defaults = _defaults(config)
    for indicator in INDICATORS:
        # Targets are set on 30 days: only a share reads the same over a month or quarter.
        target = defaults.get(indicator) if KINDS[indicator] is Kind.SHARE else None
        panel.override_by_name(indicator, _indicator_field(indicator, target))
    return panel


def _alert_count_field() -> list[DynamicConfigValue]:
    return [
        prop("displayName", "Active alerts"),
        prop("thresholds", steps_json([(None, GOOD), (1.0, BAD)])),
        prop("color", {"mode": "thresholds"}),
        prop("custom.cellOptions", _COLOURED_CELL),
    ]


def _indicator_field(indicator: str, target: Target | None) -> list[DynamicConfigValue]:
    display = indicator_display(indicator)
    properties = [prop("displayName", display.title), prop("unit", display.unit),
                  prop("decimals", display.decimals)]  # fmt: skip
    if target is not None:
        properties += [
            prop("thresholds", steps_json(target_steps(target))),
            prop("color", {"mode": "thresholds"}),
            prop("custom.cellOptions", _COLOURED_CELL),
        ]
    return properties


def _kosovo_trend(panels: Panels, config: BuildConfig, indicator: str) -> timeseries.Panel:
    display = indicator_display(indicator)
    series = sql.indicator_series(config.database, indicator, literal(ALL_KOSOVO))
    panel = (
        panels.timeseries(display.title, series)
        .description("All of Kosovo, 7- and 30-day windows; the dashed line is the default "
                     "target of a municipality, where there is one.")
        .unit(display.unit).decimals(display.decimals)
    )  # fmt: skip
    target = _defaults(config).get(indicator)
    if target is not None:
        panel.thresholds(thresholds(target_steps(target))).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(
                common_model.GraphThresholdsStyleMode.DASHED
            )
        )
    return panel
