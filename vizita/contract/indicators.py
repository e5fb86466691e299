"""The indicators (SPEC §3) and their windows (SPEC §2): names, kinds, windows."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from vizita.contract.codes import one_of


class Kind(enum.StrEnum):
    """How an indicator's value reads: a count, a share of visits, or another ratio."""

    COUNT = "count"  # the value is the numerator; no denominator
    SHARE = "share"  # a fraction of visits, 0..1
    RATIO = "ratio"  # a ratio that is not a share (visits per nurse)


#: indicator -> its kind, in SPEC §3's order
KINDS: Final[Mapping[str, Kind]] = {
    "visits_completed": Kind.COUNT,
    "households_reached": Kind.COUNT,
    "immunisation_counselling_coverage": Kind.SHARE,
    "breastfeeding_counselling_coverage": Kind.SHARE,
    "maternal_health_counselling_coverage": Kind.SHARE,
    "early_stimulation_coverage": Kind.SHARE,
    "at_risk_referral_rate": Kind.SHARE,
    "missed_visit_rate": Kind.SHARE,
    "visits_per_nurse": Kind.RATIO,
    "at_risk_follow_up_rate": Kind.SHARE,
}
INDICATORS: Final[tuple[str, ...]] = tuple(KINDS)
COUNT_INDICATORS: Final[frozenset[str]] = frozenset(
    name for name, kind in KINDS.items() if kind is Kind.COUNT
)

#: indicators whose visits are followed across municipalities (a household's next
#: visit may be anywhere): computed where the visits of all of Kosovo are (stage 2)
COUNTRYWIDE_INDICATORS: Final[frozenset[str]] = frozenset({"at_risk_follow_up_rate"})
#: the others: each scope's computed from its own visits
SCOPE_INDICATORS: Final[tuple[str, ...]] = tuple(
    name for name in INDICATORS if name not in COUNTRYWIDE_INDICATORS
)

#: SPEC §3: an at-risk visit is followed up by another completed visit of its household
#: 1 to FOLLOW_UP_DAYS days later, and counts where that period ends
FOLLOW_UP_DAYS: Final = 14

#: SPEC §3's age bounds, in months: "child 0-23 months" and "child 0-5 months"
IMMUNISATION_MAX_MONTHS: Final = 23
BREASTFEEDING_MAX_MONTHS: Final = 5

#: the conditions of SPEC §3 that an effective visit may meet, each a numerator or a
#: denominator of an indicator (streams.indicators decides them; they travel as bits)
CONDITIONS: Final[tuple[str, ...]] = (
    "effective",  # every effective visit (the denominator of missed_visit_rate)
    "completed",
    "missed",
    "imm_den", "imm_num",  # child 0-23 months; and immunisation counselled
    "bf_den", "bf_num",  # child 0-5 months; and breastfeeding
    "mh_den", "mh_num",  # pregnant or prenatal/newborn visit; and maternal health
    "es_den", "es_num",  # a child; and early stimulation
    "ref_den", "ref_num",  # a risk flag; and at least one referral
)  # fmt: skip

IndicatorName = Annotated[
    str,
    one_of(frozenset(INDICATORS), "indicators of SPEC §3"),
    WithJsonSchema({"type": "string", "enum": list(INDICATORS)}),
]

# --- windows --------------------------------------------------------------------------------

WEEK: Final = 7
MONTH: Final = 30
#: the rolling windows every indicator is produced for
WINDOWS: Final[tuple[int, ...]] = (WEEK, MONTH)
#: the window the targets are set on (SPEC §4)
ALERT_WINDOW: Final = MONTH


def _a_window(days: int) -> int:
    if days not in WINDOWS:
        raise PydanticCustomError(
            "unknown_window", "Input should be one of {windows} days", {"windows": WINDOWS}
        )
    return days


WindowDays = Annotated[
    int, AfterValidator(_a_window), WithJsonSchema({"type": "integer", "enum": list(WINDOWS)})
]
