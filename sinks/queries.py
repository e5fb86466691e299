"""Reading the store back: the current indicators and the active alerts."""

from __future__ import annotations

from datetime import date
from typing import Any

from sinks.schema import ACTIVE_ALERTS, ALERTS, DEAD_LETTERS, INDICATOR_VALUES, VISITS
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


def recent_alerts(store: Store, limit: int) -> list[dict[str, Any]]:
    """The last `limit` alert transitions (raised and resolved), newest first."""
    return store.query(
        "SELECT municipality, indicator, window_days, state, value, target, denominator, "
        f"as_of, emitted_at FROM {store.table(ALERTS)} FINAL "
        f"ORDER BY emitted_at DESC, municipality, indicator LIMIT {int(limit)}"
    )


def dead_letters_by_reason(store: Store) -> list[dict[str, Any]]:
    """reason, n: the dead letters of each reason, most first."""
    return store.query(
        f"SELECT reason, count() AS n FROM {store.table(DEAD_LETTERS)} FINAL "
        "GROUP BY reason ORDER BY n DESC, reason"
    )


def as_of_range(store: Store) -> tuple[date, date] | None:
    """The first and the last day with indicator values, or None when there are none."""
    rows = store.query(
        f"SELECT min(as_of) AS first, max(as_of) AS last, count() AS n "
        f"FROM {store.table(INDICATOR_VALUES)} FINAL"
    )
    return (rows[0]["first"], rows[0]["last"]) if rows and rows[0]["n"] else None


def indicator_series(
    store: Store, municipality: str, since: date | None = None
) -> list[dict[str, Any]]:
    """One municipality's (or ALL's) rows of every day from `since`, both windows,
    oldest first within each (indicator, window_days)."""
    where = f"municipality = {literal(municipality)}"
    if since:
        where += f" AND as_of >= {literal(since)}"
    return store.query(
        "SELECT indicator, window_days, as_of, numerator, denominator, value "
        f"FROM {store.table(INDICATOR_VALUES)} FINAL WHERE {where} "
        "ORDER BY indicator, window_days, as_of"
    )


def store_totals(store: Store) -> dict[str, int]:
    """Visits (not voided), voided visits and dead letters in the whole store."""
    visits = store.query(
        "SELECT countIf(NOT is_void) AS visits, countIf(is_void) AS voided "
        f"FROM {store.table(VISITS)} FINAL"
    )[0]
    dead = store.query(f"SELECT count() AS n FROM {store.table(DEAD_LETTERS)} FINAL")[0]
    return {"visits": int(visits["visits"]), "voided": int(visits["voided"]),
            "dead_letters": int(dead["n"])}  # fmt: skip
