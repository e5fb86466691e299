"""What people read on the dashboards: municipality labels, indicator titles and units.
The codes and indicator names themselves come from vizita.contracts."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from vizita.contracts import ALL_KOSOVO, COUNT_INDICATORS, INDICATORS, MUNICIPALITIES

# English names only where English usage differs from both official names.
_ENGLISH = {
    "prishtine": "Pristina",
    "mitrovice_jugore": "South Mitrovica",
    "mitrovice_veriore": "North Mitrovica",
}
ALL_LABEL = "Kosova / Kosovo (all)"


def municipality_label(code: str) -> str:
    """`Albanian / Serbian`, plus the English name where it differs: 'Prishtinë /
    Priština (Pristina)'. `ALL` is all of Kosovo."""
    if code == ALL_KOSOVO:
        return ALL_LABEL
    albanian, serbian = MUNICIPALITIES[code]
    label = albanian if albanian == serbian else f"{albanian} / {serbian}"
    return f"{label} ({_ENGLISH[code]})" if code in _ENGLISH else label


def _folded(text: str) -> str:
    """For sorting: 'Kaçanik' between 'Junik' and 'Kamenicë', not after 'Kamenicë'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def municipality_options() -> list[tuple[str, str]]:
    """(label, code) for the municipality picker: all of Kosovo first, then A to Z."""
    codes = sorted(MUNICIPALITIES, key=lambda code: _folded(municipality_label(code)))
    return [(municipality_label(code), code) for code in (ALL_KOSOVO, *codes)]


@dataclass(frozen=True)
class IndicatorDisplay:
    title: str
    unit: str  # a Grafana unit id
    decimals: int


_TITLES = {
    "visits_completed": "Completed visits",
    "households_reached": "Households reached",
    "immunisation_counselling_coverage": "Immunisation counselling (0-23 months)",
    "breastfeeding_counselling_coverage": "Breastfeeding counselling (0-5 months)",
    "maternal_health_counselling_coverage": "Maternal health counselling",
    "early_stimulation_coverage": "Early stimulation counselling",
    "at_risk_referral_rate": "At-risk children referred",
    "missed_visit_rate": "Missed visits",
    "visits_per_nurse": "Completed visits per nurse",
}
_PER_NURSE = "visits_per_nurse"  # the one ratio that is not a share


def indicator_display(indicator: str) -> IndicatorDisplay:
    title = _TITLES[indicator]
    if indicator in COUNT_INDICATORS:
        return IndicatorDisplay(title, "none", 0)
    if indicator == _PER_NURSE:
        return IndicatorDisplay(title, "none", 1)
    return IndicatorDisplay(title, "percentunit", 0)


assert set(_TITLES) == set(INDICATORS), "every indicator of the contract has a title"
