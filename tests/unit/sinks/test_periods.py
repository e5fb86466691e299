"""The SQL of the indicators over windows and calendar periods, as text: what it reads,
what it counts, and the periods it is given (tests/integration/test_periods.py runs it
against the stream and the oracle)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from sinks.periods import (
    CALENDAR_COLUMNS,
    MEASURES,
    PERIOD_NAME,
    Period,
    PeriodSql,
    calendar_period,
    calendar_periods,
    month,
    period_values,
    period_values_between,
    quarter,
    rolling_window_values,
)
from sinks.sql import literal
from vizita.contract.indicators import COUNT_INDICATORS, INDICATORS
from vizita.contract.municipalities import SCOPES

FIRST, LAST = date(2026, 3, 1), date(2026, 3, 31)


def test_every_indicator_is_measured_in_the_contracts_order() -> None:
    assert tuple(MEASURES) == INDICATORS
    counts = {name for name, (_num, den) in MEASURES.items() if den is None}
    assert counts == COUNT_INDICATORS


def test_distinct_counts_are_exact() -> None:
    sql = rolling_window_values("vizita", FIRST, LAST)
    assert "uniqExactIf(household_id, completed)" in sql
    assert "uniqExactIf(nurse_id, completed)" in sql
    assert not re.search(r"\buniq(If|Combined|HLL12)?\(", sql)  # approximate counts


def test_rolling_windows_read_the_effective_visits_from_the_window_before_the_range() -> None:
    sql = rolling_window_values("db1", FIRST, LAST)
    assert "FROM db1.visits FINAL" in sql
    assert "WHERE NOT is_void AND local_day BETWEEN '2026-01-31' AND '2026-03-31'" in sql
    assert "WHERE as_of BETWEEN '2026-03-01' AND '2026-03-31'" in sql
    assert "range(31)" in sql  # one as_of per day of the range, both ends included
    assert "arrayJoin([7, 30]) AS window_days" in sql


def test_rolling_windows_cover_every_scope_and_indicator() -> None:
    sql = rolling_window_values("vizita", FIRST, LAST)
    for scope in SCOPES:
        assert f"'{scope}'" in sql
    assert "arrayJoin([municipality, 'ALL']) AS scope" in sql  # ALL counts over the country
    for name in INDICATORS:
        assert f"('{name}', {name}_num, " in sql


def test_a_range_that_ends_before_it_begins_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before"):
        rolling_window_values("vizita", LAST, FIRST)


def test_counts_have_no_denominator_and_ratios_no_value_over_zero() -> None:
    sql = rolling_window_values("vizita", FIRST, LAST)
    assert "('visits_completed', visits_completed_num, NULL)" in sql
    assert "('missed_visit_rate', missed_visit_rate_num, missed_visit_rate_den)" in sql
    assert "if(denominator = 0, NULL, numerator / denominator)" in sql
    assert "SETTINGS join_use_nulls = 0" in sql  # a day without visits joins as zeros


def test_periods_are_rendered_as_literals_and_bound_the_visits_read() -> None:
    periods = [Period("it's", date(2026, 2, 1), date(2026, 2, 28)), quarter(2026, 1)]
    sql = period_values("vizita", periods)
    assert "('it\\x27s', toDate('2026-02-01'), toDate('2026-02-28'))" in sql
    assert "('2026Q1', toDate('2026-01-01'), toDate('2026-03-31'))" in sql
    assert "local_day BETWEEN '2026-01-01' AND '2026-03-31'" in sql
    assert "arrayFilter(p -> local_day BETWEEN p.2 AND p.3" in sql  # overlapping periods


def test_no_period_is_refused() -> None:
    with pytest.raises(ValueError, match="no period"):
        period_values("vizita", [])


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (month(2025, 10), Period("2025-10", date(2025, 10, 1), date(2025, 10, 31))),
        (month(2025, 12), Period("2025-12", date(2025, 12, 1), date(2025, 12, 31))),
        (month(2028, 2), Period("2028-02", date(2028, 2, 1), date(2028, 2, 29))),
        (quarter(2025, 4), Period("2025Q4", date(2025, 10, 1), date(2025, 12, 31))),
        (quarter(2026, 1), Period("2026Q1", date(2026, 1, 1), date(2026, 3, 31))),
        (month(2025, 10, through=date(2025, 10, 9)),
         Period("2025-10", date(2025, 10, 1), date(2025, 10, 9))),
        (quarter(2025, 4, through=date(2025, 11, 15)),
         Period("2025Q4", date(2025, 10, 1), date(2025, 11, 15))),
        (quarter(2025, 4, through=date(2026, 1, 15)),
         Period("2025Q4", date(2025, 10, 1), date(2025, 12, 31))),
    ],
)  # fmt: skip
def test_calendar_periods_and_periods_to_date(period: Period, expected: Period) -> None:
    assert period == expected


def test_impossible_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="no quarter"):
        quarter(2025, 5)
    with pytest.raises(ValueError, match="ends before"):
        month(2025, 10, through=date(2025, 9, 30))


def _in_sql(period: Period) -> PeriodSql:
    return PeriodSql(literal(period.name), literal(period.first), literal(period.last))


@pytest.mark.parametrize("period", [month(2026, 2), quarter(2025, 4, date(2025, 11, 3))])
def test_a_period_in_sql_is_period_values_without_a_setting(period: Period) -> None:
    between = period_values_between("db1", _in_sql(period))
    assert not re.search(r"\bSETTINGS\b", between)  # a read-only reader runs it
    # Zeros where no visit fell are explicit rather than the join's default...
    assert "ifNull(visits_completed_num, 0), NULL)" in between
    assert "ifNull(missed_visit_rate_num, 0), ifNull(missed_visit_rate_den, 0))" in between
    # ...and apart from that it is the very SQL of the calendar periods.
    written = re.sub(r"ifNull\((\w+), 0\)", r"\1", between) + "\nSETTINGS join_use_nulls = 0"
    assert written == period_values("db1", [period])


def test_every_name_month_and_quarter_give_is_a_period_name() -> None:
    names = [month(y, m).name for y in (2014, 2025, 2099) for m in range(1, 13)]
    names += [quarter(y, q).name for y in (2014, 2025, 2099) for q in range(1, 5)]
    assert all(re.fullmatch(PERIOD_NAME, name) for name in names)
    for wrong in ("2026-13", "2026-00", "2026-1", "2026Q0", "2026Q5", "26-01", "2026 Q1", ""):
        assert not re.fullmatch(PERIOD_NAME, wrong), wrong


def test_a_period_named_in_sql_is_checked_and_cut_at_its_day() -> None:
    period = calendar_period("${period:sqlstring}", "clock")
    assert period.name == "${period:sqlstring}"
    assert "throwIf(NOT match(${period:sqlstring}, " in period.first  # no silent wrong period
    assert period.last.startswith("least(")
    assert period.last.endswith(", toDate(clock))")
    assert "makeDate(" in period.first
    assert "addMonths(" in period.last


def test_calendar_periods_go_back_at_most_so_many_months() -> None:
    sql = calendar_periods("first_day_expr", "last_day_expr", 24)
    assert "least(toUInt32(dateDiff('month', toStartOfMonth(first_day_expr), " in sql
    assert "toStartOfMonth(last_day_expr)) + 1), 24)" in sql
    assert "ORDER BY last_day DESC, is_quarter, period" in sql  # newest first, month first
    assert CALENDAR_COLUMNS == ("period", "is_quarter", "first_day", "last_day", "to_date")
    with pytest.raises(ValueError, match="at least one month"):
        calendar_periods("a", "b", 0)
