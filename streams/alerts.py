"""The alert state machine (SPEC §4), pure: no Faust here. What "behind" means is
the contract's (`vizita.contract.targets`); here is when a reading raises or resolves."""

from __future__ import annotations

from vizita.contract.targets import AlertState, Reading, Target, Targets


def next_state(
    indicator: str, target: Target, reading: Reading, raised: bool, targets: Targets
) -> AlertState | None:
    """The transition this reading causes, or None. A ratio whose denominator is below
    `min_denominator` (or 0, value null) changes nothing; counts resolve once back at
    the target, ratios only past it by the hysteresis."""
    if not targets.decides(indicator, reading) or reading.value is None:
        return None
    if not raised and target.is_behind(reading.value):
        return "raised"
    if raised and target.is_past(reading.value, targets.margin(indicator)):
        return "resolved"
    return None
