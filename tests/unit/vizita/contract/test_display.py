"""The display rules every reader shares: labels, number formats, standing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vizita.contract.display import (
    Standing,
    format_target,
    format_value,
    municipality_label,
    municipality_options,
    standing,
)
from vizita.contract.indicators import INDICATORS, KINDS, Kind
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.targets import Reading, Target, Targets

TARGETS = Targets(min_denominator=20, hysteresis=0.02)


def test_labels_are_albanian_and_serbian_and_english_where_it_differs() -> None:
    assert municipality_label("prishtine") == "Prishtinë / Priština (Pristina)"
    assert municipality_label("ferizaj") == "Ferizaj / Uroševac"
    assert municipality_label("junik") == "Junik"  # the same in both languages
    assert municipality_label(ALL_KOSOVO) == "Kosova / Kosovo (all)"
    assert municipality_label("atlantis") == "atlantis"  # unknown: shown as it is


def test_options_are_all_of_kosovo_then_every_municipality_alphabetically() -> None:
    options = municipality_options()
    assert options[0] == (municipality_label(ALL_KOSOVO), ALL_KOSOVO)
    assert sorted(code for _, code in options[1:]) == sorted(MUNICIPALITIES)
    labels = [label for label, _ in options[1:]]
    assert labels.index("Kaçanik / Kačanik") < labels.index("Kamenicë / Kamenica")


def test_no_target_reads_as_a_dash() -> None:
    assert format_target("visits_completed", None) == "—"


def test_a_value_behind_its_target_never_reads_as_on_it() -> None:
    assert format_value("missed_visit_rate", 0.1504, Target(max=0.15)) == "15.04%"
    assert format_value("immunisation_counselling_coverage", 0.89996, Target(min=0.9)) == (
        "89.996%"
    )
    # On or past the target: the usual precision.
    assert format_value("missed_visit_rate", 0.1496, Target(max=0.15)) == "15.0%"
    assert format_value("missed_visit_rate", 0.15, Target(max=0.15)) == "15.0%"


@given(
    indicator=st.sampled_from([i for i in INDICATORS if KINDS[i] is not Kind.COUNT]),
    numerator=st.integers(0, 5000),
    extra=st.integers(1, 5000),
    bound=st.integers(1, 99).map(lambda percent: percent / 100),
    is_minimum=st.booleans(),
)
def test_behind_reads_behind_for_every_ratio_of_counts(
    indicator: str, numerator: int, extra: int, bound: float, is_minimum: bool
) -> None:
    value = numerator / (numerator + extra)
    target = Target(min=bound) if is_minimum else Target(max=bound)
    if not target.is_behind(value):
        return
    shown = float(format_value(indicator, value, target).rstrip("%"))
    limit = float(format_target(indicator, target)[2:].rstrip("%"))
    assert shown < limit if is_minimum else shown > limit


@pytest.mark.parametrize(
    ("indicator", "target", "reading", "alerted", "expected"),
    [
        ("immunisation_counselling_coverage", Target(min=0.9), Reading(0.5, 40), False, "behind"),
        ("immunisation_counselling_coverage", Target(min=0.9), Reading(0.95, 40), False, "ahead"),
        ("immunisation_counselling_coverage", Target(min=0.9), Reading(0.9, 40), False, "ahead"),
        ("immunisation_counselling_coverage", Target(min=0.9), Reading(0.5, 5), False, "few"),
        ("immunisation_counselling_coverage", Target(min=0.9), Reading(0.95, 40), True, "alerted"),
        ("missed_visit_rate", Target(max=0.15), Reading(0.3, 40), False, "behind"),
        ("missed_visit_rate", Target(max=0.15), Reading(0.1, 40), False, "ahead"),
        ("visits_completed", Target(min=120), Reading(50, None), False, "behind"),
        ("visits_completed", None, Reading(50, None), False, "no_target"),
        ("visits_completed", Target(min=120), Reading(None, None), False, "no_data"),
    ],
)
def test_status_follows_the_alert_rules(
    indicator: str, target: Target | None, reading: Reading, alerted: bool, expected: str
) -> None:
    assert standing(indicator, target, reading, alerted=alerted, targets=TARGETS) == expected


def test_without_a_target_there_is_no_standing_to_show() -> None:
    got = standing("visits_completed", None, Reading(80, None), alerted=False, targets=TARGETS)
    assert got is Standing.NO_TARGET
