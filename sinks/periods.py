"""The indicators of SPEC §3 computed by ClickHouse straight from `visits FINAL`.

Two query shapes, each one function returning SQL text that both store backends run
unchanged:

- :func:`rolling_window_values`: every rolling window (SPEC §2) ending on every day
  of a range, the rows the stream writes to `indicator_values`, so the stream can be
  checked against it or a store rebuilt without it;
- :func:`period_values`: any runs of days, such as calendar months and quarters
  (:func:`month`, :func:`quarter`; to date for the current one).

Both give every municipality and `ALL` (distinct households and nurses counted over
the whole country, not summed) a row per indicator, also where no visit falls: a
count is then 0 and a ratio has denominator 0 and value NULL, as the stream's rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from sinks.schema import VISITS
from sinks.sql import literal
from vizita.contract.codes import MISSED_OUTCOMES
from vizita.contract.indicators import BREASTFEEDING_MAX_MONTHS, IMMUNISATION_MAX_MONTHS, WINDOWS
from vizita.contract.municipalities import ALL_KOSOVO, SCOPES

MATERNAL_VISIT_TYPES: Final = ("prenatal", "newborn")

#: what each effective visit is, as columns of `visits` (SPEC §3's sets of visits)
FLAGS: Final[Mapping[str, str]] = {
    "completed": f"outcome = {literal('completed')}",
    "missed": f"has({literal(sorted(MISSED_OUTCOMES))}, outcome)",
    "under_two": "completed AND child_age_months IS NOT NULL "
    f"AND child_age_months <= {IMMUNISATION_MAX_MONTHS}",
    "under_six_months": "completed AND child_age_months IS NOT NULL "
    f"AND child_age_months <= {BREASTFEEDING_MAX_MONTHS}",
    "maternal": f"completed AND (pregnant OR has({literal(MATERNAL_VISIT_TYPES)}, visit_type))",
    "with_child": "completed AND child_age_months IS NOT NULL",
    "at_risk": "completed AND notEmpty(risk_flags)",
}


def _with_topic(flag: str, topic: str) -> str:
    return f"countIf({flag} AND has(topics, {literal(topic)}))"


#: indicator -> (numerator, denominator) as aggregates over FLAGS; None: a count
MEASURES: Final[Mapping[str, tuple[str, str | None]]] = {
    "visits_completed": ("countIf(completed)", None),
    "households_reached": ("uniqExactIf(household_id, completed)", None),
    "immunisation_counselling_coverage": (
        _with_topic("under_two", "immunisation"), "countIf(under_two)"),
    "breastfeeding_counselling_coverage": (
        _with_topic("under_six_months", "breastfeeding"), "countIf(under_six_months)"),
    "maternal_health_counselling_coverage": (
        _with_topic("maternal", "maternal_health"), "countIf(maternal)"),
    "early_stimulation_coverage": (
        _with_topic("with_child", "early_stimulation"), "countIf(with_child)"),
    "at_risk_referral_rate": ("countIf(at_risk AND notEmpty(referrals))", "countIf(at_risk)"),
    "missed_visit_rate": ("countIf(missed)", "count()"),
    "visits_per_nurse": ("countIf(completed)", "uniqExactIf(nurse_id, completed)"),
}  # fmt: skip

#: the columns of both shapes' rows, besides their own keys
VALUE_COLUMNS: Final = ("municipality", "indicator", "numerator", "denominator", "value")


@dataclass(frozen=True)
class Period:
    """A run of days, both ends included, under a name (`2025-10`, `2025Q4`, ...)."""

    name: str
    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"period {self.name} ends before it begins")


def month(year: int, number: int, through: date | None = None) -> Period:
    """A calendar month; cut at `through` when it ends later (month to date)."""
    first = date(year, number, 1)
    after = date(year + number // 12, number % 12 + 1, 1)
    return _to_date(Period(f"{year}-{number:02d}", first, after - timedelta(days=1)), through)


def quarter(year: int, number: int, through: date | None = None) -> Period:
    """A calendar quarter (1-4); cut at `through` when it ends later (quarter to date)."""
    if number not in (1, 2, 3, 4):
        raise ValueError(f"no quarter {number}")
    months = (month(year, 3 * number - 2), month(year, 3 * number))
    return _to_date(Period(f"{year}Q{number}", months[0].first, months[1].last), through)


def _to_date(period: Period, through: date | None) -> Period:
    if through is None or through >= period.last:
        return period
    return Period(period.name, period.first, through)


# --- the SQL ---------------------------------------------------------------------------------


def _effective_visits(db: str, first: date, last: date) -> str:
    """Effective visits of days first..last with their FLAGS. The day filter is safe
    under FINAL: the engine replaces a visit's rows before filtering, also when a
    correction moved it to another month's partition."""
    flags = ",\n    ".join(f"{expression} AS {name}" for name, expression in FLAGS.items())
    return f"""SELECT municipality, local_day, household_id, nurse_id, topics, referrals,
    {flags}
  FROM {db}.{VISITS} FINAL
  WHERE NOT is_void AND local_day BETWEEN {literal(first)} AND {literal(last)}"""


def _aggregates() -> str:
    columns = []
    for name, (numerator, denominator) in MEASURES.items():
        columns.append(f"{numerator} AS {name}_num")
        if denominator is not None:
            columns.append(f"{denominator} AS {name}_den")
    return ",\n  ".join(columns)


def _rows(grid: str, counts: str, keys: Sequence[str]) -> str:
    """One row per indicator for every row of `grid` (scope and `keys`), from the
    aggregates of `counts`; a grid row with no visits joins as zeros."""
    measures = ",\n    ".join(
        f"({literal(name)}, {name}_num, {f'{name}_den' if den is not None else 'NULL'})"
        for name, (_num, den) in MEASURES.items()
    )
    key_list = ", ".join(keys)
    return f"""SELECT scope AS municipality, measure.1 AS indicator, {key_list},
  measure.2 AS numerator, measure.3 AS denominator,
  if(denominator IS NULL, toFloat64(numerator),
     if(denominator = 0, NULL, numerator / denominator)) AS value
FROM (
  SELECT scope, {key_list}, arrayJoin([
    {measures}
  ]) AS measure
  FROM ({grid}) AS grid
  LEFT JOIN ({counts}) AS counts USING (scope, {key_list})
)
ORDER BY municipality, indicator, {key_list}
SETTINGS join_use_nulls = 0"""


def _scopes() -> str:
    return literal(list(SCOPES))


def rolling_window_values(db: str, first: date, last: date) -> str:
    """Every indicator of every scope for each window W of SPEC §2 ending on each day
    `first`..`last`: the rows the stream writes to `indicator_values`.

    Columns: municipality, indicator, window_days, as_of, numerator, denominator, value.
    Each visit is counted once in each window that holds its day.
    """
    days = (last - first).days + 1
    if days < 1:
        raise ValueError("the range of days ends before it begins")
    windows = literal(list(WINDOWS))
    grid = f"""SELECT arrayJoin({_scopes()}) AS scope, arrayJoin({windows}) AS window_days,
    arrayJoin(arrayMap(i -> toDate({literal(first)}) + i, range({days}))) AS as_of"""
    counts = f"""SELECT scope, window_days, as_of,
  {_aggregates()}
FROM (
  SELECT *, arrayJoin([municipality, {literal(ALL_KOSOVO)}]) AS scope,
    arrayJoin({windows}) AS window_days,
    arrayJoin(arrayMap(i -> local_day + i, range(window_days))) AS as_of
  FROM ({_effective_visits(db, first - timedelta(days=max(WINDOWS) - 1), last)})
)
WHERE as_of BETWEEN {literal(first)} AND {literal(last)}
GROUP BY scope, window_days, as_of"""
    return _rows(grid, counts, ("window_days", "as_of"))


def period_values(db: str, periods: Sequence[Period]) -> str:
    """Every indicator of every scope over each period's days (a visit counts in every
    period that holds its day; periods may overlap).

    Columns: municipality, indicator, period, first_day, last_day, numerator,
    denominator, value.
    """
    if not periods:
        raise ValueError("no period to compute")
    listed = "[" + ", ".join(
        f"({literal(p.name)}, toDate({literal(p.first)}), toDate({literal(p.last)}))"
        for p in periods
    ) + "]"  # fmt: skip
    first, last = min(p.first for p in periods), max(p.last for p in periods)
    grid = f"""SELECT arrayJoin({_scopes()}) AS scope, arrayJoin({listed}) AS span,
    span.1 AS period, span.2 AS first_day, span.3 AS last_day"""
    counts = f"""SELECT scope, period, first_day, last_day,
  {_aggregates()}
FROM (
  SELECT *, arrayJoin([municipality, {literal(ALL_KOSOVO)}]) AS scope,
    arrayJoin(arrayFilter(p -> local_day BETWEEN p.2 AND p.3, {listed})) AS span,
    span.1 AS period, span.2 AS first_day, span.3 AS last_day
  FROM ({_effective_visits(db, first, last)})
)
GROUP BY scope, period, first_day, last_day"""
    return _rows(grid, counts, ("period", "first_day", "last_day"))
