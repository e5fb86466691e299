from __future__ import annotations

import re
from pathlib import Path

from dashboards.build import build_all
from dashboards.config import BuildConfig
from dashboards.sql import MUNICIPALITY, local_days, target_expression
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
