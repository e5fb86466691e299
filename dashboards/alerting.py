"""Alert delivery: Grafana's alerting provisioning file (apiVersion 1) with the alert
rules, an e-mail contact point and the notification policy.

The file format is Grafana's (docs: alerting/set-up/provision-alerting-resources/
file-provisioning; pkg/services/provisioning/alerting/rules_types.go). Rules are made
with the Foundation SDK's alerting builders, whose JSON is the HTTP API's; the file
wants the rule without `folderUID`, `orgID` and `ruleGroup` (the group carries those).

Grafana replaces `$NAME` / `${NAME}` with the environment in provisioning files: the
contact point's address is `$VIZITA_ALERT_EMAIL`. Rule queries (`model`) and
annotations are read raw, so the SQL macros and `{{ $labels.x }}` stay as they are;
titles and labels are interpolated, so they carry no `$`.

Each rule names its panel with the file format's own `dashboardUid` and `panelId`
(Grafana turns them into the `__dashboardUid__` / `__panelId__` annotations that give
a notification its dashboard and panel links). The SDK's rule model has no such
fields, so they are set on the file's rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from grafana_foundation_sdk.builders import alerting as alerting_builder
from grafana_foundation_sdk.builders import expr as expr_builder
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_model
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from dashboards import overview, pipeline, pipeline_metrics, promql, sql
from dashboards.config import METRICS_UID, OVERVIEW_UID, PIPELINE_UID, BuildConfig
from dashboards.errors import DashboardsError
from dashboards.query import ClickHouseQueryBuilder, Sql

FOLDER = "Vizita"
GROUP = "vizita"
CONTACT_POINT = "Vizita programme managers"
EMAIL_FROM_ENVIRONMENT = "$VIZITA_ALERT_EMAIL"
EXPRESSIONS = "__expr__"  # the datasource uid of Grafana's server-side expressions
STALLED_AFTER_SECONDS = 12 * 3600  # nurses submit in the daytime; a night is quiet
SINK_STALLED_FOR = "10m"  # the sink's lag and no row stored held this long
LAG_LIMIT = 10_000

NoData = Literal["Alerting", "NoData", "OK"]
ExecErr = Literal["OK", "Alerting", "Error"]


@dataclass(frozen=True)
class PanelRef:
    """A panel by its dashboard and title (ids are given out when a dashboard is built)."""

    dashboard_uid: str
    title: str


PanelIds = Mapping[PanelRef, int]

BEHIND_TARGET, NO_VISITS, CONSUMER_LAG = (
    "vizita-behind-target", "vizita-no-visits-stored", "vizita-consumer-lag")  # fmt: skip
# On the Prometheus datasource (README "Metrics").
SINK_STALLED, DEAD_LETTERS_RISING = "vizita-sink-stalled", "vizita-dead-letters-rising"
# The panel each rule's notification links to.
RULE_PANELS = {
    BEHIND_TARGET: PanelRef(OVERVIEW_UID, overview.TARGETS_PANEL),  # "behind on", every one
    NO_VISITS: PanelRef(PIPELINE_UID, pipeline.VISITS_IN_PANEL),
    CONSUMER_LAG: PanelRef(PIPELINE_UID, pipeline.LAG_PANEL),
    SINK_STALLED: PanelRef(METRICS_UID, pipeline_metrics.ROWS_STORED_PANEL),
    DEAD_LETTERS_RISING: PanelRef(METRICS_UID, pipeline_metrics.DEAD_LETTERS_PANEL),
}


def rule_queries(database: str) -> list[Sql]:
    """The SQL of every ClickHouse rule, in rule order."""
    return [sql.behind_target(database), sql.seconds_since_last_visit(database),
            sql.latest_consumer_lag(database)]  # fmt: skip


def provisioning(config: BuildConfig, panel_ids: PanelIds) -> dict[str, Any]:
    """The whole provisioning document, ready for YAML; `panel_ids` are those of the
    built dashboards."""
    rules = [_linked(rule, panel_ids) for rule in _rules(config)]
    group = {"orgId": 1, "name": GROUP, "folder": FOLDER, "interval": "1m", "rules": rules}
    return {
        "apiVersion": 1,
        "groups": [group],
        "contactPoints": [_contact_point()],
        "policies": [_policy()],
    }


def _rules(config: BuildConfig) -> list[dict[str, Any]]:
    behind, stalled, lag = (_source(query, config.datasource_uid)
                            for query in rule_queries(config.database))  # fmt: skip
    return [
        _rule(BEHIND_TARGET, "Municipality behind its target", behind,
              limit=0.0, for_="5m", no_data="OK", exec_err="Error",
              summary="{{ $labels.municipality }} is behind its target on "
                      "{{ $labels.indicator }} (30-day window).",
              severity="warning"),
        _rule(NO_VISITS, "No visit stored for 12 hours", stalled,
              limit=float(STALLED_AFTER_SECONDS), for_="15m", no_data="Alerting",
              exec_err="Alerting",
              summary="No visit has reached the store for over 12 hours: is the "
                      "pipeline (or the store) down?",
              severity="critical"),
        _rule(CONSUMER_LAG, "Consumer group falling behind", lag,
              limit=float(LAG_LIMIT), for_="10m", no_data="OK", exec_err="Error",
              summary="{{ $labels.consumer_group }} is more than 10000 messages behind "
                      "on {{ $labels.topic }}.",
              severity="warning"),
        *_metrics_rules(config.prometheus_uid),
    ]  # fmt: skip


def _metrics_rules(prometheus_uid: str) -> list[dict[str, Any]]:
    """The rules on Prometheus: each expression is 1 (or a count) when something is
    wrong, so the condition is the same `> 0`."""
    stalled = _prometheus_source(promql.sink_stalled(), prometheus_uid)
    rising = _prometheus_source(promql.dead_letters_rising(), prometheus_uid)
    return [
        # No data: no worker reports the sink's lag, so no sink is running at all.
        _rule(SINK_STALLED, "Sink stalled", stalled,
              limit=0.0, for_=SINK_STALLED_FOR, no_data="Alerting", exec_err="Error",
              summary="The sink has messages to store but stored no row for "
                      f"{promql.STALLED_WINDOW} and more, for {SINK_STALLED_FOR}: is the "
                      "store refusing (vizita_store_errors_total), or the sink stuck?",
              severity="critical"),
        _rule(DEAD_LETTERS_RISING, "Dead letters rising", rising,
              limit=0.0, for_="5m", no_data="OK", exec_err="Error",
              summary=f"More dead letters in the last {promql.RISING_WINDOW} than "
                      f"{promql.RISING_FACTOR} times a usual {promql.RISING_WINDOW} of the "
                      f"day before, plus {promql.RISING_MARGIN}: a form or a submitter "
                      "sending what the contract refuses?",
              severity="warning"),
    ]  # fmt: skip


def _linked(rule: dict[str, Any], panel_ids: PanelIds) -> dict[str, Any]:
    """The rule with the dashboard and panel of RULE_PANELS."""
    panel = RULE_PANELS[rule["uid"]]
    if panel not in panel_ids:
        raise DashboardsError(f"rule {rule['uid']}: no panel {panel.title!r} on "
                              f"dashboard {panel.dashboard_uid}")  # fmt: skip
    return {**rule, "dashboardUid": panel.dashboard_uid, "panelId": panel_ids[panel]}


def _rule(
    uid: str, title: str, source: alerting_builder.Query, *, limit: float, for_: str,
    no_data: NoData, exec_err: ExecErr, summary: str, severity: str,
) -> dict[str, Any]:  # fmt: skip
    """Query A (`source`: ClickHouse, a table whose string columns become labels, or
    Prometheus, an instant vector), B = last of A, C = B above `limit`: the condition."""
    rule = (
        alerting_builder.Rule(title).uid(uid).condition("C").for_val(for_)
        .no_data_state(no_data).exec_err_state(exec_err)
        .labels({"severity": severity})
        .annotations({"summary": summary})
        .with_query(source)
        .with_query(_expression("B", expr_builder.TypeReduce().expression("A").reducer("last")))
        .with_query(_expression("C", _above("B", limit)))
    )  # fmt: skip
    return _file_rule(rule.build())


def _source(query: Sql, datasource_uid: str) -> alerting_builder.Query:
    model = ClickHouseQueryBuilder(query).ref_id("A").table().datasource(datasource_uid)
    window = alerting_model.RelativeTimeRange(from_val=600, to=0)  # seconds
    return (
        alerting_builder.Query("A").datasource_uid(datasource_uid)
        .relative_time_range(window).model(model)
    )  # fmt: skip


def _prometheus_source(expr: str, datasource_uid: str) -> alerting_builder.Query:
    ref = DataSourceRef(type_val=pipeline_metrics.PROMETHEUS_TYPE, uid=datasource_uid)
    model = prometheus.Dataquery().expr(expr).instant().ref_id("A").datasource(ref)
    window = alerting_model.RelativeTimeRange(from_val=600, to=0)  # an instant, at `to`
    return (
        alerting_builder.Query("A").datasource_uid(datasource_uid)
        .relative_time_range(window).model(model)
    )  # fmt: skip


def _expression(ref_id: str, model: Any) -> alerting_builder.Query:
    return alerting_builder.Query(ref_id).datasource_uid(EXPRESSIONS).model(model.ref_id(ref_id))


def _above(ref_id: str, limit: float) -> expr_builder.TypeThreshold:
    evaluator = expr_builder.ExprTypeThresholdConditionsEvaluator().type("gt").params([limit])
    condition = expr_builder.ExprTypeThresholdConditions().evaluator(evaluator)
    return expr_builder.TypeThreshold().expression(ref_id).conditions([condition])


def _file_rule(rule: alerting_model.Rule) -> dict[str, Any]:
    as_api: dict[str, Any] = json.loads(json.dumps(rule, cls=JSONEncoder))
    for api_only in ("folderUID", "orgID", "ruleGroup"):
        del as_api[api_only]
    return as_api


def _contact_point() -> dict[str, Any]:
    point = (
        alerting_builder.ContactPoint().uid("vizita-email").name(CONTACT_POINT).type("email")
        .settings({"addresses": EMAIL_FROM_ENVIRONMENT, "singleEmail": True})
        .disable_resolve_message(False)
    ).build()  # fmt: skip
    receiver: dict[str, Any] = json.loads(json.dumps(point, cls=JSONEncoder))
    del receiver["name"]
    return {"orgId": 1, "name": CONTACT_POINT, "receivers": [receiver]}


def _policy() -> dict[str, Any]:
    policy = (
        alerting_builder.NotificationPolicy().receiver(CONTACT_POINT)
        .group_by(["grafana_folder", "alertname", "municipality"])
        .group_wait("30s").group_interval("5m").repeat_interval("12h")
    ).build()  # fmt: skip
    as_file: dict[str, Any] = json.loads(json.dumps(policy, cls=JSONEncoder))
    return {"orgId": 1, **as_file}
