"""How Vizita shows things to people, the same on the terminal, in the HTML report
and on the dashboards: municipality labels, indicator titles, number formats, and how
a municipality stands against a target.

A value behind its target is never shown as if it met it: where the usual precision
would round it onto the target (15.04% against ≤ 15.0%), it gets the decimals that
tell them apart.
"""

from __future__ import annotations

import difflib
import enum
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from vizita.contract.indicators import FOLLOW_UP_DAYS, INDICATORS, KINDS, Kind
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.targets import ROUNDING, Reading, Target, Targets

# --- municipalities -----------------------------------------------------------------------

KOSOVO_LABEL: Final = "Kosova / Kosovo (all)"


def municipality_label(code: str) -> str:
    """'Albanian / Serbian' (once when they are the same), then the English name where
    it differs from both: 'Prishtinë / Priština (Pristina)'. `ALL` is all of Kosovo;
    a code the contract does not know is shown as it is."""
    if code == ALL_KOSOVO:
        return KOSOVO_LABEL
    place = MUNICIPALITIES.get(code)
    if place is None:
        return code
    label = (
        place.albanian if place.albanian == place.serbian else f"{place.albanian} / {place.serbian}"
    )
    return f"{label} ({place.english})" if place.english else label


def _folded(text: str) -> str:
    """For sorting: 'Kaçanik' between 'Junik' and 'Kamenicë', not after 'Kamenicë'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def by_label(codes: list[str]) -> list[str]:
    """Municipality codes in the alphabetical order of their labels."""
    return sorted(codes, key=lambda code: _folded(municipality_label(code)))


def municipality_options() -> list[tuple[str, str]]:
    """(label, code) for a municipality picker: all of Kosovo first, then A to Z."""
    return [
        (municipality_label(code), code) for code in (ALL_KOSOVO, *by_label(list(MUNICIPALITIES)))
    ]


#: a visit recorded without its Family Medicine Centre (`facility_id` null)
NO_FACILITY: Final = "(no centre recorded)"


def similar_municipalities(text: str, limit: int = 3) -> list[str]:
    """The codes whose code or names come closest to `text` (a mistyped code, or a
    name typed instead of the code), best first: for "did you mean" messages."""
    wanted = _folded(text).casefold().strip()
    names: dict[str, str] = {ALL_KOSOVO.casefold(): ALL_KOSOVO}
    for code, place in MUNICIPALITIES.items():
        for name in (code, place.albanian, place.serbian, place.english):
            if name:
                names.setdefault(_folded(name).casefold(), code)
    found: list[str] = []
    for name in difflib.get_close_matches(wanted, list(names), n=limit * 3, cutoff=0.6):
        if names[name] not in found:
            found.append(names[name])
    return found[:limit]


# --- indicators -----------------------------------------------------------------------------

#: indicator -> what people call it
TITLES: Final[Mapping[str, str]] = {
    "visits_completed": "Completed visits",
    "households_reached": "Households reached",
    "immunisation_counselling_coverage": "Immunisation counselling (0-23 months)",
    "breastfeeding_counselling_coverage": "Breastfeeding counselling (0-5 months)",
    "maternal_health_counselling_coverage": "Maternal health counselling",
    "early_stimulation_coverage": "Early stimulation counselling",
    "at_risk_referral_rate": "At-risk children referred",
    "missed_visit_rate": "Missed visits",
    "visits_per_nurse": "Completed visits per nurse",
    "at_risk_follow_up_rate": f"At-risk visits followed up within {FOLLOW_UP_DAYS} days",
}
#: indicator -> a column heading for narrow tables
SHORT: Final[Mapping[str, str]] = {
    "visits_completed": "visits",
    "households_reached": "households",
    "immunisation_counselling_coverage": "immunis.",
    "breastfeeding_counselling_coverage": "breastf.",
    "maternal_health_counselling_coverage": "maternal",
    "early_stimulation_coverage": "stimul.",
    "at_risk_referral_rate": "referral",
    "missed_visit_rate": "missed",
    "visits_per_nurse": "per nurse",
    "at_risk_follow_up_rate": "follow-up",
}
#: decimals of each kind of value (of the percentage, for shares)
DECIMALS: Final[Mapping[Kind, int]] = {Kind.COUNT: 0, Kind.SHARE: 1, Kind.RATIO: 2}
_MORE_DECIMALS = 8  # enough to tell any ratio of counts from a target of 2 decimals
NO_VALUE: Final = "—"

assert set(TITLES) == set(SHORT) == set(INDICATORS), "every indicator has a title and a heading"


def title(indicator: str) -> str:
    """What people call an indicator; a name the contract does not know, as it is."""
    return TITLES.get(indicator, indicator)


def short(indicator: str) -> str:
    return SHORT.get(indicator, indicator)


def _kind(indicator: str) -> Kind:
    # A name the contract does not know (a store written by another version) reads as a
    # plain number rather than failing the page.
    return KINDS.get(indicator, Kind.RATIO)


def is_share(indicator: str) -> bool:
    return _kind(indicator) is Kind.SHARE


def _render(indicator: str, value: float, decimals: int) -> str:
    if is_share(indicator):
        return f"{value:.{decimals}%}"
    return f"{value:.{decimals}f}"


def _shown(indicator: str, value: float, decimals: int) -> float:
    """The number a reader sees (a percentage for shares)."""
    return float(_render(indicator, value, decimals).rstrip("%"))


def format_value(indicator: str, value: float | None, target: Target | None = None) -> str:
    """The value as people read it: counts whole, shares as percentages with one
    decimal, visits per nurse with two. With a target, a value behind it gets the
    decimals that show it behind."""
    if value is None:
        return NO_VALUE
    decimals = DECIMALS[_kind(indicator)]
    if target is not None and target.is_behind(value):
        bound = _shown(indicator, target.bound, decimals)
        while decimals < _MORE_DECIMALS and not _reads_behind(
            target, _shown(indicator, value, decimals), bound
        ):
            decimals += 1
    return _render(indicator, value, decimals)


def _reads_behind(target: Target, shown: float, bound: float) -> bool:
    return shown < bound if target.is_minimum else shown > bound


def format_target(indicator: str, target: Target | None) -> str:
    """'≥ 90.0%', '≤ 15.0%', '≥ 120'; '—' for none."""
    if target is None:
        return NO_VALUE
    return ("≥ " if target.is_minimum else "≤ ") + format_value(indicator, target.bound)


# --- standing against a target ---------------------------------------------------------------


class Standing(enum.StrEnum):
    """How one municipality stands on one indicator."""

    ALERTED = "alerted"  # an alert is raised (active_alerts)
    BEHIND = "behind"  # behind the target, with enough visits to raise an alert
    TOO_FEW = "few"  # behind, but too few visits to raise an alert
    ON_TARGET = "ahead"  # on or past the target
    NO_TARGET = "no_target"
    NO_DATA = "no_data"  # no value: no eligible visits


#: standing -> (a text marker, so colour is never the only signal; what it means)
STANDING_TEXT: Final[Mapping[Standing, tuple[str, str]]] = {
    Standing.ALERTED: ("⚑ ", "alert raised (active_alerts)"),
    Standing.BEHIND: ("▼ ", "behind the target"),
    Standing.TOO_FEW: ("▽ ", "behind, but too few visits to raise an alert"),
    Standing.ON_TARGET: ("", "on or past the target"),
    Standing.NO_TARGET: ("", "no target set"),
    Standing.NO_DATA: ("", "no value (no eligible visits)"),
}


def standing(
    indicator: str, target: Target | None, reading: Reading, *, alerted: bool, targets: Targets
) -> Standing:
    """'Behind' is SPEC §4's rule (`Targets.is_behind`), so what people see never
    disagrees with the alerts."""
    if alerted:
        return Standing.ALERTED
    if reading.value is None:
        return Standing.NO_DATA
    if target is None:
        return Standing.NO_TARGET
    if targets.is_behind(indicator, target, reading):
        return Standing.BEHIND
    if target.is_behind(reading.value):
        return Standing.TOO_FEW
    return Standing.ON_TARGET


def format_resolution(indicator: str, target: Target, margin: float) -> str:
    """Where a raised alert resolves (SPEC §4's hysteresis): '≤ 13.0%' for a maximum of
    15% and a margin of 2 points. A value between this and the target is on target yet
    still alerted; saying where the alert ends keeps that from reading as a mistake."""
    bound = target.bound + margin if target.is_minimum else target.bound - margin
    return ("≥ " if target.is_minimum else "≤ ") + format_value(indicator, bound)


#: standing -> a background a colour-blind reader tells apart from every other one
#: (ColorBrewer's PuOr, checked under simulated protanopia, deuteranopia and
#: tritanopia in the tests); "" for none. Never alone: STANDING_TEXT says it again.
STANDING_BACKGROUND: Final[Mapping[Standing, str]] = {
    Standing.ALERTED: "#e66101",
    Standing.BEHIND: "#fdb863",
    Standing.TOO_FEW: "#fee8c8",
    Standing.ON_TARGET: "#b2abd2",
    Standing.NO_TARGET: "",
    Standing.NO_DATA: "#eeeeee",
}
#: standing -> the terminal's style for it (rich), the same hues
STANDING_STYLE: Final[Mapping[Standing, str]] = {
    Standing.ALERTED: "bold black on #e66101",
    Standing.BEHIND: "black on #fdb863",
    Standing.TOO_FEW: "black on #fee8c8",
    Standing.ON_TARGET: "",
    Standing.NO_TARGET: "",
    Standing.NO_DATA: "dim",
}

# --- how far from a target, and who is worst --------------------------------------------------


def distance(indicator: str, target: Target, value: float) -> float:
    """How far past the target a value is (negative: behind), on one scale for every
    indicator: percentage points for shares (as a fraction: 0.05 is 5 points), a
    fraction of the target for counts and other ratios (-0.25: a quarter short)."""
    gap = value - target.bound if target.is_minimum else target.bound - value
    if is_share(indicator) or target.bound == 0:
        return gap
    return gap / abs(target.bound)


def format_distance(indicator: str, target: Target, value: float) -> str:
    """'4.2 points behind', '33% behind', '2.0 points past', 'on target'."""
    gap = distance(indicator, target, value)
    if abs(gap) < ROUNDING:
        return "on target"
    side = "behind" if gap < 0 else "past"
    if is_share(indicator):
        return f"{abs(gap) * 100:.1f} points {side}"
    return f"{abs(gap):.0%} {side}"


@dataclass(frozen=True, slots=True)
class Mark:
    """How one municipality stands on one indicator, and how far from its target
    (None: no target or no value)."""

    standing: Standing
    distance: float | None = None


def assess(
    indicator: str, target: Target | None, reading: Reading, *, alerted: bool, targets: Targets
) -> Mark:
    status = standing(indicator, target, reading, alerted=alerted, targets=targets)
    if target is None or reading.value is None:
        return Mark(status)
    return Mark(status, distance(indicator, target, reading.value))


#: the standings that count as behind a target when ranking municipalities
BEHIND: Final = frozenset({Standing.ALERTED, Standing.BEHIND})


def severity(marks: Iterable[Mark]) -> tuple[int, float, int]:
    """How badly a municipality does: the targets it is behind on (SPEC §4's behind, or
    alerted), how far behind it is on them in all (the sum of `distance`s), and the
    targets it is behind on with too few visits to say."""
    marks = list(marks)
    behind = [m for m in marks if m.standing in BEHIND]
    shortfall = sum(max(0.0, -(m.distance or 0.0)) for m in behind)
    return len(behind), shortfall, sum(m.standing is Standing.TOO_FEW for m in marks)


def worst_first(marks: Mapping[str, Iterable[Mark]]) -> list[str]:
    """Municipality codes, worst first: behind on more targets, then further behind,
    then more targets too close to call; ties alphabetically by label."""
    scored = {code: severity(found) for code, found in marks.items()}
    return sorted(
        scored,
        key=lambda code: (
            -scored[code][0],
            -scored[code][1],
            -scored[code][2],
            _folded(municipality_label(code)),
        ),
    )
