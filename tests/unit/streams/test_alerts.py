"""Targets and alerts (SPEC §4): `next_state` raises when strictly behind, ignores ratios
on too small a denominator, resolves ratios only past the hysteresis and counts once
back at the target; the targets file is read and checked."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.alerts import next_state
from vizita.contract.targets import Reading, Target, Targets, load_targets

CONFIG = Path(__file__).resolve().parents[3] / "config" / "targets.yaml"

TARGETS = Targets(min_denominator=20, hysteresis=0.02)
AT_LEAST_90 = Target(min=0.90)
AT_MOST_15 = Target(max=0.15)
AT_LEAST_120 = Target(min=120)
IMMUNISATION = "immunisation_counselling_coverage"
MISSED = "missed_visit_rate"


def ratio(numerator: int, denominator: int) -> Reading:
    return Reading(numerator / denominator if denominator else None, denominator)


def count(n: int) -> Reading:
    return Reading(float(n), None)


# --- raising --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        (ratio(17, 20), "raised"),  # 0.85
        (ratio(179, 200), "raised"),  # 0.895
        (ratio(18, 20), None),  # exactly at the target
        (ratio(27, 30), None),  # 0.9 again
        (ratio(20, 20), None),
    ],
)
def test_a_min_target_raises_only_when_strictly_below(
    reading: Reading, expected: str | None
) -> None:
    assert next_state(IMMUNISATION, AT_LEAST_90, reading, False, TARGETS) == expected


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        (ratio(4, 20), "raised"),  # 0.20
        (ratio(31, 200), "raised"),  # 0.155
        (ratio(3, 20), None),  # exactly at the target
        (ratio(30, 200), None),
        (ratio(0, 20), None),
    ],
)
def test_a_max_target_raises_only_when_strictly_above(
    reading: Reading, expected: str | None
) -> None:
    assert next_state(MISSED, AT_MOST_15, reading, False, TARGETS) == expected


@pytest.mark.parametrize("raised", [False, True])
@pytest.mark.parametrize(
    ("indicator", "target", "reading"),
    [
        (IMMUNISATION, AT_LEAST_90, ratio(0, 19)),  # far behind, but only 19 visits
        (IMMUNISATION, AT_LEAST_90, ratio(19, 19)),  # far ahead, but only 19 visits
        (IMMUNISATION, AT_LEAST_90, ratio(0, 0)),  # no value at all
        (IMMUNISATION, AT_LEAST_90, Reading(None, 25)),
        (MISSED, AT_MOST_15, ratio(19, 19)),
        (MISSED, AT_MOST_15, ratio(0, 19)),
        (MISSED, AT_MOST_15, ratio(0, 0)),
        ("visits_per_nurse", Target(min=10.0), ratio(0, 3)),
        ("visits_per_nurse", Target(min=10.0), ratio(90, 3)),
    ],
)
def test_a_small_denominator_or_no_value_changes_nothing(
    indicator: str, target: Target, reading: Reading, raised: bool
) -> None:
    assert next_state(indicator, target, reading, raised, TARGETS) is None


def test_the_minimum_denominator_itself_is_enough() -> None:
    assert next_state(IMMUNISATION, AT_LEAST_90, ratio(0, 20), False, TARGETS) == "raised"
    assert next_state(IMMUNISATION, AT_LEAST_90, ratio(20, 20), True, TARGETS) == "resolved"
    assert next_state(MISSED, AT_MOST_15, ratio(20, 20), False, TARGETS) == "raised"
    assert next_state(MISSED, AT_MOST_15, ratio(0, 20), True, TARGETS) == "resolved"


def test_a_raised_alert_is_not_raised_again() -> None:
    assert next_state(IMMUNISATION, AT_LEAST_90, ratio(0, 50), True, TARGETS) is None
    assert next_state(MISSED, AT_MOST_15, ratio(50, 50), True, TARGETS) is None
    assert next_state("visits_completed", AT_LEAST_120, count(3), True, TARGETS) is None


# --- resolving: hysteresis for ratios -------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        (ratio(89, 100), None),  # still behind
        (ratio(90, 100), None),  # at the target, inside the band
        (ratio(91, 100), None),  # past it, but by less than the hysteresis
        (ratio(919, 1000), None),
        (ratio(92, 100), "resolved"),  # exactly the hysteresis past it
        (ratio(93, 100), "resolved"),
        (ratio(100, 100), "resolved"),
    ],
)
def test_a_raised_min_ratio_resolves_only_past_the_hysteresis(
    reading: Reading, expected: str | None
) -> None:
    assert next_state(IMMUNISATION, AT_LEAST_90, reading, True, TARGETS) == expected
    # Not raised, the band raises nothing either.
    assert next_state(IMMUNISATION, AT_LEAST_90, reading, False, TARGETS) == (
        "raised" if reading.value is not None and reading.value < 0.90 else None
    )


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        (ratio(16, 100), None),  # still behind
        (ratio(15, 100), None),  # at the target
        (ratio(14, 100), None),  # inside the band
        (ratio(131, 1000), None),
        (ratio(13, 100), "resolved"),  # exactly the hysteresis past it
        (ratio(12, 100), "resolved"),
        (ratio(0, 100), "resolved"),
    ],
)
def test_a_raised_max_ratio_resolves_only_past_the_hysteresis(
    reading: Reading, expected: str | None
) -> None:
    assert next_state(MISSED, AT_MOST_15, reading, True, TARGETS) == expected


def test_a_raised_ratio_with_too_few_visits_stays_raised() -> None:
    # 19/19 would resolve with enough visits; 19 is below min_denominator.
    assert next_state(IMMUNISATION, AT_LEAST_90, ratio(19, 19), True, TARGETS) is None
    assert next_state(IMMUNISATION, AT_LEAST_90, ratio(20, 20), True, TARGETS) == "resolved"


def _configured_ratio_targets() -> list[Any]:
    targets = load_targets(CONFIG)
    # at_risk_referral_rate once failed here: 0.80 + 0.02 is 0.8200000000000001 in
    # binary floating point, above 41/50; next_state now allows for that rounding.
    return [
        pytest.param(indicator, target, id=indicator)
        for indicator, target in sorted(targets.defaults.items())
    ]


@pytest.mark.parametrize(("indicator", "target"), _configured_ratio_targets())
def test_each_configured_ratio_resolves_exactly_at_target_plus_hysteresis(
    indicator: str, target: Target
) -> None:
    """SPEC §4: resolved "when the value is back past the target by the hysteresis". A
    value exactly hysteresis past the configured target, reached as a plain fraction of
    visits (e.g. 46/50 for 0.90 + 0.02), resolves."""
    targets = load_targets(CONFIG)
    step = Fraction(str(targets.hysteresis))
    bound = Fraction(str(target.bound))
    goal = bound + step if target.min is not None else bound - step
    visits = goal.denominator * targets.min_denominator
    reading = Reading(goal.numerator * targets.min_denominator / visits, visits)
    assert reading.value == float(goal)
    assert next_state(indicator, target, reading, True, targets) == "resolved"
    # And a thousandth less far does not.
    near = goal - Fraction(1, 1000) if target.min is not None else goal + Fraction(1, 1000)
    nearer = Reading(float(near), reading.denominator)
    assert next_state(indicator, target, nearer, True, targets) is None


# --- counts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("indicator", ["visits_completed", "households_reached"])
def test_counts_ignore_the_denominator_and_the_hysteresis(indicator: str) -> None:
    wide = Targets(min_denominator=1000, hysteresis=5.0)
    for targets in (TARGETS, wide):
        assert next_state(indicator, AT_LEAST_120, count(119), False, targets) == "raised"
        assert next_state(indicator, AT_LEAST_120, count(0), False, targets) == "raised"
        assert next_state(indicator, AT_LEAST_120, count(120), False, targets) is None
        assert next_state(indicator, AT_LEAST_120, count(119), True, targets) is None
        assert next_state(indicator, AT_LEAST_120, count(120), True, targets) == "resolved"
        assert next_state(indicator, AT_LEAST_120, count(500), True, targets) == "resolved"
        at_most = Target(max=10)
        assert next_state(indicator, at_most, count(11), False, targets) == "raised"
        assert next_state(indicator, at_most, count(10), False, targets) is None
        assert next_state(indicator, at_most, count(10), True, targets) == "resolved"
        assert next_state(indicator, at_most, count(11), True, targets) is None


# --- a property: transitions alternate and follow the rules ---------------------------------------


# Bounds and hysteresis that binary floating point holds exactly, so that the oracle's
# exact arithmetic and the module's floats agree (the decimal case is tested above).
ratio_targets = st.builds(
    lambda kind, bound: Target(**{kind: bound}),
    st.sampled_from(["min", "max"]),
    st.sampled_from([0.25, 0.5, 0.75, 0.875]),
)
ratio_readings = st.integers(0, 40).flatmap(
    lambda d: st.builds(lambda n: ratio(n, d), st.integers(0, d))
)
count_readings = st.integers(0, 40).map(count)
count_targets = st.builds(
    lambda kind, bound: Target(**{kind: bound}),
    st.sampled_from(["min", "max"]),
    st.integers(0, 40).map(float),
)


def _expected(
    is_count: bool, target: Target, reading: Reading, raised: bool, targets: Targets
) -> str | None:
    """SPEC §4 in exact arithmetic."""
    if reading.value is None:
        return None
    if not is_count and (reading.denominator or 0) < targets.min_denominator:
        return None
    value = Fraction(reading.value)
    bound = Fraction(target.bound)
    margin = Fraction(0) if is_count else Fraction(targets.hysteresis)
    sign = 1 if target.min is not None else -1  # +1: higher is better
    behind = sign * (value - bound) < 0
    recovered = sign * (value - bound) >= margin
    if not raised:
        return "raised" if behind else None
    return "resolved" if recovered else None


@settings(max_examples=300, deadline=None, database=None)
@given(
    case=st.tuples(st.just(True), count_targets) | st.tuples(st.just(False), ratio_targets),
    hysteresis=st.sampled_from([0.0, 0.03125, 0.0625, 0.125]),
    min_denominator=st.integers(0, 25),
    data=st.data(),
)
def test_transitions_alternate_and_follow_the_readings(
    case: tuple[bool, Target], hysteresis: float, min_denominator: int, data: Any
) -> None:
    is_count, target = case
    targets = Targets(min_denominator=min_denominator, hysteresis=hysteresis)
    indicator, readings = (
        ("households_reached", count_readings) if is_count else (IMMUNISATION, ratio_readings)
    )
    sequence = data.draw(st.lists(readings, max_size=30))
    raised = False
    last: str | None = None
    for reading in sequence:
        change = next_state(indicator, target, reading, raised, targets)
        assert change == _expected(is_count, target, reading, raised, targets)
        if change is not None:
            assert change != last, "two transitions of the same kind in a row"
            assert change == ("resolved" if raised else "raised")
            last = change
            raised = change == "raised"
        # The state after each step follows from the transitions so far.
        assert raised == (last == "raised")
        if change == "raised":
            assert reading.value is not None
            assert reading.value != target.bound
            assert (reading.value < target.bound) == (target.min is not None)
        if change == "resolved":
            assert reading.value is not None
            assert (reading.value >= target.bound) == (target.min is not None) or (
                reading.value == target.bound
            )
    assert (last == "raised") == raised
