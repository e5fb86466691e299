"""Panel building blocks shared by the three ClickHouse dashboards: every panel gets an id, the
ClickHouse datasource and its queries here."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import barchart, geomap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.config import TAGS, TIMEZONE
from dashboards.query import PLUGIN_TYPE, ClickHouseQueryBuilder, Sql, VariableQuery
from vizita.contract.targets import Target

Step = tuple[float | None, str]  # (from value, colour); None = from minus infinity

GOOD, BAD, WARN = "green", "red", "orange"


def thresholds(steps: Sequence[Step]) -> dashboard_builder.ThresholdsConfig:
    return (
        dashboard_builder.ThresholdsConfig()
        .mode(dashboard_model.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_model.Threshold(value=v, color=c) for v, c in steps])
    )


def target_steps(target: Target) -> list[Step]:
    """Red on the wrong side of a target, green on the right one (SPEC §4; a value
    exactly at a `max` target shows red although it is not yet behind)."""
    if target.min is not None:
        return [(None, BAD), (target.min, GOOD)]
    return [(None, GOOD), (target.bound, BAD)]


def stacked_bars(panel: timeseries.Panel) -> timeseries.Panel:
    """A time series drawn as stacked bars (counts per interval, by kind)."""
    return (
        panel.draw_style(common_model.GraphDrawStyle.BARS).fill_opacity(80)
        .stacking(common_builder.StackingConfig().mode(common_model.StackingMode.NORMAL))
    )  # fmt: skip


def prop(name: str, value: Any) -> dashboard_model.DynamicConfigValue:
    """One field-config property of an override (`unit`, `custom.cellOptions`, …)."""
    return dashboard_model.DynamicConfigValue(id_val=name, value=value)


def steps_json(steps: Sequence[Step]) -> dict[str, object]:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


class Panels:
    """Makes panels for one dashboard: ids count up from 1."""

    def __init__(self, datasource_uid: str) -> None:
        self.datasource_uid = datasource_uid
        self._last_id = 0

    def _ref(self) -> dashboard_model.DataSourceRef:
        return dashboard_model.DataSourceRef(type_val=PLUGIN_TYPE, uid=self.datasource_uid)

    def _targets(self, sqls: Sequence[Sql], series: bool) -> list[cogbuilder.Builder[Any]]:
        made: list[cogbuilder.Builder[Any]] = []
        for ref_id, sql in zip(string.ascii_uppercase, sqls, strict=False):
            query = ClickHouseQueryBuilder(sql).ref_id(ref_id).datasource(self.datasource_uid)
            made.append(query.time_series() if series else query.table())
        return made

    def _common(self, panel: Any, title: str, sqls: Sequence[Sql], series: bool) -> Any:
        self._last_id += 1
        return (panel.id(self._last_id).title(title).datasource(self._ref())
                .targets(self._targets(sqls, series)))  # fmt: skip

    def table(self, title: str, *sqls: Sql) -> table.Panel:
        panel: table.Panel = self._common(table.Panel(), title, sqls, series=False)
        return panel

    def timeseries(self, title: str, *sqls: Sql) -> timeseries.Panel:
        panel: timeseries.Panel = self._common(timeseries.Panel(), title, sqls, series=True)
        return panel

    def stat(self, title: str, *sqls: Sql) -> stat.Panel:
        panel: stat.Panel = self._common(stat.Panel(), title, sqls, series=False)
        return panel

    def barchart(self, title: str, *sqls: Sql) -> barchart.Panel:
        panel: barchart.Panel = self._common(barchart.Panel(), title, sqls, series=False)
        return panel

    def geomap(self, title: str, *sqls: Sql) -> geomap.Panel:
        panel: geomap.Panel = self._common(geomap.Panel(), title, sqls, series=False)
        return panel

    def query_variable(self, name: str, label: str, sql: Sql) -> dashboard_builder.QueryVariable:
        """A variable whose options a ClickHouse query lists (value, then text), read
        when the dashboard loads; one value, never a custom one."""
        return (
            dashboard_builder.QueryVariable(name).label(label).datasource(self._ref())
            .query(VariableQuery(sql, name))
            .refresh(dashboard_model.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(dashboard_model.VariableSort.DISABLED)
            .multi(False).include_all(False).allow_custom_value(False)
        )  # fmt: skip

    def row(self, title: str) -> dashboard_builder.Row:
        self._last_id += 1
        return dashboard_builder.Row(title).id(self._last_id)


def new_dashboard(
    title: str, uid: str, *, since: str, refresh: str, description: str
) -> dashboard_builder.Dashboard:
    """A read-only dashboard (change the code, not the UI) with links to the others."""
    others = (
        dashboard_builder.DashboardLink("Vizita")
        .type(dashboard_model.DashboardLinkType.DASHBOARDS)
        .tags(TAGS).as_dropdown(True).keep_time(True)
    )  # fmt: skip
    return (
        dashboard_builder.Dashboard(title).uid(uid).description(description).tags(TAGS)
        .timezone(TIMEZONE).time(since, "now").refresh(refresh).readonly()
        .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR).link(others)
    )  # fmt: skip
