"""Below the municipality: each Family Medicine Centre's and each nurse's caseload over
a run of days, from `visits FINAL` (effective visits: `NOT is_void`), and the indicators
of a calendar period (sinks.periods) read from a store.

A caseload row counts, over the days: completed visits, households reached (distinct
households with a completed visit, as SPEC §3's `households_reached`), missed visits
(`not_home` or `refused`) and every effective visit, the missed share's denominator. A
visit counts under its own municipality, so a nurse who works in two municipalities
has a row in each.
"""

from __future__ import annotations

from typing import Any

from sinks.periods import FLAGS, Period, period_values
from sinks.schema import VISITS
from sinks.sql import literal
from sinks.store import Store

_COUNTS = f"""countIf({FLAGS["completed"]}) AS completed,
  uniqExactIf(household_id, {FLAGS["completed"]}) AS households,
  countIf({FLAGS["missed"]}) AS missed,
  count() AS visits"""


def _effective(store: Store, period: Period) -> str:
    return (
        f"FROM {store.table(VISITS)} FINAL WHERE NOT is_void AND local_day BETWEEN "
        f"{literal(period.first)} AND {literal(period.last)}"
    )


def facility_caseloads(store: Store, period: Period) -> list[dict[str, Any]]:
    """One row per (municipality, facility_id) with visits in the period: facility_id
    (None: visits recorded without a centre), nurses (distinct, any outcome) and the
    caseload counts."""
    return store.query(
        f"SELECT municipality, facility_id, uniqExact(nurse_id) AS nurses,\n  {_COUNTS}\n"
        f"{_effective(store, period)}\n"
        "GROUP BY municipality, facility_id ORDER BY municipality, facility_id"
    )


def nurse_caseloads(store: Store, period: Period) -> list[dict[str, Any]]:
    """One row per (municipality, nurse_id) with visits in the period: the centres the
    nurse's visits name (sorted; None for visits without one) and the caseload counts."""
    return store.query(
        "SELECT municipality, nurse_id, arraySort(groupUniqArray(ifNull(facility_id, ''))) "
        f"AS facilities,\n  {_COUNTS}\n{_effective(store, period)}\n"
        "GROUP BY municipality, nurse_id ORDER BY municipality, nurse_id"
    )


def period_indicator_rows(store: Store, period: Period) -> list[dict[str, Any]]:
    """Every indicator of every municipality and `ALL` over the period (sinks.periods):
    municipality, indicator, numerator, denominator, value (and the period's keys)."""
    return store.query(period_values(store.database, [period]))
