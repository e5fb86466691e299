"""Readable terminal tables for `vizita indicators` and `vizita alerts`."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.alerts import ALERT_WINDOW
from vizita.contracts import COUNT_INDICATORS, INDICATORS, MUNICIPALITIES

SHORT = {
    "visits_completed": "visits", "households_reached": "households",
    "immunisation_counselling_coverage": "immunis.",
    "breastfeeding_counselling_coverage": "breastf.",
    "maternal_health_counselling_coverage": "maternal", "early_stimulation_coverage": "stimul.",
    "at_risk_referral_rate": "referral", "missed_visit_rate": "missed",
    "visits_per_nurse": "per nurse",
}  # fmt: skip


def print_json(rows: list[dict[str, Any]]) -> None:
    print(json.dumps(rows, default=str))


def fmt(indicator: str, value: float | None) -> str:
    if value is None:
        return "—"
    if indicator in COUNT_INDICATORS:
        return f"{value:.0f}"
    return f"{value:.2f}" if indicator == "visits_per_nurse" else f"{value:.0%}"


def values_at_alert_window(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float | None]:
    """(municipality, indicator) -> value on the window the targets are set on."""
    return {
        (r["municipality"], r["indicator"]): r["value"]
        for r in rows
        if r["window_days"] == ALERT_WINDOW
    }


def _name(code: str) -> str:
    return MUNICIPALITIES[code][0] if code in MUNICIPALITIES else "Kosovo (ALL)"


def indicators_table(rows: list[dict[str, Any]], as_of: date | None, *, single: bool) -> None:
    if single:
        table = Table(title=f"{_name(rows[0]['municipality'])} on {as_of}")
        for column in ("indicator", "7 days", "30 days", "30-day numerator / denominator"):
            table.add_column(column, justify="left" if column == "indicator" else "right")
        by_key = {(r["indicator"], r["window_days"]): r for r in rows}
        for name in INDICATORS:
            week, month = by_key.get((name, 7), {}), by_key.get((name, 30), {})
            share = f"{month.get('numerator', '—')} / {month.get('denominator') or '—'}"
            table.add_row(name, fmt(name, week.get("value")), fmt(name, month.get("value")), share)
    else:
        table = Table(title=f"30-day indicators on {as_of}")
        table.add_column("municipality")
        for name in INDICATORS:
            table.add_column(SHORT[name], justify="right")
        monthly = values_at_alert_window(rows)
        for code in sorted({r["municipality"] for r in rows}, key=lambda c: (c == "ALL", c)):
            table.add_row(_name(code), *(fmt(n, monthly.get((code, n))) for n in INDICATORS))
    Console().print(table)


def alerts_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"Active alerts: {len(rows)}")
    for column in ("municipality", "indicator", "value", "target", "denominator", "as of"):
        table.add_column(column)
    for row in rows:
        name = row["indicator"]
        denominator = "—" if row["denominator"] is None else str(row["denominator"])
        table.add_row(_name(row["municipality"]), name, fmt(name, row["value"]),
                      fmt(name, row["target"]), denominator, str(row["as_of"]))  # fmt: skip
    Console().print(table)
