from __future__ import annotations

import re
from pathlib import Path

from dashboards.build import build_all
from dashboards.config import BuildConfig
from dashboards.maps import mapped_indicators
from dashboards.sql import (
    MUNICIPALITY,
    facility_caseload,
    local_days,
    map_values,
    nurse_caseload,
    target_expression,
)
from sinks.periods import FLAGS
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.settings import Settings
from vizita.contract.targets import Targets, load_targets

TARGETS = load_targets(Path(__file__).parents[3] / "config" / "targets.yaml")


def test_a_default_target_is_a_constant() -> None:
    assert target_expression(TARGETS, "missed_visit_rate", MUNICIPALITY) == "0.15"


def test_municipality_targets_override_the_default() -> None:
    assert target_expression(TARGETS, "visits_completed", "m") == (
        "multiIf(m = 'prishtine', 400.0, m = 'prizren', 120.0, NULL)"
    )
    targets = Targets.model_validate({
        "min_denominator": 20, "hysteresis": 0.02,
        "defaults": {"missed_visit_rate": {"max": 0.15}},
        "municipalities": {"peje": {"missed_visit_rate": {"max": 0.2}}},
    })  # fmt: skip
    assert target_expression(targets, "missed_visit_rate", "m") == "multiIf(m = 'peje', 0.2, 0.15)"


def test_an_indicator_without_targets_has_no_target_line() -> None:
    assert target_expression(TARGETS, "households_reached", MUNICIPALITY) is None


def _every_query() -> list[str]:
    built = build_all(BuildConfig.from_settings(Settings()))
    return list(built.columns)


def test_no_query_changes_a_setting() -> None:
    # Grafana's ClickHouse user is readonly = 1: a SETTINGS clause fails its query.
    assert not [sql for sql in _every_query() if re.search(r"\bSETTINGS\b", sql, re.I)]


def test_no_query_filters_days_by_the_plugins_utc_days() -> None:
    assert not [sql for sql in _every_query() if "$__dateFilter" in sql]
    assert local_days("d") == (
        "d BETWEEN toDate($__fromTime, 'Europe/Belgrade') AND toDate($__toTime, 'Europe/Belgrade')"
    )


def test_an_indicator_is_mapped_when_any_municipality_has_a_target() -> None:
    targets = Targets.model_validate({
        "min_denominator": 20, "hysteresis": 0.02,
        "defaults": {"missed_visit_rate": {"max": 0.15}},
        "municipalities": {"junik": {"households_reached": {"min": 10}}},
    })  # fmt: skip
    assert mapped_indicators(targets) == ["households_reached", "missed_visit_rate"]


def test_a_map_carries_each_municipalitys_own_target_and_its_direction() -> None:
    targets = Targets.model_validate({
        "min_denominator": 25, "hysteresis": 0.02,
        "defaults": {"missed_visit_rate": {"max": 0.15}},
        "municipalities": {"peje": {"missed_visit_rate": {"max": 0.2}}},
    })  # fmt: skip
    text = map_values("db1", targets, "missed_visit_rate").text
    assert "('peje', 'Pejë / Peć', 42.659, 20.288, 0.2, false)" in text
    assert "('junik', 'Junik', 42.475, 20.277, 0.15, false)" in text
    assert all(text.count(f"('{code}', ") == 1 for code in MUNICIPALITIES)  # one place each
    assert "ifNull(denominator, 0) >= 25" in text  # SPEC §4: too few visits decide nothing
    assert "value > target + 1e-09" in text  # the contract's rounding allowance
    counts = map_values("db1", TARGETS, "visits_completed")
    assert "denominator" not in counts.columns  # a count has none to show
    assert "('prizren', 'Prizren', 42.213, 20.74, 120.0, true)" in counts.text
    assert "('junik', 'Junik', 42.475, 20.277, NULL, NULL)" in counts.text


def test_caseloads_count_as_the_indicators_do() -> None:
    for query in (facility_caseload("db1"), nurse_caseload("db1")):
        assert "uniqExactIf(household_id, completed)" in query.text  # exact, not uniq()
        assert f"{FLAGS['missed']} AS missed" in query.text
        assert "NOT is_void" in query.text
        assert "FROM db1.visits FINAL" in query.text
    assert "ifNull(facility_id, '(no centre recorded)')" in facility_caseload("db1").text
