"""Reading the store back: the current indicators and the active alerts."""

from __future__ import annotations

from datetime import date
from typing import Any

from sinks.schema import ACTIVE_ALERTS, INDICATOR_VALUES
from sinks.sql import literal
from sinks.store import Store


def latest_as_of(store: Store) -> date | None:
    rows = store.query(f"SELECT max(as_of) AS d, count() AS n FROM {store.table(INDICATOR_VALUES)}")
    return rows[0]["d"] if rows and rows[0]["n"] else None


def indicator_rows(
    store: Store, as_of: date, municipality: str | None = None
) -> list[dict[str, Any]]:
    """One row per (municipality, indicator, window_days) at `as_of`."""
    where = f"as_of = {literal(as_of)}"
    if municipality:
        where += f" AND municipality = {literal(municipality)}"
    return store.query(
        "SELECT municipality, indicator, window_days, numerator, denominator, value "
        f"FROM {store.table(INDICATOR_VALUES)} FINAL WHERE {where} "
        "ORDER BY municipality, indicator, window_days"
    )


def active_alerts(store: Store) -> list[dict[str, Any]]:
    return store.query(
        "SELECT municipality, indicator, window_days, value, target, denominator, as_of, "
        f"emitted_at FROM {store.table(ACTIVE_ALERTS)} ORDER BY municipality, indicator"
    )
