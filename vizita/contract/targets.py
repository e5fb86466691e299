"""Targets and what "behind" means (SPEC §4). The alert state machine built on these
rules is `streams.alerts`; the terminal, the report and the dashboards colour by them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vizita.contract.errors import ConfigError
from vizita.contract.indicators import COUNT_INDICATORS, IndicatorName
from vizita.contract.municipalities import MUNICIPALITIES, MunicipalityCode

AlertState = Literal["raised", "resolved"]

# Values are ratios of counts and targets decimals: 0.80 + 0.02 is 0.8200000000000001
# in binary, so comparisons allow for that much rounding.
ROUNDING = 1e-9


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

    @property
    def is_minimum(self) -> bool:
        return self.min is not None

    def is_behind(self, value: float) -> bool:
        """On the wrong side of the target."""
        if self.is_minimum:
            return value < self.bound - ROUNDING
        return value > self.bound + ROUNDING

    def is_past(self, value: float, margin: float) -> bool:
        """Back past the target by `margin` (where a raised alert resolves)."""
        if self.is_minimum:
            return value >= self.bound + margin - ROUNDING
        return value <= self.bound - margin + ROUNDING


@dataclass(frozen=True, slots=True)
class Reading:
    """One municipality's value of one indicator, with its denominator."""

    value: float | None
    denominator: int | None


class Targets(BaseModel):
    """`config/targets.yaml`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_denominator: int = Field(ge=0)
    hysteresis: float = Field(ge=0)
    defaults: dict[IndicatorName, Target] = {}
    municipalities: dict[MunicipalityCode, dict[IndicatorName, Target]] = {}

    def for_municipality(self, municipality: str) -> dict[str, Target]:
        """The default targets with the municipality's own on top."""
        return {**self.defaults, **self.municipalities.get(municipality, {})}

    def every_municipality(self) -> dict[str, dict[str, Target]]:
        return {code: self.for_municipality(code) for code in MUNICIPALITIES}

    def decides(self, indicator: str, reading: Reading) -> bool:
        """Whether a reading may change an alert: it has a value, and a ratio's
        denominator is at least `min_denominator` (counts have no minimum)."""
        if reading.value is None:
            return False
        return indicator in COUNT_INDICATORS or (reading.denominator or 0) >= self.min_denominator

    def margin(self, indicator: str) -> float:
        """How far past the target a raised alert resolves: counts at the target."""
        return 0.0 if indicator in COUNT_INDICATORS else self.hysteresis

    def is_behind(self, indicator: str, target: Target, reading: Reading) -> bool:
        """SPEC §4's "behind": on the wrong side, with a denominator that decides."""
        return (
            self.decides(indicator, reading)
            and reading.value is not None
            and target.is_behind(reading.value)
        )


def load_targets(path: Path) -> Targets:
    """Read the targets file; ConfigError says what is wrong with it."""
    try:
        return Targets.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the targets file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {_first_line(str(exc))}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe(exc)}") from exc


def describe(exc: ValidationError) -> str:
    """A validation error as one line: every problem, `where: what`."""
    return "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'file'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
