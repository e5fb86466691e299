"""Readable terminal tables for `vizita indicators` and `vizita alerts`: people's names
for municipalities and indicators, targets with their ≥ / ≤, values with the precision
that never makes one behind its target read as on it, and a text marker beside every
colour (vizita.contract.display)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vizita.contract.display import (
    STANDING_STYLE,
    STANDING_TEXT,
    Mark,
    Standing,
    assess,
    format_resolution,
    format_target,
    format_value,
    municipality_label,
    short,
    title,
    worst_first,
)
from vizita.contract.indicators import ALERT_WINDOW, INDICATORS, WEEK
from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES
from vizita.contract.targets import Reading, Targets

Row = Mapping[str, Any]


def print_json(rows: list[dict[str, Any]]) -> None:
    print(json.dumps(rows, default=str))


def values_at_alert_window(rows: Iterable[Row]) -> dict[tuple[str, str], Row]:
    """(municipality, indicator) -> its row on the window the targets are set on."""
    return {
        (str(r["municipality"]), str(r["indicator"])): r
        for r in rows
        if r["window_days"] == ALERT_WINDOW
    }


def alerted_keys(alerts: Iterable[Row]) -> set[tuple[str, str]]:
    return {(str(a["municipality"]), str(a["indicator"])) for a in alerts}


def marks_of(
    monthly: Mapping[tuple[str, str], Row],
    targets: Targets,
    alerted: set[tuple[str, str]],
    indicators: Sequence[str] = INDICATORS,
) -> dict[str, dict[str, Mark]]:
    """Every municipality's mark on each indicator, on the 30-day window."""
    marks: dict[str, dict[str, Mark]] = {}
    for code in MUNICIPALITIES:
        own = targets.for_municipality(code)
        marks[code] = {}
        for name in indicators:
            row = monthly.get((code, name), {})
            marks[code][name] = assess(
                name, own.get(name), Reading(row.get("value"), row.get("denominator")),
                alerted=(code, name) in alerted, targets=targets,
            )  # fmt: skip
    return marks


def value_text(name: str, row: Row, targets: Targets, code: str, mark: Mark | None) -> Text:
    """A value as the terminal shows it: its marker, the precision its target needs,
    the denominator of a ratio, in its standing's style."""
    target = targets.for_municipality(code).get(name) if code != ALL_KOSOVO else None
    shown = format_value(name, row.get("value"), target)
    if row.get("denominator") is not None:
        shown += f" /{row['denominator']}"
    status = mark.standing if mark else Standing.NO_TARGET
    return Text(STANDING_TEXT[status][0] + shown, style=STANDING_STYLE[status])


def indicators_table(
    rows: list[dict[str, Any]], as_of: date | None, targets: Targets,
    alerts: Sequence[Row] = (), *, single: bool,
) -> None:  # fmt: skip
    if single:
        table = one_municipality(rows, as_of, targets, alerts)
    else:
        table = every_municipality(rows, as_of, targets, alerts)
    Console().print(table)


def one_municipality(
    rows: list[dict[str, Any]], as_of: date | None, targets: Targets, alerts: Sequence[Row]
) -> Table:
    code = str(rows[0]["municipality"])
    table = Table(title=f"{municipality_label(code)} on {as_of}")
    columns = ("indicator", f"{WEEK} days", f"{ALERT_WINDOW} days",
               f"{ALERT_WINDOW}-day numerator / denominator", "target", "standing")  # fmt: skip
    for column in columns:
        side: Literal["left", "right"] = "left" if column in ("indicator", "standing") else "right"
        table.add_column(column, justify=side, overflow="fold")
    by_key = {(r["indicator"], r["window_days"]): r for r in rows}
    monthly = {(code, name): by_key.get((name, ALERT_WINDOW), {}) for name in INDICATORS}
    marks = marks_of(monthly, targets, alerted_keys(alerts)).get(code, {})
    own = targets.for_municipality(code) if code != ALL_KOSOVO else {}
    for name in INDICATORS:
        week, month = by_key.get((name, WEEK), {}), by_key.get((name, ALERT_WINDOW), {})
        share = f"{month.get('numerator', '—')} / {month.get('denominator') or '—'}"
        mark = marks.get(name)
        table.add_row(
            title(name), format_value(name, week.get("value"), own.get(name)),
            value_text(name, {"value": month.get("value")}, targets, code, mark), share,
            format_target(name, own.get(name)),
            STANDING_TEXT[mark.standing][1] if mark else "",
        )  # fmt: skip
    return table


def every_municipality(
    rows: list[dict[str, Any]], as_of: date | None, targets: Targets, alerts: Sequence[Row]
) -> Table:
    table = Table(title=f"{ALERT_WINDOW}-day indicators on {as_of}, worst first "
                  "(value /denominator)")  # fmt: skip
    table.add_column("municipality", overflow="fold")
    for name in INDICATORS:
        table.add_column(short(name), justify="right", overflow="fold")
    monthly = values_at_alert_window(rows)
    marks = marks_of(monthly, targets, alerted_keys(alerts))
    defaults = {str(k): v for k, v in targets.defaults.items()}
    table.add_row(Text("target", style="italic"),
                  *(format_target(n, defaults.get(n)) for n in INDICATORS))  # fmt: skip
    present = {str(r["municipality"]) for r in rows}
    order = [c for c in worst_first({c: m.values() for c, m in marks.items()}) if c in present]
    for position, code in enumerate(order, start=1):
        table.add_row(
            f"{position}. {municipality_label(code)}",
            *(value_text(n, monthly.get((code, n), {}), targets, code, marks[code][n])
              for n in INDICATORS),
        )  # fmt: skip
    if ALL_KOSOVO in present:
        table.add_row(
            municipality_label(ALL_KOSOVO),
            *(value_text(n, monthly.get((ALL_KOSOVO, n), {}), targets, ALL_KOSOVO, None)
              for n in INDICATORS),
            style="bold",
        )  # fmt: skip
    return table


def alerts_table(rows: list[dict[str, Any]], targets: Targets) -> None:
    Console().print(alerts_view(rows, targets))


def alerts_view(rows: Sequence[Row], targets: Targets) -> Table:
    table = Table(title=f"Active alerts: {len(rows)}")
    for column in ("municipality", "indicator", "value when raised", "target", "resolves at",
                   "behind since"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for row in rows:
        code, name = str(row["municipality"]), str(row["indicator"])
        target = targets.for_municipality(code).get(name)
        value = format_value(name, row["value"], target)
        if row["denominator"] is not None:
            value += f" (of {row['denominator']})"
        table.add_row(
            municipality_label(code), title(name), value,
            format_target(name, target) if target else format_value(name, row["target"]),
            format_resolution(name, target, targets.margin(name)) if target else "—",
            str(row["as_of"]),
        )  # fmt: skip
    return table
