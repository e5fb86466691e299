"""The code lists of the visit event (SPEC §1), each written once as a Literal; the
tuples are read off the Literals."""

from __future__ import annotations

from typing import Final, Literal, get_args

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

Op = Literal["upsert", "void"]
VisitType = Literal["prenatal", "newborn", "routine", "follow_up"]
Outcome = Literal["completed", "not_home", "refused"]
CounsellingTopic = Literal[
    "immunisation", "breastfeeding", "nutrition", "early_stimulation",
    "injury_prevention", "responsive_parenting", "maternal_health",
]  # fmt: skip
RiskFlag = Literal["developmental_delay", "disability", "violence_risk"]
Referral = Literal[
    "social_services", "specialist_care", "child_protection", "early_childhood_education"
]

VISIT_TYPES: Final[tuple[str, ...]] = get_args(VisitType)
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)
TOPICS: Final[tuple[str, ...]] = get_args(CounsellingTopic)
RISK_FLAGS: Final[tuple[str, ...]] = get_args(RiskFlag)
REFERRALS: Final[tuple[str, ...]] = get_args(Referral)
#: outcomes that make a visit missed (SPEC §3, `missed_visit_rate`)
MISSED_OUTCOMES: Final[frozenset[str]] = frozenset({"not_home", "refused"})


def one_of(codes: frozenset[str], what: str) -> BeforeValidator:
    """A rule for a code field whose codes come from a table rather than a Literal:
    any other value, of any type, is an unknown code."""

    def check(value: object) -> object:
        if isinstance(value, str) and value in codes:
            return value
        raise PydanticCustomError("unknown_code", f"Input should be one of the {what}")

    return BeforeValidator(check)
