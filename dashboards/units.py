"""How a panel shows an indicator: the contract's title and decimals, in Grafana's units."""

from __future__ import annotations

from dataclasses import dataclass

from vizita.contract.display import DECIMALS, TITLES
from vizita.contract.indicators import KINDS, Kind

# Grafana unit ids: "percentunit" shows 0.923 as 92.3 %.
_UNITS = {Kind.COUNT: "none", Kind.SHARE: "percentunit", Kind.RATIO: "none"}


@dataclass(frozen=True)
class IndicatorDisplay:
    title: str
    unit: str  # a Grafana unit id
    decimals: int


def indicator_display(indicator: str) -> IndicatorDisplay:
    kind = KINDS[indicator]
    return IndicatorDisplay(TITLES[indicator], _UNITS[kind], DECIMALS[kind])
