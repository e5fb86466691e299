from __future__ import annotations

from dashboards.units import indicator_display
from vizita.contract.display import DECIMALS
from vizita.contract.indicators import INDICATORS, KINDS


def test_every_indicator_has_a_title_and_shares_are_percentages() -> None:
    displays = {name: indicator_display(name) for name in INDICATORS}
    assert all(d.title for d in displays.values())
    assert displays["missed_visit_rate"].unit == "percentunit"
    assert displays["visits_completed"].unit == displays["visits_per_nurse"].unit == "none"


def test_panels_show_the_decimals_the_terminal_and_the_report_show() -> None:
    for name in INDICATORS:
        assert indicator_display(name).decimals == DECIMALS[KINDS[name]]
