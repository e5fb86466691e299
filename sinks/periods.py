"""The indicators of SPEC §3 computed by ClickHouse straight from `visits FINAL`.

Two query shapes, each one function returning SQL text that both store backends run
unchanged:

- :func:`rolling_window_values`: every rolling window (SPEC §2) ending on every day
  of a range, the rows the stream writes to `indicator_values`, so the stream can be
  checked against it or a store rebuilt without it;
- :func:`period_values`: any runs of days, such as calendar months and quarters
  (:func:`month`, :func:`quarter`; to date for the current one);
  :func:`period_values_between` is the same for one period whose name and days are
  SQL expressions (a dashboard variable), for a reader that may change no setting.

:func:`calendar_period` turns a period's name (`2025-10`, `2025Q4`) into its days in
SQL, and :func:`calendar_periods` lists the months and quarters of a run of days.

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
from vizita.contract.indicators import (
    BREASTFEEDING_MAX_MONTHS,
    FOLLOW_UP_DAYS,
    IMMUNISATION_MAX_MONTHS,
    WINDOWS,
)
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
    "missed_visit_rate": ("countIf(missed)", "countIf(is_visit)"),
    "visits_per_nurse": ("countIf(completed)", "uniqExactIf(nurse_id, completed)"),
    "at_risk_follow_up_rate": ("countIf(due AND followed_up)", "countIf(due)"),
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
    return _effective_visits_between(db, literal(first), literal(last))


def _effective_visits_between(db: str, first: str, last: str) -> str:
    """The rows counted on the days between the SQL dates `first` and `last`: the
    effective visits of those days with their FLAGS (`is_visit`), and the at-risk
    visits whose follow-up period ends on one of them (`due`, on that day, and
    `followed_up`). The day filter is safe under FINAL: the engine replaces a visit's
    rows before filtering, also when a correction moved it to another month's partition."""
    flags = ",\n    ".join(f"{expression} AS {name}" for name, expression in FLAGS.items())
    none = ", ".join(f"false AS {name}" for name in FLAGS)
    return f"""SELECT municipality, local_day, household_id, nurse_id, topics, referrals,
    {flags},
    true AS is_visit, false AS due, false AS followed_up
  FROM {db}.{VISITS} FINAL
  WHERE NOT is_void AND local_day BETWEEN {first} AND {last}
UNION ALL
SELECT municipality, addDays(visit_day, {FOLLOW_UP_DAYS}) AS local_day, household_id, nurse_id,
    topics, referrals, {none},
    false AS is_visit, true AS due, followed_up
  FROM ({_follow_ups(db, first, last)})"""


def _follow_ups(db: str, first: str, last: str) -> str:
    """The at-risk visits whose follow-up period ends between the SQL dates `first`
    and `last`, each with whether its household had another completed visit 1 to
    FOLLOW_UP_DAYS days later, in any municipality (SPEC §3)."""
    completed = f"NOT is_void AND {FLAGS['completed']}"
    at_risk = f"{completed} AND notEmpty(risk_flags)"
    days = FOLLOW_UP_DAYS
    return f"""SELECT r.municipality AS municipality, r.local_day AS visit_day,
    r.household_id AS household_id, r.nurse_id AS nurse_id, r.topics AS topics,
    r.referrals AS referrals,
    countIf(f.local_day BETWEEN addDays(r.local_day, 1) AND addDays(r.local_day, {days})) > 0
      AS followed_up
  FROM (SELECT visit_id, municipality, local_day, household_id, nurse_id, topics, referrals
        FROM {db}.{VISITS} FINAL
        WHERE {at_risk} AND local_day BETWEEN subtractDays({first}, {days})
                                          AND subtractDays({last}, {days})) AS r
  LEFT JOIN (SELECT household_id, local_day FROM {db}.{VISITS} FINAL
             WHERE {completed} AND local_day BETWEEN subtractDays({first}, {days - 1})
                                                 AND {last}) AS f
    ON r.household_id = f.household_id
  GROUP BY r.visit_id, r.municipality, r.local_day, r.household_id, r.nurse_id, r.topics,
    r.referrals"""


def _aggregates() -> str:
    columns = []
    for name, (numerator, denominator) in MEASURES.items():
        columns.append(f"{numerator} AS {name}_num")
        if denominator is not None:
            columns.append(f"{denominator} AS {name}_den")
    return ",\n  ".join(columns)


def _rows(grid: str, counts: str, keys: Sequence[str], *, read_only: bool = False) -> str:
    """One row per indicator for every row of `grid` (scope and `keys`), from the
    aggregates of `counts`; a grid row with no visits joins as zeros. `read_only`: for
    a reader that may change no setting, whatever its `join_use_nulls`."""
    measures = ",\n    ".join(
        f"({literal(name)}, {_joined(f'{name}_num', read_only)}, "
        f"{_joined(f'{name}_den', read_only) if den is not None else 'NULL'})"
        for name, (_num, den) in MEASURES.items()
    )
    key_list = ", ".join(keys)
    settings = "" if read_only else _ZEROS_JOIN
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
ORDER BY municipality, indicator, {key_list}{settings}"""


# Without it a session with join_use_nulls = 1 would join a day without visits as NULLs.
_ZEROS_JOIN: Final = "\nSETTINGS join_use_nulls = 0"


def _joined(column: str, read_only: bool) -> str:
    """An aggregate joined from `counts`: zero where no visit fell, also where the
    session joins missing rows as NULL (a read-only reader cannot set it otherwise)."""
    return f"ifNull({column}, 0)" if read_only else column


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
    grid, counts = _period_grid_and_counts(db, listed, literal(first), literal(last))
    return _rows(grid, counts, _PERIOD_KEYS)


_PERIOD_KEYS: Final = ("period", "first_day", "last_day")


def _period_grid_and_counts(db: str, listed: str, first: str, last: str) -> tuple[str, str]:
    """The grid (every scope and period of the SQL array `listed` of (name, first day,
    last day)) and the aggregates of the visits of days `first`..`last` (SQL dates)."""
    grid = f"""SELECT arrayJoin({_scopes()}) AS scope, arrayJoin({listed}) AS span,
    span.1 AS period, span.2 AS first_day, span.3 AS last_day"""
    counts = f"""SELECT scope, period, first_day, last_day,
  {_aggregates()}
FROM (
  SELECT *, arrayJoin([municipality, {literal(ALL_KOSOVO)}]) AS scope,
    arrayJoin(arrayFilter(p -> local_day BETWEEN p.2 AND p.3, {listed})) AS span,
    span.1 AS period, span.2 AS first_day, span.3 AS last_day
  FROM ({_effective_visits_between(db, first, last)})
)
GROUP BY scope, period, first_day, last_day"""
    return grid, counts


@dataclass(frozen=True)
class PeriodSql:
    """A period whose name (a String) and first and last days (Dates) are SQL
    expressions: a dashboard variable, a subquery."""

    name: str
    first: str
    last: str


def period_values_between(db: str, period: PeriodSql) -> str:
    """:func:`period_values` for one period given in SQL, runnable by a read-only
    reader (no SETTINGS clause; zeros where no visit fell, whatever the session's
    `join_use_nulls`). Same columns, one row per scope and indicator."""
    listed = f"[({period.name}, toDate({period.first}), toDate({period.last}))]"
    grid, counts = _period_grid_and_counts(db, listed, period.first, period.last)
    return _rows(grid, counts, _PERIOD_KEYS, read_only=True)


# --- calendar periods named in SQL -------------------------------------------------------------

#: the names `month` and `quarter` give: `2025-10`, `2025Q4`
PERIOD_NAME: Final = r"^[0-9]{4}(-(0[1-9]|1[0-2])|Q[1-4])$"


def calendar_period(name: str, through: str) -> PeriodSql:
    """The month or quarter named by the SQL String `name` (as :func:`month` and
    :func:`quarter` name them), cut at the SQL Date `through` when it ends later (to
    date). A name of neither form fails the query rather than reading as some period."""
    refused = f"throwIf(NOT match({name}, {literal(PERIOD_NAME)}), {literal(_NOT_A_PERIOD)})"
    year = f"(toUInt16(substring({name}, 1, 4)) + {refused})"
    is_quarter = f"substring({name}, 5, 1) = 'Q'"
    number = f"toUInt8(substring({name}, 6))"  # 10 of `2025-10`, 4 of `2025Q4`
    first = f"makeDate({year}, if({is_quarter}, 3 * {number} - 2, {number}), 1)"
    calendar_last = f"subtractDays(addMonths({first}, if({is_quarter}, 3, 1)), 1)"
    return PeriodSql(name, first, f"least({calendar_last}, toDate({through}))")


_NOT_A_PERIOD: Final = "a period is a month (2025-10) or a quarter (2025Q4)"


#: the columns of :func:`calendar_periods`
CALENDAR_COLUMNS: Final = ("period", "is_quarter", "first_day", "last_day", "to_date")


def calendar_periods(first: str, last: str, most_months: int) -> str:
    """Every calendar month, and every quarter, holding a day between the SQL Dates
    `first` and `last`, going back at most `most_months` months from `last`'s; the
    current one cut at `last` (`to_date`). Newest first, a month before the quarter
    that ends with it. Columns: CALENDAR_COLUMNS."""
    if most_months < 1:
        raise ValueError("at least one month to list")
    months = (f"least(toUInt32(dateDiff('month', toStartOfMonth({first}), "
              f"toStartOfMonth({last})) + 1), {most_months})")  # fmt: skip
    quarter_name = "concat(toString(toYear(m)), 'Q', toString(toQuarter(m)))"
    quarter_last = "subtractDays(addMonths(toStartOfQuarter(m), 3), 1)"
    return f"""SELECT period, is_quarter, first_day, least(calendar_last, {last}) AS last_day,
  calendar_last > {last} AS to_date
FROM (
  SELECT DISTINCT arrayJoin([
      (formatDateTime(m, '%Y-%m'), false, m, toLastDayOfMonth(m)),
      ({quarter_name}, true, toStartOfQuarter(m), {quarter_last})
    ]) AS p, p.1 AS period, p.2 AS is_quarter, p.3 AS first_day, p.4 AS calendar_last
  FROM (SELECT arrayJoin(arrayMap(i -> addMonths(toStartOfMonth({last}), -i),
                                  range({months}))) AS m)
)
ORDER BY last_day DESC, is_quarter, period"""
