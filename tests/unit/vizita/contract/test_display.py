"""The display rules every reader shares: labels, number formats, standing."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vizita.contract.display import (
    STANDING_BACKGROUND,
    STANDING_TEXT,
    Mark,
    Standing,
    distance,
    format_distance,
    format_resolution,
    format_target,
    format_value,
    municipality_label,
    municipality_options,
    severity,
    similar_municipalities,
    standing,
    worst_first,
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


# --- colours a colour-blind reader tells apart -------------------------------------------------

# Machado, Oliveira and Fernandes (2009), severity 1.0, on linear RGB.
DICHROMACY = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
    "full colour vision": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
}  # fmt: skip
SEEN_APART = 10.0  # CIE76 ΔE: clearly different side by side


def _linear(hex_colour: str) -> list[float]:
    def channel(byte: int) -> float:
        c = byte / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return [channel(int(hex_colour[i : i + 2], 16)) for i in (1, 3, 5)]


def _lab(rgb: list[float]) -> tuple[float, float, float]:
    x = (0.4124 * rgb[0] + 0.3576 * rgb[1] + 0.1805 * rgb[2]) / 0.95047
    y = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    z = (0.0193 * rgb[0] + 0.1192 * rgb[1] + 0.9505 * rgb[2]) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _seen(hex_colour: str, matrix: tuple[tuple[float, ...], ...]) -> tuple[float, ...]:
    rgb = _linear(hex_colour)
    return _lab([min(1.0, max(0.0, sum(m * c for m, c in zip(row, rgb, strict=True))))
                 for row in matrix])  # fmt: skip


@pytest.mark.parametrize("vision", sorted(DICHROMACY))
def test_standing_colours_stay_apart_for_colour_blind_readers(vision: str) -> None:
    shown = {s: c for s, c in STANDING_BACKGROUND.items() if c}
    assert len(set(shown.values())) == len(shown)
    for (a, first), (b, second) in itertools.combinations(shown.items(), 2):
        apart = math.dist(_seen(first, DICHROMACY[vision]), _seen(second, DICHROMACY[vision]))
        assert apart >= SEEN_APART, f"{a} and {b} look alike under {vision} (ΔE {apart:.1f})"


@pytest.mark.parametrize("vision", sorted(DICHROMACY))
def test_map_classes_stay_apart_for_colour_blind_readers(vision: str) -> None:
    from vizita.app.report_map import CLASSES

    colours = [colour for _, colour, _ in CLASSES]
    for first, second in itertools.pairwise(colours):  # neighbours are the hard case
        apart = math.dist(_seen(first, DICHROMACY[vision]), _seen(second, DICHROMACY[vision]))
        assert apart >= SEEN_APART, f"{first} and {second} under {vision}"


def test_every_standing_has_a_text_marker_or_no_colour() -> None:
    for status, colour in STANDING_BACKGROUND.items():
        marker, meaning = STANDING_TEXT[status]
        assert meaning
        if status in (Standing.ALERTED, Standing.BEHIND, Standing.TOO_FEW):
            assert marker.strip(), status  # a warning is never in colour alone
        assert colour or not marker


# --- how far, who is worst ---------------------------------------------------------------------


def test_distance_is_points_for_shares_and_a_fraction_of_the_target_else() -> None:
    assert distance("missed_visit_rate", Target(max=0.15), 0.20) == pytest.approx(-0.05)
    assert distance("immunisation_counselling_coverage", Target(min=0.9), 0.95) == (
        pytest.approx(0.05)
    )
    assert distance("visits_completed", Target(min=120), 90) == pytest.approx(-0.25)
    assert format_distance("missed_visit_rate", Target(max=0.15), 0.20) == "5.0 points behind"
    assert format_distance("visits_completed", Target(min=120), 90) == "25% behind"
    assert format_distance("visits_completed", Target(min=120), 120) == "on target"


def test_where_an_alert_resolves() -> None:
    assert format_resolution("missed_visit_rate", Target(max=0.15), 0.02) == "≤ 13.0%"
    assert format_resolution("visits_completed", Target(min=120), 0.0) == "≥ 120"


def test_worst_first_counts_targets_behind_then_how_far_then_too_few() -> None:
    far, near = Mark(Standing.BEHIND, -0.3), Mark(Standing.BEHIND, -0.01)
    ahead, few = Mark(Standing.ON_TARGET, 0.1), Mark(Standing.TOO_FEW, -0.5)
    marks = {
        "junik": [near, near],  # two targets, a little behind on each
        "peje": [far, ahead],  # one target, far behind
        "decan": [Mark(Standing.ALERTED, 0.01), ahead],  # alerted counts as behind
        "viti": [few, ahead],
        "istog": [ahead, ahead],
        "gjilan": [ahead, ahead],
    }
    assert worst_first(marks) == ["junik", "peje", "decan", "viti", "gjilan", "istog"]
    assert severity([far, near, few, ahead]) == (2, pytest.approx(0.31), 1)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("prizen", ["prizren"]), ("Pristina", ["prishtine"]), ("gjakova", ["gjakove"]),
     ("Peć", ["peje"]), ("all", ["ALL"]), ("zzzz", [])],
)  # fmt: skip
def test_close_matches_of_a_mistyped_municipality(typed: str, expected: list[str]) -> None:
    assert similar_municipalities(typed)[:1] == expected
