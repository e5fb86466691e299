"""The alerting provisioning file: Grafana's file format, rules that can fire, an
address from the environment."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from dashboards import alerting
from dashboards.alerting import CONTACT_POINT, EMAIL_FROM_ENVIRONMENT, RULE_PANELS
from dashboards.build import Built, alerting_text, build_all
from dashboards.config import BuildConfig
from dashboards.errors import DashboardsError
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
        "vizita-behind-target", "vizita-no-visits-stored", "vizita-consumer-lag"}  # fmt: skip


def test_each_rule_queries_clickhouse_then_reduces_then_thresholds(
    document: dict[str, Any],
) -> None:
    uid = Settings().grafana_datasource_uid
    for rule in _rules(document).values():
        query, reduce, threshold = rule["data"]
        assert (query["refId"], query["datasourceUid"]) == ("A", uid)
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
