from __future__ import annotations

from pathlib import Path

from dashboards.sql import MUNICIPALITY, target_expression
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
