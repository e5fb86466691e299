"""Targets and alerts (SPEC §4), as pure functions: no Faust here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vizita.contracts import COUNT_INDICATORS, MUNICIPALITIES, Indicator, Municipality

ALERT_WINDOW = 30


class Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Target:
        if (self.min is None) == (self.max is None):
            raise ValueError("a target has exactly one of min or max")
        return self

    @property
    def bound(self) -> float:
        return self.min if self.min is not None else self.max  # type: ignore[return-value]  # one is set


class Targets(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_denominator: int = Field(ge=0)
    hysteresis: float = Field(ge=0)
    defaults: dict[Indicator, Target] = {}
    municipalities: dict[Municipality, dict[Indicator, Target]] = {}

    def for_municipality(self, municipality: str) -> dict[str, Target]:
        merged: dict[str, Target] = {str(k): v for k, v in self.defaults.items()}
        for code, overrides in self.municipalities.items():
            if code == municipality:
                merged.update({str(k): v for k, v in overrides.items()})
        return merged


def load_targets(path: Path) -> Targets:
    return Targets.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@dataclass(frozen=True, slots=True)
class Reading:
    """One municipality's 30-day value of one indicator at the clock day."""

    value: float | None
    denominator: int | None


State = Literal["raised", "resolved"]


# Values are ratios of counts and targets decimals: 0.80 + 0.02 is 0.8200000000000001
# in binary, so comparisons allow for that much rounding.
_ROUNDING = 1e-9


def _behind(target: Target, value: float) -> bool:
    if target.min is not None:
        return value < target.bound - _ROUNDING
    return value > target.bound + _ROUNDING


def _recovered(target: Target, value: float, margin: float) -> bool:
    if target.min is not None:
        return value >= target.bound + margin - _ROUNDING
    return value <= target.bound - margin + _ROUNDING


def next_state(
    indicator: str, target: Target, reading: Reading, raised: bool, targets: Targets
) -> State | None:
    """The transition this reading causes, or None. A ratio whose denominator is below
    `min_denominator` (or 0, value null) changes nothing; counts resolve once back at
    the target, ratios only past it by the hysteresis."""
    if reading.value is None:
        return None
    is_count = indicator in COUNT_INDICATORS
    if not is_count and (reading.denominator or 0) < targets.min_denominator:
        return None
    if not raised and _behind(target, reading.value):
        return "raised"
    margin = 0.0 if is_count else targets.hysteresis
    if raised and _recovered(target, reading.value, margin):
        return "resolved"
    return None


def municipalities_with_targets(targets: Targets) -> dict[str, dict[str, Target]]:
    return {code: targets.for_municipality(code) for code in MUNICIPALITIES}
