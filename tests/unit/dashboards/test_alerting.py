"""The alerting provisioning file: Grafana's file format, rules that can fire, an
address from the environment."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from dashboards import alerting
from dashboards.alerting import CONTACT_POINT, EMAIL_FROM_ENVIRONMENT, RULE_PANELS
from dashboards.build import Built, alerting_text, build_all
from dashboards.config import METRICS_UID, BuildConfig
from dashboards.errors import DashboardsError
from vizita.contract import metrics
from vizita.contract.settings import Settings


@pytest.fixture
def built() -> Built:
    return build_all(BuildConfig.from_settings(Settings()))


@pytest.fixture
def document(built: Built) -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(alerting_text(built.alerting))
    return parsed


def _rules(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["uid"]: rule for group in document["groups"] for rule in group["rules"]}


def test_rules_are_in_a_folder_and_group_with_an_interval(document: dict[str, Any]) -> None:
    assert document["apiVersion"] == 1
    (group,) = document["groups"]
    assert group["folder"] == "Vizita"
    assert group["interval"] == "1m"
    assert set(_rules(document)) == {
        "vizita-behind-target", "vizita-no-visits-stored", "vizita-consumer-lag",
        *PROMETHEUS_RULES}  # fmt: skip


PROMETHEUS_RULES = {"vizita-sink-stalled", "vizita-dead-letters-rising"}


def test_each_rule_queries_its_datasource_then_reduces_then_thresholds(
    document: dict[str, Any],
) -> None:
    settings = Settings()
    for uid, rule in _rules(document).items():
        query, reduce, threshold = rule["data"]
        if uid in PROMETHEUS_RULES:
            assert (query["refId"], query["datasourceUid"]) == (
                "A",
                settings.grafana_prometheus_uid,
            )
            assert query["model"]["expr"]
            assert (query["model"]["instant"], query["model"]["range"]) == (True, False)
        else:
            assert (query["refId"], query["datasourceUid"]) == (
                "A",
                settings.grafana_datasource_uid,
            )
            assert query["model"]["rawSql"]
        assert query["relativeTimeRange"]["from"] > 0
        assert (reduce["model"]["type"], reduce["model"]["expression"]) == ("reduce", "A")
        assert (threshold["model"]["type"], threshold["model"]["expression"]) == ("threshold", "B")
        assert rule["condition"] == threshold["refId"] == "C"
        assert {"folderUID", "orgID", "ruleGroup"}.isdisjoint(rule)  # the API's, not the file's


def test_a_stalled_pipeline_alerts_even_without_data(document: dict[str, Any]) -> None:
    heartbeat = _rules(document)["vizita-no-visits-stored"]
    assert heartbeat["noDataState"] == heartbeat["execErrState"] == "Alerting"
    evaluator = heartbeat["data"][2]["model"]["conditions"][0]["evaluator"]
    assert evaluator == {"type": "gt", "params": [43200.0]}


def test_the_address_comes_from_the_environment_and_the_policy_uses_it(
    document: dict[str, Any],
) -> None:
    (point,) = document["contactPoints"]
    (receiver,) = point["receivers"]
    assert receiver["type"] == "email"
    assert receiver["settings"]["addresses"] == EMAIL_FROM_ENVIRONMENT == "$VIZITA_ALERT_EMAIL"
    (policy,) = document["policies"]
    assert policy["receiver"] == point["name"] == CONTACT_POINT


def test_only_raw_fields_carry_a_dollar(document: dict[str, Any]) -> None:
    # Grafana expands $NAME in titles and labels (not in query models or annotations),
    # so a $ there would be eaten.
    for rule in _rules(document).values():
        assert "$" not in rule["title"] + "".join(rule["labels"].values())
    assert "$" not in str(document["policies"]) + str(document["groups"][0]["name"])


def test_each_rule_links_its_panel_with_the_rules_own_fields(
    built: Built, document: dict[str, Any]
) -> None:
    # Grafana's file format (rules_types.go, AlertRuleV1): dashboardUid and panelId,
    # which become the __dashboardUid__ / __panelId__ annotations of every alert.
    rules = _rules(document)
    assert set(rules) == set(RULE_PANELS)
    for uid, rule in rules.items():
        panels = {p["id"]: p for p in built.dashboards[rule["dashboardUid"]]["panels"]}
        assert isinstance(rule["panelId"], int), uid
        panel = panels[rule["panelId"]]
        assert panel["type"] != "row", uid
        assert panel["title"] == RULE_PANELS[uid].title, uid
        assert rule["dashboardUid"] == RULE_PANELS[uid].dashboard_uid, uid


def test_the_panels_are_the_ones_a_manager_would_open(document: dict[str, Any]) -> None:
    rules = _rules(document)
    assert rules["vizita-behind-target"]["dashboardUid"] == "vizita-overview"
    assert rules["vizita-no-visits-stored"]["dashboardUid"] == "vizita-pipeline"
    assert rules["vizita-consumer-lag"]["panelId"] != rules["vizita-no-visits-stored"]["panelId"]


def test_no_annotation_carries_a_dashboard_path(document: dict[str, Any]) -> None:
    for uid, rule in _rules(document).items():
        assert set(rule["annotations"]) == {"summary"}, uid
        assert "/d/" not in str(rule["annotations"]), uid


def test_a_rule_whose_panel_is_missing_stops_the_build() -> None:
    with pytest.raises(DashboardsError, match="no panel"):
        alerting.provisioning(BuildConfig.from_settings(Settings()), {})


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def _series_names(registry: CollectorRegistry) -> set[str]:
    """Every series a registry can show (a counter's `_total`, a histogram's `_bucket`…),
    whether or not a labelled one has had its first sample yet."""
    return {family.name + suffix for family in registry.collect()
            for suffix in _SUFFIXES.get(family.type, ("",))}  # fmt: skip


def test_every_promql_names_metrics_the_processes_show(
    built: Built, document: dict[str, Any]
) -> None:
    # A renamed metric must not leave a panel or a rule reading nothing.
    shown = _series_names(metrics.WORKER) | _series_names(metrics.INGEST) | {"up"}
    exprs = [q["model"]["expr"] for uid, rule in _rules(document).items() if uid in PROMETHEUS_RULES
             for q in rule["data"][:1]]  # fmt: skip
    exprs += [t["expr"] for p in built.dashboards[METRICS_UID]["panels"]
              for t in p.get("targets", [])]  # fmt: skip
    assert len(exprs) > 20
    for expr in exprs:
        named = set(re.findall(r"\b(?:vizita|process|python)_[a-z0-9_]+\b", expr))
        named |= {"up"} if re.search(r"\bup\{", expr) else set()
        assert named, expr
        assert named <= shown, f"{expr}: {named - shown}"


def test_sink_stalled_alerts_when_no_sink_reports_and_rising_dead_letters_do_not(
    document: dict[str, Any],
) -> None:
    rules = _rules(document)
    stalled, rising = rules["vizita-sink-stalled"], rules["vizita-dead-letters-rising"]
    assert (stalled["noDataState"], stalled["for"]) == ("Alerting", "10m")
    assert rising["noDataState"] == "OK"
    for rule in (stalled, rising):
        evaluator = rule["data"][2]["model"]["conditions"][0]["evaluator"]
        assert evaluator == {"type": "gt", "params": [0.0]}
        assert rule["dashboardUid"] == METRICS_UID
    assert 'consumer="sink"' in stalled["data"][0]["model"]["expr"]
    assert 'table="dead_letters"' in rising["data"][0]["model"]["expr"]
