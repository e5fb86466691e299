"""Readable terminal tables for `vizita indicators` and `vizita alerts`."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table

from vizita.contract.display import format_value, municipality_label, short
from vizita.contract.indicators import ALERT_WINDOW, INDICATORS, WEEK
from vizita.contract.municipalities import ALL_KOSOVO


def print_json(rows: list[dict[str, Any]]) -> None:
    print(json.dumps(rows, default=str))


def values_at_alert_window(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float | None]:
    """(municipality, indicator) -> value on the window the targets are set on."""
    return {
        (r["municipality"], r["indicator"]): r["value"]
        for r in rows
        if r["window_days"] == ALERT_WINDOW
    }


def indicators_table(rows: list[dict[str, Any]], as_of: date | None, *, single: bool) -> None:
    if single:
        table = Table(title=f"{municipality_label(rows[0]['municipality'])} on {as_of}")
        for column in ("indicator", f"{WEEK} days", f"{ALERT_WINDOW} days",
                       f"{ALERT_WINDOW}-day numerator / denominator"):  # fmt: skip
            table.add_column(column, justify="left" if column == "indicator" else "right")
        by_key = {(r["indicator"], r["window_days"]): r for r in rows}
        for name in INDICATORS:
            week, month = by_key.get((name, WEEK), {}), by_key.get((name, ALERT_WINDOW), {})
            share = f"{month.get('numerator', '—')} / {month.get('denominator') or '—'}"
            table.add_row(
                name, format_value(name, week.get("value")),
                format_value(name, month.get("value")), share,
            )  # fmt: skip
    else:
        table = Table(title=f"{ALERT_WINDOW}-day indicators on {as_of}")
        table.add_column("municipality")
        for name in INDICATORS:
            table.add_column(short(name), justify="right")
        monthly = values_at_alert_window(rows)
        for code in sorted({r["municipality"] for r in rows}, key=lambda c: (c == ALL_KOSOVO, c)):
            values = (format_value(n, monthly.get((code, n))) for n in INDICATORS)
            table.add_row(municipality_label(code), *values)
    Console().print(table)


def alerts_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"Active alerts: {len(rows)}")
    for column in ("municipality", "indicator", "value", "target", "denominator", "as of"):
        table.add_column(column)
    for row in rows:
        name = row["indicator"]
        denominator = "—" if row["denominator"] is None else str(row["denominator"])
        table.add_row(municipality_label(row["municipality"]), name,
                      format_value(name, row["value"]), format_value(name, row["target"]),
                      denominator, str(row["as_of"]))  # fmt: skip
    Console().print(table)
