"""The terminal: `vizita alerts` and `vizita indicators` read as people read, and the
demo's live view fits a 100 x 40 terminal with Kosovo and the alert feed always on it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from rich.console import Console, RenderableType

from vizita.app.demo import ViewData, render_view, shown_indicators
from vizita.app.views import alerts_view, every_municipality, one_municipality
from vizita.contract.display import municipality_label, title
from vizita.contract.indicators import COUNT_INDICATORS, INDICATORS
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES, SCOPES
from vizita.contract.targets import Target, Targets

TARGETS = Targets(
    min_denominator=20, hysteresis=0.02,
    defaults={"immunisation_counselling_coverage": Target(min=0.9),
              "missed_visit_rate": Target(max=0.15)},
    municipalities={"prizren": {"visits_completed": Target(min=120)}},
)  # fmt: skip
DAY = date(2026, 3, 1)
RANKED = re.compile(r"^ ?\d{1,2} \S")  # a municipality's line in the live view


def screen(renderable: RenderableType, width: int = 100, height: int = 40) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None)
    console.print(renderable)
    return console.export_text().rstrip("\n").split("\n")


def _alert(code: str, indicator: str, value: float, target: float) -> dict[str, Any]:
    return {"municipality": code, "indicator": indicator, "window_days": 30, "state": "raised",
            "value": value, "target": target, "denominator": 40, "as_of": DAY,
            "emitted_at": datetime(2026, 3, 1, 9, tzinfo=UTC)}  # fmt: skip


def test_alerts_read_with_names_targets_and_precision() -> None:
    rows = [
        _alert("mitrovice_veriore", "immunisation_counselling_coverage", 0.8999, 0.9),
        _alert("prizren", "missed_visit_rate", 0.15004, 0.15),
    ]
    text = "\n".join(screen(alerts_view(rows, TARGETS), width=200))
    assert municipality_label("mitrovice_veriore") in text  # whole, not cut off
    assert title("immunisation_counselling_coverage") in text
    assert "89.99% (of 40)" in text  # not "90.0%" against "≥ 90.0%"
    assert "15.004% (of 40)" in text
    assert "≥ 90.0%" in text
    assert "≤ 13.0%" in text  # where it resolves
    assert "immunisation_counselling_coverage" not in text


def _rows(values: dict[tuple[str, str], float]) -> list[dict[str, Any]]:
    rows = []
    for code in SCOPES:
        for name in INDICATORS:
            value = values.get((code, name), 150.0 if name in COUNT_INDICATORS else 0.95)
            if name == "missed_visit_rate":
                value = values.get((code, name), 0.05)
            for window in (7, 30):
                rows.append({"municipality": code, "indicator": name, "window_days": window,
                             "numerator": 1, "value": value,
                             "denominator": None if name in COUNT_INDICATORS else 40})  # fmt: skip
    return rows


def test_indicators_of_every_municipality_worst_first_with_targets() -> None:
    rows = _rows({("peje", "missed_visit_rate"): 0.3,
                  ("gjilan", "immunisation_counselling_coverage"): 0.899})  # fmt: skip
    lines = screen(every_municipality(rows, DAY, TARGETS, []), width=250)
    named = [line for line in lines if re.match(r"│ \d+\. ", line)]
    assert len(named) == 38
    assert named[0].startswith("│ 1. Pejë / Peć ")
    assert named[1].startswith("│ 2. Gjilan / Gnjilane ")
    assert "▼ 30.0% /40" in named[0]
    assert "▼ 89.9% /40" in named[1]
    target_row = next(line for line in lines if line.startswith("│ target "))
    assert "≥ 90.0%" in target_row
    assert "≤ 15.0%" in target_row
    assert any(line.startswith(f"│ {municipality_label(ALL_KOSOVO)}") for line in lines)


def test_one_municipality_has_titles_targets_and_standing() -> None:
    rows = [
        r for r in _rows({("prizren", "visits_completed"): 80.0}) if r["municipality"] == "prizren"
    ]
    text = "\n".join(screen(one_municipality(rows, DAY, TARGETS, []), width=200))
    assert "Prizren on 2026-03-01" in text
    assert title("visits_completed") in text
    assert "≥ 120" in text
    assert "▼ 80" in text
    assert "behind the target" in text


# --- the demo's live view ---------------------------------------------------------------------


def _view(**changes: Any) -> ViewData:
    monthly = {(r["municipality"], r["indicator"]): r for r in _rows({}) if r["window_days"] == 30}
    for position, code in enumerate(MUNICIPALITIES):  # every municipality a little different
        monthly[(code, "missed_visit_rate")] = {"value": 0.10 + position / 200, "denominator": 40}
    feed = [_alert("prizren", "missed_visit_rate", 0.3, 0.15) for _ in range(20)]
    values: dict[str, Any] = {"as_of": DAY, "monthly": monthly, "alerts": feed[:3], "feed": feed,
                              "dead_letters": [{"reason": "invalid_json", "n": 4}],
                              "targets": TARGETS}  # fmt: skip
    return ViewData(**(values | changes))


@pytest.mark.parametrize("page", [0, 1, 2])
def test_the_live_view_fits_100_by_40(page: int) -> None:
    lines = screen(render_view(_view(), 100, 40, page))
    assert len(lines) <= 40
    assert max(len(line) for line in lines) <= 100
    assert any(municipality_label(ALL_KOSOVO) in line for line in lines)  # Kosovo, every page
    feed = lines.index(next(line for line in lines if line.startswith("Alert feed")))
    assert "raised" in lines[feed + 1]
    assert "Missed visits 30.0% (of 40), target ≤ 15.0%" in lines[feed + 1]


def test_the_live_view_shows_the_worst_first_and_pages_through_the_rest() -> None:
    first, second = (screen(render_view(_view(), 100, 40, page)) for page in (0, 1))
    ranked = [line for line in first if RANKED.match(line)]
    # missed visits rise through the table's order: the last municipality is the worst
    worst = list(MUNICIPALITIES)[-1]
    assert municipality_label(worst)[:12] in ranked[0]
    assert ranked[0].lstrip().startswith("1 ")
    rest = [line for line in second if RANKED.match(line)]
    assert rest
    assert rest[0].lstrip().startswith(f"{len(ranked) + 1} ")
    seen = {line.split()[0] for line in ranked + rest}
    assert seen == {str(n) for n in range(1, 39)}  # every municipality on one page or other
    assert any("page 1/2" in line for line in first)


def test_the_live_view_columns_follow_the_targets() -> None:
    assert shown_indicators(TARGETS) == [
        "visits_completed", "immunisation_counselling_coverage", "missed_visit_rate",
    ]  # fmt: skip
